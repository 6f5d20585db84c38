//! `purser-bench`: Purser under load, SigV4-signed requests over loopback against real
//! `purser serve` processes, beside the bare costs of the pieces (EIP-712 signature, fsync,
//! durable SQLite commit, and with `--database-url` durable PostgreSQL commit) measured by
//! the same binary in the same run. Writes a Markdown report to stdout (and `--out FILE`).
//!
//! Two modes:
//! - default: ProcessPayment throughput and latency percentiles at several client
//!   concurrencies, paying one payment kind (`--kind`, default x402 `exact` on EVM; the
//!   kind's parse, build and signing costs join the bare costs);
//! - `--instruments 1000,1000000`: per scale, a fresh store holding that many instruments
//!   of one user (one created through the API, the rest bulk-inserted), then
//!   ListPaymentInstruments (first page, and pages deep in the listing by nextToken) and
//!   CreatePaymentInstrument at each concurrency.
//!
//! Store: SQLite in a temporary data directory, or with `--database-url ADMIN_URL` a fresh
//! PostgreSQL database created through that admin connection and dropped at the end (also
//! on error or Ctrl-C; best effort). `--nodes N` starts N nodes on the same store (same
//! credential, same master key); load client i talks to node i mod N. Everything listens
//! on 127.0.0.1 only.
//!
//! It is a benchmark, not a test: it never fails on a missed target, only on a harness
//! problem (the server does not start, setup is refused).
mod bare;
mod client;
mod instruments;
mod kinds;
mod load;
mod pg;
mod report;
mod rpc;
mod server;
mod setup;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

/// Benchmark Purser's ProcessPayment, or its payment instruments at scale (loopback
/// only). Builds on `cargo build --release -p purser -p purser-bench`.
#[derive(Debug, Parser)]
#[command(name = "purser-bench", version, about)]
struct Args {
    /// Measured seconds per concurrency level.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up seconds per level (same connections, not measured).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Concurrent clients per level, comma-separated [default: 1,8,64 for ProcessPayment,
    /// 1,8 with --instruments].
    #[arg(long, value_delimiter = ',')]
    concurrency: Option<Vec<usize>>,
    /// Instead of ProcessPayment: for each of these scales (instruments of one user,
    /// comma-separated), a fresh store, then ListPaymentInstruments and
    /// CreatePaymentInstrument.
    #[arg(long, value_delimiter = ',')]
    instruments: Option<Vec<u64>>,
    /// PostgreSQL admin URL (e.g. postgres://postgres@127.0.0.1:5432/postgres): each run
    /// gets a fresh database created through it and dropped at the end. Default: SQLite.
    #[arg(long)]
    database_url: Option<String>,
    /// Number of `purser serve` nodes sharing the store.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// `--database-max-connections` of every node [default: the server's].
    #[arg(long)]
    database_max_connections: Option<u32>,
    /// Stop a level after this many measured requests (all clients together), even
    /// before --seconds has passed.
    #[arg(long, default_value_t = load::HARD_MAX_REQUESTS)]
    requests: u64,
    /// Open loop instead of closed loop: the clients of each level together start this
    /// many requests per second on a fixed schedule (latency counts from the scheduled
    /// time when a client falls behind).
    #[arg(long)]
    rate: Option<f64>,
    /// The purser binary (default: `purser` next to this binary, else target/release/purser).
    #[arg(long)]
    purser: Option<PathBuf>,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write every measured request as CSV (clients,start_us,latency_us) to this file,
    /// to look at latency over time.
    #[arg(long)]
    latency_csv: Option<PathBuf>,
    /// ProcessPayment: the payment kind every request pays (Solana kinds pay with Solana
    /// instruments; exact-svm reads its blockhash from a JSON-RPC stand-in the bench serves
    /// on 127.0.0.1). The bare-cost table adds that kind's parse, build and signing costs.
    #[arg(long, value_enum, default_value_t = kinds::PayKind::ExactEvm)]
    kind: kinds::PayKind,
    /// ProcessPayment: wallets and sessions to create; client i pays with pair i mod this.
    #[arg(long, default_value_t = 8)]
    agents: usize,
    /// ProcessPayment without a clientToken. boto3 and the AWS SDKs send a fresh one with
    /// every call, and so does the bench by default; this shows what the replay lookup
    /// and the token index cost.
    #[arg(long)]
    no_client_token: bool,
    /// Seconds spent on each bare-cost measurement.
    #[arg(long, default_value_t = 1.0)]
    bare_seconds: f64,
    /// Parent of the temporary directory (server data and logs, commit and fsync files).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// PURSER_LOG for the server (its log goes to a file in the temporary directory).
    #[arg(long, default_value = "info")]
    server_log: String,
    /// Before measuring, wait up to this many seconds for the machine to be quiet (other
    /// processes' CPU below --quiet-below); the run goes on either way and the report
    /// states the background load it saw.
    #[arg(long, default_value_t = 30.0)]
    quiet_wait: f64,
    /// Share of the machine (0..1) other processes may use for it to count as quiet.
    #[arg(long, default_value_t = 0.10)]
    quiet_below: f64,
}

/// Largest --instruments scale.
const MAX_SCALE: u64 = 20_000_000;

fn purser_binary(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = arg {
        return Ok(p);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("purser")));
    for p in beside
        .into_iter()
        .chain([PathBuf::from("target/release/purser")])
    {
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "no purser binary found: build it with `cargo build --release -p purser` or pass --purser PATH"
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let concurrency = args.concurrency.clone().unwrap_or_else(|| {
        if args.instruments.is_some() {
            vec![1, 8]
        } else {
            vec![1, 8, 64]
        }
    });
    if concurrency.is_empty() || concurrency.contains(&0) || concurrency.iter().any(|&c| c > 4096) {
        bail!("--concurrency needs numbers in 1..=4096");
    }
    if let Some(s) = &args.instruments
        && (s.is_empty() || s.iter().any(|&x| !(1..=MAX_SCALE).contains(&x)))
    {
        bail!("--instruments needs scales in 1..={MAX_SCALE}");
    }
    if !(1..=64).contains(&args.nodes) {
        bail!("--nodes must be in 1..=64");
    }
    if args.database_max_connections == Some(0) {
        bail!("--database-max-connections must be at least 1");
    }
    if args.instruments.is_some() && args.rate.is_some() {
        bail!("--rate applies to ProcessPayment only, not to --instruments");
    }
    if !(args.seconds > 0.0 && args.seconds <= 3600.0 && (0.0..=600.0).contains(&args.warmup)) {
        bail!("--seconds must be in (0, 3600] and --warmup in [0, 600]");
    }
    if args.rate.is_some_and(|r| !(r > 0.0 && r <= 1e6)) {
        bail!("--rate must be in (0, 1000000]");
    }
    if args.agents == 0 {
        bail!("--agents must be at least 1");
    }
    let binary = purser_binary(args.purser.clone())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(run(&args, &concurrency, &binary))?;
    print!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("report written to {}", out.display());
    }
    Ok(())
}

/// Run the mode; whatever happens (error, Ctrl-C), drop the PostgreSQL databases of the
/// run at the end. The nodes are stopped when their guards drop.
async fn run(args: &Args, concurrency: &[usize], binary: &Path) -> anyhow::Result<String> {
    let admin = match &args.database_url {
        Some(url) => Some(pg::Admin::connect(url).await?),
        None => None,
    };
    let result = tokio::select! {
        r = run_mode(args, concurrency, binary, admin.as_ref()) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    if let Some(a) = &admin {
        a.drop_all().await;
    }
    result
}

/// What the run's stores are made of.
struct Stores<'a> {
    tmp: PathBuf,
    admin: Option<&'a pg::Admin>,
    next: usize,
}

/// One fresh store: its node spec and, with PostgreSQL, its database name (to drop).
struct Fresh {
    spec: server::NodeSpec,
    database: Option<String>,
}

impl Stores<'_> {
    /// A fresh, empty store in its own directory for nodes of `template`.
    async fn fresh(&mut self, template: &server::NodeSpec) -> anyhow::Result<Fresh> {
        self.next += 1;
        let dir = self.tmp.join(format!("run-{}", self.next));
        std::fs::create_dir_all(&dir)?;
        let (store, database) = match self.admin {
            Some(a) => {
                let db = a.create().await?;
                eprintln!("created database {}", db.name);
                (server::Store::Postgres { url: db.url }, Some(db.name))
            }
            None => (
                server::Store::Sqlite {
                    data_dir: dir.join("data"),
                },
                None,
            ),
        };
        Ok(Fresh {
            spec: server::NodeSpec {
                dir,
                store,
                ..template.clone()
            },
            database,
        })
    }

    /// Drop the store's database (PostgreSQL) or remove its directory (SQLite).
    async fn release(&self, fresh: Fresh) {
        if let (Some(a), Some(name)) = (self.admin, &fresh.database) {
            match a.drop_db(name).await {
                Ok(()) => eprintln!("dropped database {name}"),
                Err(e) => eprintln!("could not drop database {name}: {e:#}"),
            }
        }
        let _ = std::fs::remove_dir_all(&fresh.spec.dir);
    }
}

async fn run_mode(
    args: &Args,
    concurrency: &[usize],
    binary: &Path,
    admin: Option<&pg::Admin>,
) -> anyhow::Result<String> {
    let tmp = match &args.dir {
        Some(d) => tempfile::Builder::new()
            .prefix("purser-bench-")
            .tempdir_in(d)?,
        None => tempfile::Builder::new().prefix("purser-bench-").tempdir()?,
    };

    let store = match admin {
        Some(a) => {
            let s = a.settings().await?;
            if let (Some(max), Some(per)) = (s.max_connections, args.database_max_connections)
                && per as usize * args.nodes + 2 > max as usize
            {
                eprintln!(
                    "warning: {} nodes x {per} connections is more than PostgreSQL's max_connections={max}",
                    args.nodes
                );
            }
            format!(
                "PostgreSQL {} on loopback, a fresh database `purser_bench_<pid>_<n>` per run (dropped at the end); {}",
                s.version,
                s.settings.join(", ")
            )
        }
        None => format!(
            "SQLite (WAL, synchronous=FULL), `{}` in a temporary data directory{}",
            server::SQLITE_FILE,
            if args.nodes > 1 {
                ", the same directory for every node"
            } else {
                ""
            }
        ),
    };

    let wait_until = std::time::Instant::now() + Duration::from_secs_f64(args.quiet_wait.max(0.0));
    let mut told = false;
    let background_before = loop {
        let b = server::background_busy(Duration::from_secs(1)).await;
        match b {
            Some(x) if x > args.quiet_below && std::time::Instant::now() < wait_until => {
                if !told {
                    eprintln!(
                        "machine busy {:.0}% with other work; waiting up to {:.0} s for a quiet moment...",
                        x * 100.0,
                        args.quiet_wait
                    );
                    told = true;
                }
            }
            _ => break b,
        }
    };
    // Facts (and the date) of the moment the measurements start.
    let machine = report::Machine::collect(tmp.path());

    // The RPC stand-in (exact-svm builds read a blockhash from it, mpp-tempo builds a gas
    // estimate and fees, in the bare costs and in the server).
    let rpc = if args.kind.reads_chain() && args.instruments.is_none() {
        Some(rpc::start(kinds::blockhash()).await?)
    } else {
        None
    };
    let rpc_url = rpc.as_ref().map(rpc::Rpc::url);

    eprintln!("bare costs ({} s each)...", args.bare_seconds);
    let scratch = match admin {
        Some(a) => Some(a.create().await?),
        None => None,
    };
    let bare = bare::run(
        tmp.path(),
        Duration::from_secs_f64(args.bare_seconds),
        scratch.as_ref().map(|d| d.url.as_str()),
        args.kind,
        rpc_url.as_deref(),
    )
    .await;
    if let (Some(a), Some(d)) = (admin, &scratch) {
        a.drop_db(&d.name).await?;
    }
    let bare = bare?;

    let template = server::NodeSpec {
        binary: binary.to_path_buf(),
        dir: tmp.path().to_path_buf(),
        store: server::Store::Sqlite {
            data_dir: tmp.path().join("data"),
        },
        max_connections: args.database_max_connections,
        master_key: server::master_key(),
        log_filter: args.server_log.clone(),
        env: rpc_url
            .iter()
            .flat_map(|u| {
                [
                    purser_chain::Chain::SolanaDevnet,
                    purser_chain::Chain::TempoModerato,
                ]
                .map(|c| (c.rpc_env_var().to_string(), u.clone()))
            })
            .collect(),
    };
    let mut stores = Stores {
        tmp: tmp.path().to_path_buf(),
        admin,
        next: 0,
    };
    let signer = client::Signer::new(
        server::ACCESS_KEY_ID,
        server::SECRET_ACCESS_KEY,
        server::REGION,
    );
    let several_sqlite = |e: anyhow::Error| {
        if admin.is_none() && args.nodes > 1 {
            e.context(format!(
                "{} nodes on one SQLite file did not work (run with --nodes 1, or several nodes on PostgreSQL with --database-url)",
                args.nodes
            ))
        } else {
            e
        }
    };
    let common = |bare| report::Common {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        server_binary: binary.display().to_string(),
        server_log: args.server_log.clone(),
        machine: &machine,
        bare,
        store: store.clone(),
        postgres: admin.is_some(),
        nodes: args.nodes,
        max_connections: args.database_max_connections,
        background_before,
        background_after: None,
    };

    if let Some(scales) = &args.instruments {
        let params = instruments::Params {
            nodes: args.nodes,
            signer: &signer,
            concurrency,
            warmup: Duration::from_secs_f64(args.warmup),
            duration: Duration::from_secs_f64(args.seconds),
            max_requests: args.requests,
        };
        let mut results = Vec::new();
        for &scale in scales {
            eprintln!("scale {scale}: fresh store and nodes...");
            let fresh = stores.fresh(&template).await?;
            let r = instruments::run_scale(&fresh.spec, &params, scale).await;
            stores.release(fresh).await;
            results.push(r.map_err(several_sqlite)?);
        }
        let background_after = server::background_busy(Duration::from_secs(1)).await;
        return Ok(report::render_instruments(&report::InstrumentsRun {
            common: report::Common {
                background_after,
                ..common(&bare)
            },
            warmup_s: args.warmup,
            seconds: args.seconds,
            scales: &results,
        }));
    }

    let fresh = stores.fresh(&template).await?;
    let rpc_before = rpc
        .as_ref()
        .map(|r| r.calls.load(std::sync::atomic::Ordering::Relaxed));
    let levels = payments(args, concurrency, &fresh.spec, &signer).await;
    let rpc_calls = rpc
        .as_ref()
        .zip(rpc_before)
        .map(|(r, b)| r.calls.load(std::sync::atomic::Ordering::Relaxed) - b);
    stores.release(fresh).await;
    let levels = levels.map_err(several_sqlite)?;
    let background_after = server::background_busy(Duration::from_secs(1)).await;

    if let Some(path) = &args.latency_csv {
        use std::io::Write as _;
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        writeln!(w, "clients,start_us,latency_us")?;
        for l in &levels {
            for (at, us) in &l.timeline {
                writeln!(w, "{},{at},{us}", l.clients)?;
            }
        }
        w.flush()?;
        eprintln!("latencies written to {}", path.display());
    }

    Ok(report::render(&report::Run {
        common: report::Common {
            background_after,
            ..common(&bare)
        },
        agents: args.agents,
        warmup_s: args.warmup,
        seconds: args.seconds,
        rate: args.rate,
        levels: &levels,
        kind: args.kind,
        rpc_calls,
    }))
}

/// The ProcessPayment mode on one fresh store: nodes, setup through node 1, the levels.
async fn payments(
    args: &Args,
    concurrency: &[usize],
    spec: &server::NodeSpec,
    signer: &client::Signer,
) -> anyhow::Result<Vec<load::LevelResult>> {
    eprintln!(
        "starting {} node(s) of {}...",
        args.nodes,
        spec.binary.display()
    );
    let cluster = server::Cluster::start(spec, args.nodes).await?;
    let fixture = setup::run(cluster.first(), signer, args.agents, args.kind)
        .await
        .with_context(|| format!("setup; node logs:\n{}", cluster.log_tail()))?;
    eprintln!(
        "setup done: manager {}, {} {} wallets + sessions; paying {}",
        fixture.manager_arn,
        fixture.agents.len(),
        args.kind.instrument_network(),
        args.kind.name()
    );
    let workload = load::Workload::Payments {
        fixture: &fixture,
        client_tokens: !args.no_client_token,
        kind: args.kind,
    };
    let mut levels = Vec::new();
    for &clients in concurrency {
        eprintln!(
            "{clients} client(s): {} s warm-up + {} s measured...",
            args.warmup, args.seconds
        );
        let cfg = load::LevelConfig {
            clients,
            warmup: Duration::from_secs_f64(args.warmup),
            duration: Duration::from_secs_f64(args.seconds),
            max_requests: args.requests,
            rate: args.rate,
            db_cpu: spec.store.is_postgres(),
        };
        let r = load::run_level(&cluster, signer, &workload, &cfg).await?;
        eprintln!(
            "  {:.0} payments/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} errors",
            r.throughput(),
            r.quantile_ms(0.5),
            r.quantile_ms(0.99),
            r.max_ms(),
            r.errors
        );
        if let Some(e) = &r.first_error {
            eprintln!("  first error: {e}");
        }
        levels.push(r);
    }
    Ok(levels)
}
