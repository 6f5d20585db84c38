//! Load: N clients, each with its own keep-alive connection to one node (client i to node
//! i mod nodes), each sending freshly signed requests one after another (closed loop) or
//! on a fixed schedule (open loop). Used by both modes: ProcessPayment, and the
//! instrument operations.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

use crate::client::{Conn, Reply, Signer};
use crate::kinds::PayKind;
use crate::server::{self, Cluster};
use crate::setup::{Fixture, USER, payment_body};

/// What the clients of a level send (every request as user [`USER`]).
pub enum Workload<'a> {
    /// ProcessPayment; client i pays with agent i mod agents, each request with a fresh
    /// clientToken unless `client_tokens` is false.
    Payments {
        fixture: &'a Fixture,
        client_tokens: bool,
        kind: PayKind,
    },
    /// The same POST every time.
    Repeat { path: &'static str, body: Value },
    /// ListPaymentInstruments-style paging: `body` (an object without nextToken) first,
    /// then the same with each reply's nextToken; after the last page, from the start
    /// again.
    WalkPages { path: &'static str, body: Value },
}

/// One client's request stream.
struct ClientOp {
    path: &'static str,
    body: Bytes,
    /// Paging: the first request's body, to which nextToken is added.
    walk: Option<serde_json::Map<String, Value>>,
    /// ProcessPayment: the body without a clientToken, and this client's token stream.
    /// boto3 and the AWS SDKs fill a fresh clientToken (a UUID) into every request that
    /// has one, so every payment the bench sends carries a new token, and the server
    /// looks for a replay each time, as it does for a real agent.
    pay: Option<(serde_json::Map<String, Value>, Tokens)>,
}

/// Fresh clientTokens, shaped like the UUIDs the SDKs generate.
struct Tokens {
    run: u32,
    client: u16,
    next: u64,
}

impl Tokens {
    fn next(&mut self) -> String {
        self.next += 1;
        format!(
            "{:08x}-{:04x}-4000-8000-{:012x}",
            self.run, self.client, self.next
        )
    }
}

impl ClientOp {
    fn new(w: &Workload<'_>, client: usize) -> anyhow::Result<ClientOp> {
        Ok(match w {
            Workload::Payments {
                fixture: f,
                client_tokens,
                kind,
            } => {
                let body = payment_body(&f.manager_arn, &f.agents[client % f.agents.len()], *kind);
                let Value::Object(template) = body.clone() else {
                    anyhow::bail!("a payment body must be a JSON object");
                };
                ClientOp {
                    path: "/payments/processPayment",
                    body: Bytes::from(body.to_string()),
                    walk: None,
                    pay: client_tokens.then(|| {
                        (
                            template,
                            Tokens {
                                run: rand::random(),
                                client: client as u16,
                                next: 0,
                            },
                        )
                    }),
                }
            }
            Workload::Repeat { path, body } => ClientOp {
                path,
                body: Bytes::from(body.to_string()),
                walk: None,
                pay: None,
            },
            Workload::WalkPages { path, body } => {
                let Value::Object(first) = body else {
                    anyhow::bail!("a paging body must be a JSON object");
                };
                ClientOp {
                    path,
                    body: Bytes::from(body.to_string()),
                    walk: Some(first.clone()),
                    pay: None,
                }
            }
        })
    }

    /// The body of the next request.
    fn request_body(&mut self) -> Bytes {
        match &mut self.pay {
            Some((template, tokens)) => {
                let mut body = template.clone();
                body.insert("clientToken".into(), Value::String(tokens.next()));
                Bytes::from(Value::Object(body).to_string())
            }
            None => self.body.clone(),
        }
    }

    /// After a 200: the next request (paging follows nextToken).
    fn next(&mut self, reply: &Reply) -> Result<(), String> {
        let Some(first) = &self.walk else {
            return Ok(());
        };
        let v = reply.json().map_err(|e| format!("{e:#}"))?;
        let mut body = first.clone();
        match v.get("nextToken") {
            Some(Value::String(t)) => {
                body.insert("nextToken".into(), Value::String(t.clone()));
            }
            None | Some(Value::Null) => {}
            Some(other) => return Err(format!("nextToken is not a string: {other}")),
        }
        self.body = Bytes::from(Value::Object(body).to_string());
        Ok(())
    }
}

/// Upper bound on measured requests of one level, whatever the flags say.
pub const HARD_MAX_REQUESTS: u64 = 5_000_000;
/// A request that takes longer than this is an error (and its connection is replaced).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct LevelConfig {
    pub clients: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Measured requests of the whole level (all clients together).
    pub max_requests: u64,
    /// Open loop: the clients together start this many requests per second on a fixed
    /// schedule (each client every `clients / rate` seconds). None: closed loop, each
    /// client sends its next request as soon as the previous reply is in.
    pub rate: Option<f64>,
    /// Also read the CPU time of the PostgreSQL processes (see [`server::postgres_cpu`]).
    pub db_cpu: bool,
}

#[derive(Default)]
struct ClientResult {
    latencies_us: Vec<u32>,
    /// When each measured successful request started, µs after the measured phase began.
    started_us: Vec<u32>,
    ok: u64,
    errors: u64,
    warmup_ok: u64,
    warmup_errors: u64,
    first_error: Option<String>,
    last_done: Option<Instant>,
}

pub struct LevelResult {
    pub clients: usize,
    pub measured: Duration,
    pub ok: u64,
    pub errors: u64,
    pub warmup_ok: u64,
    pub warmup_errors: u64,
    pub first_error: Option<String>,
    /// Sorted latencies of successful measured requests, microseconds.
    pub sorted_us: Vec<u32>,
    /// (start µs after the measured phase began, latency µs) of each successful measured
    /// request, in start order.
    pub timeline: Vec<(u32, u32)>,
    /// CPU time of all nodes together.
    pub server_cpu: Option<Duration>,
    pub client_cpu: Option<Duration>,
    /// CPU time of the PostgreSQL processes (when asked for).
    pub db_cpu: Option<Duration>,
    /// Share of the whole machine busy during the measured phase (0..1).
    pub machine_busy: Option<f64>,
    /// CPU used by everything but the nodes, the database and this bench during the
    /// measured phase.
    pub other_cpu: Option<Duration>,
}

impl LevelResult {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.measured.as_secs_f64().max(1e-9)
    }

    /// Latency at quantile `q` (0..=1), milliseconds, nearest-rank.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.sorted_us.is_empty() {
            return f64::NAN;
        }
        let n = self.sorted_us.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.sorted_us[rank - 1] as f64 / 1000.0
    }

    pub fn mean_ms(&self) -> f64 {
        if self.sorted_us.is_empty() {
            return f64::NAN;
        }
        self.sorted_us.iter().map(|&x| x as f64).sum::<f64>() / self.sorted_us.len() as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.sorted_us
            .last()
            .map_or(f64::NAN, |&x| x as f64 / 1000.0)
    }
}

pub async fn run_level(
    cluster: &Cluster,
    signer: &Signer,
    workload: &Workload<'_>,
    cfg: &LevelConfig,
) -> anyhow::Result<LevelResult> {
    // Connect everyone first, so connection setup is in neither phase.
    let mut conns = Vec::with_capacity(cfg.clients);
    for i in 0..cfg.clients {
        let addr = cluster.addr_for(i);
        conns.push((
            addr,
            Conn::connect(addr).await?,
            ClientOp::new(workload, i)?,
        ));
    }
    let budget = Arc::new(AtomicU64::new(cfg.max_requests.min(HARD_MAX_REQUESTS)));
    let start = Instant::now();
    let measure_start = start + cfg.warmup;
    let end = measure_start + cfg.duration;

    let mut handles = Vec::with_capacity(cfg.clients);
    for (i, (addr, conn, op)) in conns.into_iter().enumerate() {
        let signer = signer.clone();
        let budget = budget.clone();
        // Open loop: client i's schedule is offset by i/clients of its interval, so the
        // clients together send evenly spaced requests.
        let pace = cfg.rate.map(|rate| {
            let interval = Duration::from_secs_f64(cfg.clients as f64 / rate);
            (
                start + interval.mul_f64(i as f64 / cfg.clients as f64),
                interval,
            )
        });
        handles.push(tokio::spawn(client_loop(
            addr,
            conn,
            signer,
            op,
            measure_start,
            end,
            budget,
            pace,
        )));
    }

    // CPU accounting over the measured phase only.
    tokio::time::sleep_until(measure_start.into()).await;
    let s0 = cluster.cpu();
    let c0 = server::process_cpu("/proc/self/stat");
    let d0 = cfg.db_cpu.then(server::postgres_cpu).flatten();
    let m0 = server::machine_jiffies();

    let mut results = Vec::with_capacity(handles.len());
    for h in handles {
        results.push(h.await?);
    }
    let s1 = cluster.cpu();
    let c1 = server::process_cpu("/proc/self/stat");
    let d1 = cfg.db_cpu.then(server::postgres_cpu).flatten();
    let m1 = server::machine_jiffies();

    let last_done = results
        .iter()
        .filter_map(|r| r.last_done)
        .max()
        .unwrap_or(end);
    let measured = last_done.saturating_duration_since(measure_start);
    let mut sorted: Vec<u32> = Vec::new();
    let mut out = LevelResult {
        clients: cfg.clients,
        measured,
        ok: 0,
        errors: 0,
        warmup_ok: 0,
        warmup_errors: 0,
        first_error: None,
        sorted_us: Vec::new(),
        timeline: Vec::new(),
        server_cpu: None,
        client_cpu: None,
        db_cpu: None,
        machine_busy: None,
        other_cpu: None,
    };
    for r in results {
        out.ok += r.ok;
        out.errors += r.errors;
        out.warmup_ok += r.warmup_ok;
        out.warmup_errors += r.warmup_errors;
        if out.first_error.is_none() {
            out.first_error = r.first_error;
        }
        out.timeline.extend(
            r.started_us
                .iter()
                .copied()
                .zip(r.latencies_us.iter().copied()),
        );
        sorted.extend(r.latencies_us);
    }
    out.timeline.sort_unstable();
    sorted.sort_unstable();
    out.sorted_us = sorted;
    // CPU used from the start of the measured phase until the last client finished.
    let scale = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    out.server_cpu = scale(s0, s1);
    out.client_cpu = scale(c0, c1);
    out.db_cpu = scale(d0, d1);
    if let (Some((b0, t0j)), Some((b1, t1j))) = (m0, m1)
        && t1j > t0j
    {
        out.machine_busy = Some((b1 - b0) as f64 / (t1j - t0j) as f64);
        let busy = server::jiffies_to_duration(b1 - b0);
        if let (Some(s), Some(c)) = (out.server_cpu, out.client_cpu) {
            out.other_cpu = Some(busy.saturating_sub(s + c + out.db_cpu.unwrap_or_default()));
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn client_loop(
    addr: SocketAddr,
    conn: Conn,
    signer: Signer,
    mut op: ClientOp,
    measure_start: Instant,
    end: Instant,
    budget: Arc<AtomicU64>,
    pace: Option<(Instant, Duration)>,
) -> ClientResult {
    let mut r = ClientResult {
        latencies_us: Vec::with_capacity(16 * 1024),
        started_us: Vec::with_capacity(16 * 1024),
        ..ClientResult::default()
    };
    let mut conn = Some(conn);
    let mut next = pace.map(|(first, _)| first);
    loop {
        // Open loop: wait for this request's slot; when the previous reply came after the
        // slot, the latency counts from the slot (no coordinated omission).
        let mut late_from = None;
        if let (Some((_, interval)), Some(slot)) = (pace, next) {
            if slot >= end {
                break;
            }
            if Instant::now() < slot {
                tokio::time::sleep_until(slot.into()).await;
            } else {
                late_from = Some(slot);
            }
            next = Some(slot + interval);
        }
        let now = Instant::now();
        if now >= end {
            break;
        }
        let measuring = late_from.unwrap_or(now) >= measure_start;
        if measuring
            && budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
                .is_err()
        {
            break;
        }
        if conn.is_none() {
            match Conn::connect(addr).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    note_error(&mut r, measuring, format!("reconnecting: {e:#}"));
                    break;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        // Each request is signed afresh, in this task: part of the client's cost, not
        // of the measured latency (which runs from send, or from a missed open-loop slot,
        // to the last byte of the reply).
        let req = match c.request(
            Some(&signer),
            "POST",
            op.path,
            Some(USER),
            op.request_body(),
        ) {
            Ok(req) => req,
            Err(e) => {
                note_error(&mut r, measuring, format!("building the request: {e:#}"));
                break;
            }
        };
        let sent = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, c.send(req)).await;
        let done = Instant::now();
        match outcome {
            Ok(Ok(reply)) if (200..300).contains(&reply.status) => {
                if let Err(e) = op.next(&reply) {
                    note_error(&mut r, measuring, e);
                    if measuring {
                        r.last_done = Some(done);
                    }
                    continue;
                }
                if measuring {
                    r.ok += 1;
                    let from = late_from.unwrap_or(sent);
                    let us = done.duration_since(from).as_micros();
                    r.latencies_us.push(us.min(u32::MAX as u128) as u32);
                    let at = from.saturating_duration_since(measure_start).as_micros();
                    r.started_us.push(at.min(u32::MAX as u128) as u32);
                    r.last_done = Some(done);
                } else {
                    r.warmup_ok += 1;
                }
            }
            Ok(Ok(reply)) => {
                let msg = format!(
                    "HTTP {}: {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                );
                note_error(&mut r, measuring, msg);
                if measuring {
                    r.last_done = Some(done);
                }
            }
            Ok(Err(e)) => {
                note_error(&mut r, measuring, format!("transport: {e:#}"));
                conn = None;
            }
            Err(_) => {
                note_error(
                    &mut r,
                    measuring,
                    format!("no reply within {} s", REQUEST_TIMEOUT.as_secs()),
                );
                conn = None;
            }
        }
    }
    r
}

fn note_error(r: &mut ClientResult, measuring: bool, msg: String) {
    if measuring {
        r.errors += 1;
    } else {
        r.warmup_errors += 1;
    }
    if r.first_error.is_none() {
        r.first_error = Some(msg);
    }
}
