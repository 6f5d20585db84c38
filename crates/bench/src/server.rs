//! The servers under test: N `purser serve` processes started from the release binary on
//! free loopback ports, sharing one store (one SQLite file or one PostgreSQL database),
//! one credential and one master key; stopped by pid when the guard drops.
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;

use crate::client::Conn;

pub const ACCESS_KEY_ID: &str = "AKIDPURSERBENCH00001";
pub const SECRET_ACCESS_KEY: &str = "purser-bench-secret-key-not-for-production-use";
pub const ACCOUNT_ID: &str = "123456789012";
pub const REGION: &str = "us-east-1";
/// The SQLite file `purser serve` keeps in its data directory.
pub const SQLITE_FILE: &str = "purser.db";

/// Environment variables of the parent that must not reach the server.
const SCRUB: &[&str] = &[
    "PURSER_LISTEN",
    "PURSER_DATA_DIR",
    "PURSER_DATABASE_URL",
    "PURSER_DATABASE_MAX_CONNECTIONS",
    "PURSER_MASTER_KEY",
    "PURSER_TEST_CLOCK",
    "PURSER_CONFIG",
];

/// Where the nodes keep their state.
#[derive(Clone, Debug)]
pub enum Store {
    /// The embedded default: `purser.db` in this data directory, shared by every node.
    Sqlite { data_dir: PathBuf },
    /// One PostgreSQL database; each node gets its own (otherwise unused) data directory.
    Postgres { url: String },
}

impl Store {
    pub fn is_postgres(&self) -> bool {
        matches!(self, Store::Postgres { .. })
    }
}

/// How to start every node of a cluster.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub binary: PathBuf,
    /// Parent of the node logs (and of the data directories).
    pub dir: PathBuf,
    pub store: Store,
    /// `--database-max-connections` of every node (PostgreSQL), or the server default.
    pub max_connections: Option<u32>,
    /// PURSER_MASTER_KEY of every node (base64 of 32 bytes).
    pub master_key: String,
    /// PURSER_LOG of every node.
    pub log_filter: String,
    /// Further environment of every node (the Solana RPC of `--kind exact-svm`).
    pub env: Vec<(String, String)>,
}

/// A fresh master key for the nodes of one run: base64 of 32 bytes from the OS.
pub fn master_key() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut k = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut k);
    base64::engine::general_purpose::STANDARD.encode(k)
}

/// One `purser serve` process.
pub struct Server {
    child: Option<Child>,
    pub pid: u32,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(l.local_addr()?.port())
}

impl Server {
    /// Start node `index` (1-based) of `spec` on a free 127.0.0.1 port; wait for
    /// `GET /health`.
    pub async fn start(spec: &NodeSpec, index: usize) -> anyhow::Result<Server> {
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = spec.dir.join(format!("node-{index}.log"));
        let log_file = std::fs::File::create(&log)?;
        let mut cmd = Command::new(&spec.binary);
        cmd.arg("serve").arg("--listen").arg(addr.to_string());
        match &spec.store {
            Store::Sqlite { data_dir } => {
                cmd.arg("--data-dir").arg(data_dir);
            }
            Store::Postgres { url } => {
                cmd.arg("--data-dir")
                    .arg(spec.dir.join(format!("node-{index}")))
                    .arg("--database-url")
                    .arg(url);
            }
        }
        if let Some(n) = spec.max_connections {
            cmd.arg("--database-max-connections").arg(n.to_string());
        }
        for k in SCRUB {
            cmd.env_remove(k);
        }
        cmd.env("PURSER_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("PURSER_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .env("PURSER_ACCOUNT_ID", ACCOUNT_ID)
            .env("PURSER_REGION", REGION)
            .env("PURSER_MASTER_KEY", &spec.master_key)
            .env("PURSER_LOG", &spec.log_filter)
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", spec.binary.display()))?;
        let mut server = Server {
            pid: child.id(),
            child: Some(child),
            addr,
            log,
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "the server exited with {status} before answering /health; its log:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(Ok(true)) =
                tokio::time::timeout(Duration::from_secs(1), health(self.addr)).await
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not answer /health within 20 s; its log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// CPU time (user + system) the server process has used so far.
    pub fn cpu(&self) -> Option<Duration> {
        process_cpu(&format!("/proc/{}/stat", self.pid))
    }

    /// SIGTERM (by pid), without waiting.
    fn terminate(&self) {
        if self.child.is_some() {
            // SAFETY: kill(2) with the pid of a child this process started and has not
            // reaped.
            unsafe {
                libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }

    /// Wait until `deadline` for the process to exit, then SIGKILL it; reap it.
    fn reap(&mut self, deadline: Instant) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGTERM, up to 5 s for a graceful exit, then SIGKILL; always by pid.
    pub fn stop(&mut self) {
        self.terminate();
        self.reap(Instant::now() + Duration::from_secs(5));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The nodes of one run. Dropping it stops them all.
pub struct Cluster {
    pub nodes: Vec<Server>,
}

impl Cluster {
    /// Start `n` nodes of `spec`: node 1 alone first (it applies the migrations), then the
    /// others one by one. On failure the nodes already started are stopped.
    pub async fn start(spec: &NodeSpec, n: usize) -> anyhow::Result<Cluster> {
        let mut cluster = Cluster {
            nodes: Vec::with_capacity(n),
        };
        for i in 1..=n {
            let node = Server::start(spec, i)
                .await
                .with_context(|| format!("node {i} of {n} did not start"))?;
            eprintln!("node {i} pid {} on {}", node.pid, node.addr);
            cluster.nodes.push(node);
        }
        Ok(cluster)
    }

    /// Node 1, which setup goes through.
    pub fn first(&self) -> SocketAddr {
        self.nodes[0].addr
    }

    /// The node client `i` talks to.
    pub fn addr_for(&self, i: usize) -> SocketAddr {
        self.nodes[i % self.nodes.len()].addr
    }

    /// CPU time all nodes have used so far (None when one of them cannot be read).
    pub fn cpu(&self) -> Option<Duration> {
        self.nodes.iter().map(Server::cpu).sum()
    }

    /// The last log lines of every node.
    pub fn log_tail(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "--- node {} ({}):\n{}",
                    i + 1,
                    n.log.display(),
                    n.log_tail()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// SIGTERM to every node, up to 5 s for all to exit, then SIGKILL; by pid.
    pub fn stop(&mut self) {
        for n in &self.nodes {
            n.terminate();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for n in &mut self.nodes {
            n.reap(deadline);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// utime + stime summed over every process whose `/proc/<pid>/comm` is `postgres` (the
/// postmaster, its backends and background workers); None when there is none.
pub fn postgres_cpu() -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let is_pg = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim_end() == "postgres");
        if is_pg && let Some(c) = process_cpu(&format!("/proc/{pid}/stat")) {
            total += c;
            found = true;
        }
    }
    found.then_some(total)
}

async fn health(addr: SocketAddr) -> anyhow::Result<bool> {
    let mut conn = Conn::connect(addr).await?;
    let req = conn.request(None, "GET", "/health", None, Bytes::new())?;
    Ok(conn.send(req).await?.status == 200)
}

/// utime + stime of a `/proc/<pid>/stat` file.
pub fn process_cpu(stat_path: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    // The command name may contain spaces: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(jiffies_to_duration(utime + stime))
}

pub fn jiffies_to_duration(j: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let tck = if tck > 0 { tck as u64 } else { 100 };
    Duration::from_micros(j * 1_000_000 / tck)
}

/// Share of the machine (0..1) busy over `window` (the bench itself idle meanwhile).
pub async fn background_busy(window: Duration) -> Option<f64> {
    let (b0, t0) = machine_jiffies()?;
    tokio::time::sleep(window).await;
    let (b1, t1) = machine_jiffies()?;
    (t1 > t0).then(|| (b1 - b0) as f64 / (t1 - t0) as f64)
}

/// Busy and total jiffies of the whole machine (first line of /proc/stat).
pub fn machine_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v[4];
    Some((total - idle, total))
}
