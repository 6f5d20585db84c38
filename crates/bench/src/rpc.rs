//! A JSON-RPC stand-in on 127.0.0.1 for `--kind exact-svm` and `--kind mpp-tempo`: every
//! request (keep-alive HTTP/1.1, one JSON-RPC call per POST) is answered by its method:
//! `eth_estimateGas` 84000, `eth_maxPriorityFeePerGas` 1 gwei, `eth_feeHistory` a base fee
//! of 20 gwei (a Tempo charge), anything else a `getLatestBlockhash` result carrying
//! [`crate::kinds::blockhash`]. It runs in the bench process (its CPU counts as
//! the client's, not the server's) and counts the calls it served.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The running stand-in: its address and the calls served so far. Stops when dropped.
pub struct Rpc {
    pub addr: SocketAddr,
    pub calls: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Rpc {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Rpc {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub async fn start(blockhash: String) -> anyhow::Result<Rpc> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(serve(s, blockhash.clone(), counter.clone()));
        }
    });
    Ok(Rpc { addr, calls, task })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn serve(mut s: TcpStream, blockhash: String, calls: Arc<AtomicU64>) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let head_end = loop {
            if let Some(p) = find(&buf, b"\r\n\r\n") {
                break p + 4;
            }
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let request =
            serde_json::from_slice::<Value>(&buf[head_end..head_end + len]).unwrap_or(Value::Null);
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        buf.drain(..head_end + len);
        calls.fetch_add(1, Ordering::Relaxed);
        let result = match request.get("method").and_then(Value::as_str) {
            Some("eth_estimateGas") => json!("0x14820"),
            Some("eth_maxPriorityFeePerGas") => json!("0x3b9aca00"),
            Some("eth_feeHistory") => json!({"oldestBlock": "0x1", "gasUsedRatio": [0.5],
                "baseFeePerGas": ["0x4a817c800", "0x4a817c800"]}),
            _ => json!({"context": {"slot": 1, "apiVersion": "2.0.0"},
                "value": {"blockhash": blockhash, "lastValidBlockHeight": 1000}}),
        };
        let body = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if s.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
