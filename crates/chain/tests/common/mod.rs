//! Loopback test servers for the JSON-RPC client. Everything binds 127.0.0.1.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use purser_chain::{BalanceReader, Chain, RpcConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the mock answers: HTTP status and body, given the parsed request.
pub type Responder = Arc<dyn Fn(&Value) -> (u16, String) + Send + Sync>;

/// A JSON-RPC endpoint on 127.0.0.1 that records every request body.
pub struct MockRpc {
    pub url: String,
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MockRpc {
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for MockRpc {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct MockState {
    requests: Arc<Mutex<Vec<Value>>>,
    responder: Responder,
}

async fn handle(State(state): State<MockState>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.requests.lock().unwrap().push(request.clone());
    let (status, body) = (state.responder)(&request);
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Starts a mock answering every POST (any path) with `responder`.
pub async fn mock_rpc(
    responder: impl Fn(&Value) -> (u16, String) + Send + Sync + 'static,
) -> MockRpc {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let state = MockState {
        requests: requests.clone(),
        responder: Arc::new(responder),
    };
    let app = axum::Router::new()
        .fallback(axum::routing::post(handle))
        .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    MockRpc {
        url: format!("http://{addr}"),
        addr,
        requests,
        task,
    }
}

/// A mock that answers every request with HTTP 200 and `{"jsonrpc","id","result": result}`.
pub async fn mock_result(result: Value) -> MockRpc {
    mock_rpc(move |req| {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": req["id"], "result": result});
        (200, body.to_string())
    })
    .await
}

/// A TCP server that accepts connections and never writes a byte.
/// With `partial_response`, it reads the request and sends headers announcing a
/// longer body than it ever sends.
pub struct Silent {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn silent_server(partial_response: bool) -> Silent {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            if partial_response {
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_secs(1), socket.read(&mut buf)).await;
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"jsonrpc\":",
                    )
                    .await;
            }
            held.push(socket);
        }
    });
    Silent {
        url: format!("http://{addr}"),
        task,
    }
}

/// A loopback URL on which nothing listens (the port was just released).
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A reader whose `chain` points at `url`, every other chain at a closed
/// loopback port (never the public defaults).
pub fn reader_for(chain: Chain, url: &str, timeout: Duration) -> BalanceReader {
    let closed = closed_port_url();
    let mut config = RpcConfig::default().with_timeout(timeout);
    for c in Chain::EVERY {
        config.set_url(c, &closed).unwrap();
    }
    config.set_url(chain, url).unwrap();
    BalanceReader::new(config).unwrap()
}
