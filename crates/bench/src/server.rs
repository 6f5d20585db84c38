//! The server under test: started from the release binary on a free loopback port with a
//! fresh data directory, stopped by pid when the guard drops.
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;

use crate::client::Conn;

pub const ACCESS_KEY_ID: &str = "AKIDPURSERBENCH00001";
pub const SECRET_ACCESS_KEY: &str = "purser-bench-secret-key-not-for-production-use";
pub const ACCOUNT_ID: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// Environment variables of the parent that must not reach the server.
const SCRUB: &[&str] = &[
    "PURSER_LISTEN",
    "PURSER_DATA_DIR",
    "PURSER_DATABASE_URL",
    "PURSER_MASTER_KEY",
    "PURSER_TEST_CLOCK",
    "PURSER_CONFIG",
];

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
    /// Start `binary serve` on 127.0.0.1 with `data_dir`; wait for `GET /health`.
    pub async fn start(binary: &Path, data_dir: &Path, log_filter: &str) -> anyhow::Result<Server> {
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = data_dir.join("server.log");
        let log_file = std::fs::File::create(&log)?;
        let mut cmd = Command::new(binary);
        cmd.arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data_dir.join("data"))
            .env("PURSER_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("PURSER_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .env("PURSER_ACCOUNT_ID", ACCOUNT_ID)
            .env("PURSER_REGION", REGION)
            .env("PURSER_LOG", log_filter)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        for k in SCRUB {
            cmd.env_remove(k);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
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

    /// SIGTERM, up to 5 s for a graceful exit, then SIGKILL; always by pid.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) with the pid of a child this process started and has not reaped.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
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
