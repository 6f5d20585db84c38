//! `purser-bench`: ProcessPayment throughput and latency percentiles at several client
//! concurrencies (SigV4-signed requests over loopback against a real `purser serve`),
//! beside the bare cost of one EIP-712 signature and one durable commit measured by the
//! same binary in the same run. Writes a Markdown report to stdout (and `--out FILE`).
//!
//! It is a benchmark, not a test: it never fails on a missed target, only on a harness
//! problem (the server does not start, setup is refused).
mod bare;
mod client;
mod load;
mod report;
mod server;
mod setup;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

/// Benchmark Purser's ProcessPayment (loopback only). Builds on
/// `cargo build --release -p purser -p purser-bench`.
#[derive(Debug, Parser)]
#[command(name = "purser-bench", version, about)]
struct Args {
    /// Measured seconds per concurrency level.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up seconds per level (same connections, not measured).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Concurrent clients per level, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    concurrency: Vec<usize>,
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
    /// Wallets and sessions to create; client i pays with pair i mod this.
    #[arg(long, default_value_t = 8)]
    agents: usize,
    /// Seconds spent on each bare-cost measurement.
    #[arg(long, default_value_t = 1.0)]
    bare_seconds: f64,
    /// Parent of the temporary directory (server data, commit and fsync files).
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
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs positive numbers");
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
    let report = rt.block_on(run(&args, &binary))?;
    print!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("report written to {}", out.display());
    }
    Ok(())
}

async fn run(args: &Args, binary: &std::path::Path) -> anyhow::Result<String> {
    let tmp = match &args.dir {
        Some(d) => tempfile::Builder::new()
            .prefix("purser-bench-")
            .tempdir_in(d)?,
        None => tempfile::Builder::new().prefix("purser-bench-").tempdir()?,
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

    eprintln!("bare costs ({} s each)...", args.bare_seconds);
    let bare = bare::run(tmp.path(), Duration::from_secs_f64(args.bare_seconds)).await?;

    eprintln!("starting {}...", binary.display());
    let mut srv = server::Server::start(binary, tmp.path(), &args.server_log).await?;
    eprintln!("server pid {} on {}", srv.pid, srv.addr);
    let signer = client::Signer::new(
        server::ACCESS_KEY_ID,
        server::SECRET_ACCESS_KEY,
        server::REGION,
    );
    let fixture = setup::run(srv.addr, &signer, args.agents)
        .await
        .with_context(|| format!("setup; server log:\n{}", srv.log_tail()))?;
    eprintln!(
        "setup done: manager {}, {} wallets + sessions",
        fixture.manager_arn,
        fixture.agents.len()
    );

    let mut levels = Vec::new();
    for &clients in &args.concurrency {
        eprintln!(
            "{clients} client(s): {:.0} s warm-up + {:.0} s measured...",
            args.warmup, args.seconds
        );
        let cfg = load::LevelConfig {
            clients,
            warmup: Duration::from_secs_f64(args.warmup),
            duration: Duration::from_secs_f64(args.seconds),
            max_requests: args.requests,
            rate: args.rate,
        };
        let r = load::run_level(&srv, &signer, &fixture, &cfg).await?;
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
    srv.stop();
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

    let command = std::env::args().collect::<Vec<_>>().join(" ");
    Ok(report::render(&report::Run {
        command,
        server_binary: binary.display().to_string(),
        server_log: args.server_log.clone(),
        agents: args.agents,
        warmup_s: args.warmup,
        seconds: args.seconds,
        rate: args.rate,
        machine: &machine,
        bare: &bare,
        levels: &levels,
        background_before,
        background_after,
    }))
}
