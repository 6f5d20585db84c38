//! Machine facts and the Markdown report.
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::bare::{Bare, Measure};
use crate::instruments::{Op, PAGE, ScaleResult};
use crate::load::LevelResult;

/// Throughput target: durable payments per second.
pub const TARGET_TPS: f64 = 2000.0;
/// Latency target: p99 at 64 concurrent clients, milliseconds.
pub const TARGET_P99_MS: f64 = 10.0;
pub const TARGET_CLIENTS: usize = 64;

pub struct Machine {
    pub date: String,
    pub nproc: usize,
    pub cpu: String,
    pub kernel: String,
    pub memory: String,
    pub rustc: String,
    pub filesystem: String,
}

impl Machine {
    pub fn collect(data_dir: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, v)| v.trim().to_string());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map_or_else(
                || "unknown".into(),
                |kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0),
            );
        let rustc = Command::new("rustc")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map_or_else(
                || "unknown (rustc not on PATH)".into(),
                |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
            );
        Machine {
            date: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| "unknown".into()),
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
            memory,
            rustc,
            filesystem: filesystem_of(data_dir),
        }
    }
}

/// "ext4 on /dev/vda (mounted at /)" for the mount that holds `path`.
fn filesystem_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let mnt = f[1].replace("\\040", " ");
        if path.starts_with(&mnt) && best.as_ref().is_none_or(|(len, _)| mnt.len() >= *len) {
            let opts: Vec<&str> = f[3]
                .split(',')
                .filter(|o| {
                    o.starts_with("barrier")
                        || o.starts_with("nobarrier")
                        || o.starts_with("data=")
                        || o.starts_with("commit=")
                        || *o == "sync"
                })
                .collect();
            let extra = if opts.is_empty() {
                String::new()
            } else {
                format!(", {}", opts.join(","))
            };
            best = Some((
                mnt.len(),
                format!("{} on {} (mounted at {}{})", f[2], f[0], mnt, extra),
            ));
        }
    }
    best.map_or_else(|| "unknown".into(), |(_, s)| s)
}

/// What both modes' reports start with.
pub struct Common<'a> {
    pub command: String,
    pub server_binary: String,
    pub server_log: String,
    pub machine: &'a Machine,
    pub bare: &'a Bare,
    /// The store, described (engine, settings, database).
    pub store: String,
    pub postgres: bool,
    pub nodes: usize,
    pub max_connections: Option<u32>,
    /// Share of the machine busy with other work just before / after the run (0..1).
    pub background_before: Option<f64>,
    pub background_after: Option<f64>,
}

pub struct Run<'a> {
    pub common: Common<'a>,
    pub agents: usize,
    pub warmup_s: f64,
    pub seconds: f64,
    pub rate: Option<f64>,
    pub levels: &'a [LevelResult],
    pub kind: crate::kinds::PayKind,
    /// getLatestBlockhash calls the bench's RPC stand-in served during the levels.
    pub rpc_calls: Option<u64>,
}

pub struct InstrumentsRun<'a> {
    pub common: Common<'a>,
    pub warmup_s: f64,
    pub seconds: f64,
    pub scales: &'a [ScaleResult],
}

fn ms(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x < 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.1}")
    }
}

fn cpu_per_payment(cpu: Option<std::time::Duration>, ok: u64) -> String {
    match cpu {
        Some(c) if ok > 0 => format!("{:.0}", c.as_secs_f64() * 1e6 / ok as f64),
        _ => "-".into(),
    }
}

fn measure_row(out: &mut String, m: &Measure) {
    let pct = match (m.pct_us(0.5), m.pct_us(0.99)) {
        (Some(a), Some(b)) => format!("{a:.0} / {b:.0}"),
        _ => "-".into(),
    };
    let _ = writeln!(
        out,
        "| {} | {:.0} | {:.1} | {:.1} | {} | {} | {} |",
        m.name,
        m.ops_per_sec(),
        m.us_per_op(),
        m.cpu_us_per_op(),
        pct,
        m.ops,
        match m.db_cpu_us_per_op() {
            Some(d) => format!("{}; PostgreSQL processes' CPU {d:.0} µs/op", m.note),
            None => m.note.clone(),
        }
    );
}

fn per_op(cpu: Option<std::time::Duration>, ok: u64) -> String {
    cpu_per_payment(cpu, ok)
}

fn busy(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |b| format!("{:.0}%", b * 100.0))
}

fn share_of_core(c: Option<std::time::Duration>, over: std::time::Duration) -> String {
    c.map_or_else(
        || "-".into(),
        |c| {
            format!(
                "{:.2} s ({:.0}% of one core)",
                c.as_secs_f64(),
                100.0 * c.as_secs_f64() / over.as_secs_f64().max(1e-9)
            )
        },
    )
}

/// Title, machine, command, background load, store and nodes.
fn header(out: &mut String, title: &str, c: &Common) {
    let m = c.machine;
    let _ = writeln!(out, "# {title}\n");
    let _ = writeln!(out, "- date: {}", m.date);
    let _ = writeln!(
        out,
        "- machine: {} cores (`nproc`), {}, {} RAM, Linux {}",
        m.nproc, m.cpu, m.memory, m.kernel
    );
    let _ = writeln!(out, "- toolchain: {}", m.rustc);
    // SAFETY: getpriority has no preconditions; errno is not consulted (0 is a valid value).
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let _ = writeln!(
        out,
        "- scheduling priority of the bench and the server: nice {nice}"
    );
    let _ = writeln!(out, "- data directory filesystem: {}", m.filesystem);
    let _ = writeln!(out, "- command: `{}`", c.command);
    let pct = |x: Option<f64>| x.map_or_else(|| "unknown".into(), |b| format!("{:.0}%", b * 100.0));
    let _ = writeln!(
        out,
        "- background load (CPU used by other processes, share of the whole machine, 1 s sample): {} before the run, {} after it",
        pct(c.background_before),
        pct(c.background_after)
    );
    let _ = writeln!(out, "- store: {}", c.store);
    let _ = writeln!(
        out,
        "- server: {} node{}: `{} serve --listen 127.0.0.1:<free port> --data-dir <tempdir>{}{}`, log filter `{}`; every node gets the same credential and the same PURSER_MASTER_KEY; setup goes through node 1, client i talks to node i mod {}",
        c.nodes,
        if c.nodes == 1 { "" } else { "s" },
        c.server_binary,
        if c.postgres {
            " --database-url postgres://<admin host>/<fresh database>"
        } else {
            ""
        },
        c.max_connections
            .map_or_else(String::new, |n| format!(" --database-max-connections {n}")),
        c.server_log,
        c.nodes,
    );
    if c.postgres {
        let _ = writeln!(
            out,
            "- PostgreSQL CPU = utime + stime of every process named `postgres` on the machine (backends, WAL writer, checkpointer, autovacuum of any database), read from /proc before and after each measured phase"
        );
    }
    if !c.postgres && c.nodes > 1 {
        let _ = writeln!(
            out,
            "- several nodes on one SQLite file: each node is its own process with its own connection pool and its own ledger task; SQLite lets one process write at a time (file lock, busy_timeout 10 s) and the nodes cannot batch each other's payments"
        );
    }
}

fn bare_table(out: &mut String, bare: &Bare) {
    let _ = writeln!(
        out,
        "\n## Bare costs (same binary, same run, server not running)\n"
    );
    let _ = writeln!(
        out,
        "| operation | ops/s | wall µs/op (per thread) | CPU µs/op | p50 / p99 wall µs | ops | what |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
    for x in bare.cpu.iter().chain(bare.disk.iter()) {
        measure_row(out, x);
    }
}

pub fn render(r: &Run) -> String {
    let c = &r.common;
    let mut out = String::new();
    header(&mut out, "Purser ProcessPayment benchmark", c);
    let _ = writeln!(
        out,
        "- load: {}, one keep-alive HTTP/1.1 connection per client, every request SigV4-signed afresh in the client task; {} wallets + sessions (client i pays with pair i mod {}); {} s warm-up then {} s measured per level; latency = send to last byte of the reply{}; any non-2xx reply is an error",
        match r.rate {
            None =>
                "closed loop (each client sends its next request when the previous reply is in)"
                    .to_string(),
            Some(x) => format!(
                "open loop at {x:.0} requests/s offered by all clients together (fixed schedule)"
            ),
        },
        r.agents,
        r.agents,
        r.warmup_s,
        r.seconds,
        if r.rate.is_some() {
            " (from the scheduled time when a client fell behind its schedule)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "- payment kind (`--kind {}`): {}{}",
        r.kind.name(),
        r.kind.describe(),
        r.rpc_calls.map_or_else(String::new, |n| format!(
            "; the bench's Solana RPC stand-in served {n} getLatestBlockhash calls during the levels (warm-up included)"
        ))
    );
    bare_table(&mut out, c.bare);

    let _ = writeln!(out, "\n## ProcessPayment over loopback\n");
    let _ = writeln!(
        out,
        "| clients | payments/s | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU µs/payment{} | client CPU µs/payment{} | machine busy | other processes' CPU |",
        if c.nodes > 1 { " (all nodes)" } else { "" },
        if c.postgres {
            " | PostgreSQL CPU µs/payment"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|{}",
        if c.postgres { "---:|" } else { "" }
    );
    for l in r.levels {
        let db = if c.postgres {
            format!(" | {}", per_op(l.db_cpu, l.ok))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {}{db} | {} | {} |",
            l.clients,
            l.throughput(),
            ms(l.quantile_ms(0.5)),
            ms(l.quantile_ms(0.9)),
            ms(l.quantile_ms(0.99)),
            ms(l.max_ms()),
            l.errors,
            cpu_per_payment(l.server_cpu, l.ok),
            cpu_per_payment(l.client_cpu, l.ok),
            busy(l.machine_busy),
            l.other_cpu.map_or_else(
                || "-".into(),
                |c| format!(
                    "{:.0}% of a core",
                    100.0 * c.as_secs_f64() / l.measured.as_secs_f64().max(1e-9)
                )
            ),
        );
    }
    for l in r.levels {
        let _ = writeln!(
            out,
            "\n### {} concurrent client{}\n",
            l.clients,
            if l.clients == 1 { "" } else { "s" }
        );
        let _ = writeln!(out, "| metric | value |");
        let _ = writeln!(out, "|---|---:|");
        let _ = writeln!(out, "| successful payments (measured) | {} |", l.ok);
        let _ = writeln!(out, "| measured time | {:.2} s |", l.measured.as_secs_f64());
        let _ = writeln!(out, "| throughput | {:.0} payments/s |", l.throughput());
        let _ = writeln!(out, "| mean latency | {} ms |", ms(l.mean_ms()));
        for (q, name) in [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9")] {
            let _ = writeln!(out, "| {name} | {} ms |", ms(l.quantile_ms(q)));
        }
        let _ = writeln!(out, "| max | {} ms |", ms(l.max_ms()));
        let _ = writeln!(
            out,
            "| errors (measured / warm-up) | {} / {} |",
            l.errors, l.warmup_errors
        );
        let _ = writeln!(out, "| warm-up payments | {} |", l.warmup_ok);
        let _ = writeln!(
            out,
            "| server CPU{} | {} |",
            if c.nodes > 1 { " (all nodes)" } else { "" },
            share_of_core(l.server_cpu, l.measured)
        );
        let _ = writeln!(
            out,
            "| bench (client) CPU | {} |",
            share_of_core(l.client_cpu, l.measured)
        );
        if c.postgres {
            let _ = writeln!(
                out,
                "| PostgreSQL CPU (all `postgres` processes) | {} |",
                share_of_core(l.db_cpu, l.measured)
            );
        }
        if let Some(e) = &l.first_error {
            let e: String = e.chars().take(500).collect();
            let _ = writeln!(out, "\nfirst error: `{}`", e.replace('`', "'"));
        }
    }

    let _ = writeln!(out, "\n## Verdict\n");
    let best = r
        .levels
        .iter()
        .max_by(|a, b| a.throughput().total_cmp(&b.throughput()));
    let at64 = r.levels.iter().find(|l| l.clients == TARGET_CLIENTS);
    match at64 {
        Some(l) => {
            let tps = l.throughput();
            let p99 = l.quantile_ms(0.99);
            // Open loop: the throughput is what was offered, at most; it meets the target
            // when at least the target rate was offered and (nearly) all of it completed.
            let tps_ok = l.errors == 0
                && match r.rate {
                    None => tps >= TARGET_TPS,
                    Some(rate) => rate >= TARGET_TPS && tps >= 0.99 * rate,
                };
            let p99_ok = p99 < TARGET_P99_MS;
            let shortfall = if tps_ok {
                String::new()
            } else {
                match r.rate {
                    Some(rate) if rate < TARGET_TPS => {
                        format!(
                            " (only {rate:.0}/s was offered: run with --rate {TARGET_TPS:.0} or more)"
                        )
                    }
                    Some(rate) => format!(
                        " ({:.0}% of the offered {rate:.0}/s completed)",
                        100.0 * tps / rate
                    ),
                    None => format!(
                        " ({:.0}% of target, {:.1}x short)",
                        100.0 * tps / TARGET_TPS,
                        TARGET_TPS / tps.max(1e-9)
                    ),
                }
            };
            let _ = writeln!(
                out,
                "- throughput at {TARGET_CLIENTS} clients: {tps:.0} durable payments/s{} against a target of >= {TARGET_TPS:.0}: **{}**{shortfall}",
                r.rate
                    .map_or_else(String::new, |x| format!(" (offered {x:.0}/s)")),
                if tps_ok { "met" } else { "missed" },
            );
            let _ = writeln!(
                out,
                "- p99 at {TARGET_CLIENTS} clients: {} ms against a target of < {TARGET_P99_MS:.0} ms: **{}**{}",
                ms(p99),
                if p99_ok { "met" } else { "missed" },
                if p99_ok {
                    String::new()
                } else {
                    format!(" ({:.1}x the target)", p99 / TARGET_P99_MS)
                }
            );
            if let Some(b) = best {
                let _ = writeln!(
                    out,
                    "- best throughput of the run: {:.0} payments/s at {} client{}",
                    b.throughput(),
                    b.clients,
                    if b.clients == 1 { "" } else { "s" }
                );
            }
            if r.rate.is_none() {
                let _ = writeln!(
                    out,
                    "- note: in a closed loop the mean latency is clients / throughput (Little's law), so p99 < {TARGET_P99_MS:.0} ms at {TARGET_CLIENTS} clients needs more than {:.0} payments/s; `--rate {TARGET_TPS:.0}` measures the latency of {TARGET_CLIENTS} clients offering {TARGET_TPS:.0} payments/s instead",
                    TARGET_CLIENTS as f64 / (TARGET_P99_MS / 1000.0)
                );
            }
            let _ = writeln!(
                out,
                "\nVERDICT: {} (>= {TARGET_TPS:.0} payments/s durable, p99 < {TARGET_P99_MS:.0} ms at {TARGET_CLIENTS} clients)",
                if tps_ok && p99_ok { "PASS" } else { "FAIL" }
            );
        }
        None => {
            let _ = writeln!(
                out,
                "VERDICT: not evaluated (the targets are stated at {TARGET_CLIENTS} clients; run with `--concurrency` including {TARGET_CLIENTS})"
            );
        }
    }
    out
}

/// The instruments-at-scale report.
pub fn render_instruments(r: &InstrumentsRun) -> String {
    let c = &r.common;
    let mut out = String::new();
    header(&mut out, "Purser payment instruments at scale", c);
    let _ = writeln!(
        out,
        "- per scale S: a fresh store and fresh nodes; CreatePaymentManager, CreatePaymentConnector (SelfCustody) and one CreatePaymentInstrument (embedded Ethereum wallet, user `bench`) through the API; the nodes stopped; S - 1 copies of that instrument's row inserted straight into `instruments` (fresh random ids in the server's format, status ACTIVE, every other column copied: same account, manager, user, connector, wallet address and sealed key) in one transaction of {}-row `INSERT … SELECT` statements; ANALYZE on SQLite, VACUUM ANALYZE of `instruments` on PostgreSQL (the state autovacuum leaves a bulk-loaded table in); the nodes started again",
        50_000
    );
    let _ = writeln!(
        out,
        "- the copied rows' sealed keys (and sealed linked accounts) cannot be unsealed: the seal is bound to the instrument id. Listing never unseals, so the pages are real; only signing with a copy would fail"
    );
    let _ = writeln!(
        out,
        "- load: closed loop, one keep-alive HTTP/1.1 connection per client, every request SigV4-signed afresh; {} s warm-up then {} s measured per level; latency = send to last byte of the reply; any non-2xx reply is an error (ListPaymentInstruments answers 200, CreatePaymentInstrument 201). ListPaymentInstruments uses maxResults={PAGE}; \"first page\" sends the same first-page request again and again; \"walking pages\" follows each reply's nextToken from the first page to the last and starts again (every page of the walk is counted, the first page once per S/{PAGE} pages); CreatePaymentInstrument runs last, each create adds a row",
        r.warmup_s, r.seconds
    );
    bare_table(&mut out, c.bare);

    let _ = writeln!(out, "\n## Setup per scale\n");
    let _ = writeln!(
        out,
        "| scale | rows in `instruments` | nodes start + API setup s | bulk insert s | (VACUUM) ANALYZE s | nodes stop + restart s | total s |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
    for s in r.scales {
        let t = &s.setup;
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            s.scale,
            s.rows,
            t.api.as_secs_f64(),
            t.bulk.as_secs_f64(),
            t.analyze.as_secs_f64(),
            t.restart.as_secs_f64(),
            t.total().as_secs_f64()
        );
    }

    let _ = writeln!(out, "\n## Operations over loopback\n");
    let _ = writeln!(
        out,
        "| scale | operation | clients | ops/s | p50 ms | p99 ms | max ms | errors | server CPU µs/op{} | client CPU µs/op{} | machine busy |",
        if c.nodes > 1 { " (all nodes)" } else { "" },
        if c.postgres {
            " | PostgreSQL CPU µs/op"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|{}",
        if c.postgres { "---:|" } else { "" }
    );
    for s in r.scales {
        for (op, l) in &s.results {
            let db = if c.postgres {
                format!(" | {}", per_op(l.db_cpu, l.ok))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} {}/s | {} | {} | {} | {} | {} | {}{db} | {} |",
                s.scale,
                op.label(),
                l.clients,
                l.throughput(),
                op.unit(),
                ms(l.quantile_ms(0.5)),
                ms(l.quantile_ms(0.99)),
                ms(l.max_ms()),
                l.errors,
                per_op(l.server_cpu, l.ok),
                per_op(l.client_cpu, l.ok),
                busy(l.machine_busy),
            );
        }
    }
    for s in r.scales {
        for (op, l) in &s.results {
            if let Some(e) = &l.first_error {
                let e: String = e.chars().take(500).collect();
                let _ = writeln!(
                    out,
                    "\nfirst error at scale {}, {}, {} clients: `{}`",
                    s.scale,
                    op.label(),
                    l.clients,
                    e.replace('`', "'")
                );
            }
        }
    }

    // Page cost at the largest scale against the smallest.
    let (Some(small), Some(large)) = (
        r.scales.iter().min_by_key(|s| s.scale),
        r.scales.iter().max_by_key(|s| s.scale),
    ) else {
        return out;
    };
    if small.scale == large.scale {
        return out;
    }
    let _ = writeln!(
        out,
        "\n## Page cost at {} instruments against {}\n",
        large.scale, small.scale
    );
    let _ = writeln!(
        out,
        "| operation | clients | p50 ms at {a} | p50 ms at {b} | p50 ratio | server CPU µs/page at {a} | at {b} | server CPU ratio |{}",
        if c.postgres {
            format!(
                " PostgreSQL CPU µs/page at {} | at {} | PostgreSQL CPU ratio |",
                small.scale, large.scale
            )
        } else {
            String::new()
        },
        a = small.scale,
        b = large.scale,
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|{}",
        if c.postgres { "---:|---:|---:|" } else { "" }
    );
    let per_page = |cpu: Option<std::time::Duration>, l: &LevelResult| {
        cpu.filter(|_| l.ok > 0)
            .map(|c| c.as_secs_f64() * 1e6 / l.ok as f64)
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if a > 0.0 && a.is_finite() && b.is_finite() => {
            format!("{:.2}x", b / a)
        }
        _ => "-".into(),
    };
    let num = |x: Option<f64>| x.map_or_else(|| "-".into(), |x| format!("{x:.0}"));
    for (op, a) in &small.results {
        if *op == Op::Create {
            continue;
        }
        let Some((_, b)) = large
            .results
            .iter()
            .find(|(o, l)| o == op && l.clients == a.clients)
        else {
            continue;
        };
        let (pa, pb) = (a.quantile_ms(0.5), b.quantile_ms(0.5));
        let (ca, cb) = (per_page(a.server_cpu, a), per_page(b.server_cpu, b));
        let db = if c.postgres {
            let (da, dbb) = (per_page(a.db_cpu, a), per_page(b.db_cpu, b));
            format!(" {} | {} | {} |", num(da), num(dbb), ratio(da, dbb))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |{db}",
            op.label(),
            a.clients,
            ms(pa),
            ms(pb),
            ratio(Some(pa), Some(pb)),
            num(ca),
            num(cb),
            ratio(ca, cb),
        );
    }
    out
}
