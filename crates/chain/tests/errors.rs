//! Error paths and the exact EVM request, against loopback servers.

mod common;

use std::time::{Duration, Instant};

use common::{closed_port_url, mock_result, mock_rpc, reader_for, silent_server};
use purser_chain::{BalanceReader, Chain, ChainErrorKind, RpcConfig};
use serde_json::json;

const ADDR: &str = "0x1111111111111111111111111111111111111111";
const TIMEOUT: Duration = Duration::from_secs(5);

fn word(v: u128) -> String {
    format!("0x{v:064x}")
}

#[tokio::test]
async fn evm_request_is_exactly_balance_of_at_latest() {
    let rpc = mock_result(json!(word(1_234_567))).await;
    let reader = reader_for(Chain::BaseSepolia, &rpc.url, TIMEOUT);
    let owner = "0xAbCdEf0123456789aBcDeF0123456789ABCDEF01";
    assert_eq!(
        reader
            .usdc_balance(Chain::BaseSepolia, owner)
            .await
            .unwrap(),
        1_234_567
    );
    let req = &rpc.requests()[0];
    assert_eq!(req["jsonrpc"], "2.0");
    assert!(req["id"].is_u64());
    assert_eq!(req["method"], "eth_call");
    assert_eq!(
        req["params"],
        json!([
            {
                "to": "0x036cbd53842c5426634e7929541ec2318f3dcf7e",
                "data": "0x70a08231000000000000000000000000abcdef0123456789abcdef0123456789abcdef01"
            },
            "latest"
        ])
    );
}

#[tokio::test]
async fn connection_refused_is_fast_and_names_the_chain() {
    let url = closed_port_url();
    let reader = reader_for(Chain::BaseSepolia, &url, Duration::from_secs(10));
    let started = Instant::now();
    let err = reader
        .usdc_balance(Chain::BaseSepolia, ADDR)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.kind(), &ChainErrorKind::ConnectionRefused);
    assert_eq!(err.chain(), Chain::BaseSepolia);
    assert_eq!(
        err.message(),
        format!("BASE_SEPOLIA RPC at {url} refused the connection")
    );
    assert_eq!(err.to_string(), err.message());
}

#[tokio::test]
async fn secrets_in_the_url_never_show() {
    let url = format!(
        "{}/v2/SECRETKEY123?api-key=SECRET456",
        closed_port_url().replace("http://", "http://someuser:SECRETPW@")
    );
    let config = RpcConfig::default()
        .with_url(Chain::Ethereum, &url)
        .unwrap()
        .with_timeout(TIMEOUT);
    let reader = BalanceReader::new(config).unwrap();
    let err = reader
        .usdc_balance(Chain::Ethereum, ADDR)
        .await
        .unwrap_err();
    let text = format!("{err} {err:?} {:?}", reader);
    assert!(!text.contains("SECRET"), "{text}");
    assert!(!text.contains("someuser"), "{text}");
    assert!(
        err.message()
            .starts_with("ETHEREUM RPC at http://127.0.0.1:"),
        "{err}"
    );

    // The same through a server that answers with an error status.
    let rpc = mock_rpc(|_| (503, String::new())).await;
    let config = RpcConfig::default()
        .with_url(Chain::Base, &format!("{}/v3/SECRETKEY789", rpc.url))
        .unwrap();
    let reader = BalanceReader::new(config).unwrap();
    let err = reader.usdc_balance(Chain::Base, ADDR).await.unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "BASE RPC at {} answered with HTTP status 503 (Service Unavailable)",
            rpc.url
        )
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = silent_server(false).await;
    let reader = reader_for(Chain::BaseSepolia, &server.url, Duration::from_millis(300));
    let started = Instant::now();
    let err = reader
        .usdc_balance(Chain::BaseSepolia, ADDR)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(
        err.kind(),
        &ChainErrorKind::Timeout {
            after: Duration::from_millis(300)
        }
    );
    assert_eq!(
        err.message(),
        format!(
            "BASE_SEPOLIA RPC at {} did not answer within 300ms",
            server.url
        )
    );
}

#[tokio::test]
async fn a_server_that_stalls_mid_body_times_out() {
    let server = silent_server(true).await;
    let reader = reader_for(Chain::SolanaDevnet, &server.url, Duration::from_millis(400));
    let started = Instant::now();
    let err = reader
        .usdc_balance(
            Chain::SolanaDevnet,
            "DsZ41gUdxmdbCwsU6vDbgAco75tzRavyMik7x1JK9g9A",
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err.kind(), ChainErrorKind::Timeout { .. }),
        "{err:?}"
    );
    assert!(
        err.message().ends_with("did not answer within 400ms"),
        "{err}"
    );
}

#[tokio::test]
async fn json_rpc_error_object() {
    let rpc = mock_rpc(|req| {
        let body = json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32000, "message": "header not found\nretry"}});
        (200, body.to_string())
    })
    .await;
    let reader = reader_for(Chain::Base, &rpc.url, TIMEOUT);
    let err = reader.usdc_balance(Chain::Base, ADDR).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ChainErrorKind::JsonRpc {
            code: -32000,
            message: "header not found retry".to_string()
        }
    );
    assert_eq!(
        err.message(),
        format!(
            "BASE RPC at {} answered with JSON-RPC error -32000: header not found retry",
            rpc.url
        )
    );
}

#[tokio::test]
async fn malformed_results() {
    let cases: Vec<(u16, String, &str)> = vec![
        (
            200,
            json!({"jsonrpc": "2.0", "id": 1, "result": "0x1234"}).to_string(),
            "32-byte",
        ),
        (
            200,
            json!({"jsonrpc": "2.0", "id": 1, "result": "0x"}).to_string(),
            "no data",
        ),
        (
            200,
            json!({"jsonrpc": "2.0", "id": 1, "result": 12}).to_string(),
            "unexpected result",
        ),
        (
            200,
            json!({"jsonrpc": "2.0", "id": 1, "result": null}).to_string(),
            "neither",
        ),
        (
            200,
            json!({"jsonrpc": "2.0", "id": 1}).to_string(),
            "neither",
        ),
        (
            200,
            "<html>bad gateway</html>".to_string(),
            "not a JSON-RPC response",
        ),
        (200, String::new(), "not a JSON-RPC response"),
        (
            200,
            json!({"jsonrpc": "2.0", "id": 1, "result": format!("0x{}{:032x}", "1".repeat(32), 5)})
                .to_string(),
            "128 bits",
        ),
    ];
    for (status, body, expect) in cases {
        let rpc = mock_rpc(move |_| (status, body.clone())).await;
        let reader = reader_for(Chain::Ethereum, &rpc.url, TIMEOUT);
        let err = reader
            .usdc_balance(Chain::Ethereum, ADDR)
            .await
            .unwrap_err();
        let msg = err.message();
        assert!(
            msg.starts_with(&format!(
                "ETHEREUM RPC at {} answered with a malformed result: ",
                rpc.url
            )) && msg.contains(expect),
            "{expect}: {msg}"
        );
    }
}

#[tokio::test]
async fn oversized_answers_are_cut_off() {
    let huge =
        json!({"jsonrpc": "2.0", "id": 1, "result": "0".repeat(5 * 1024 * 1024)}).to_string();
    let rpc = mock_rpc(move |_| (200, huge.clone())).await;
    let reader = reader_for(Chain::Base, &rpc.url, TIMEOUT);
    let err = reader.usdc_balance(Chain::Base, ADDR).await.unwrap_err();
    assert!(err.message().contains("larger than"), "{err}");
}

#[tokio::test]
async fn http_error_statuses() {
    for (status, text) in [
        (500, "500 (Internal Server Error)"),
        (429, "429 (Too Many Requests)"),
        (302, "302 (Found)"),
    ] {
        let rpc = mock_rpc(move |req| {
            // A JSON-RPC body does not make a non-200 answer a success.
            let body =
                json!({"jsonrpc": "2.0", "id": req["id"], "result": format!("0x{:064x}", 1)});
            (status, body.to_string())
        })
        .await;
        let reader = reader_for(Chain::BaseSepolia, &rpc.url, TIMEOUT);
        let err = reader
            .usdc_balance(Chain::BaseSepolia, ADDR)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ChainErrorKind::HttpStatus { status });
        assert_eq!(
            err.message(),
            format!(
                "BASE_SEPOLIA RPC at {} answered with HTTP status {text}",
                rpc.url
            )
        );
        assert_eq!(rpc.requests().len(), 1, "no retries, no redirects followed");
    }
}

#[tokio::test]
async fn invalid_evm_owners_send_no_request() {
    let rpc = mock_result(json!(word(1))).await;
    let reader = reader_for(Chain::Base, &rpc.url, TIMEOUT);
    for owner in [
        "",
        "0x",
        "0x123",
        "1111111111111111111111111111111111111111",
        "0x11111111111111111111111111111111111111111",
        "0x111111111111111111111111111111111111111g",
        " 0x1111111111111111111111111111111111111111",
        "DsZ41gUdxmdbCwsU6vDbgAco75tzRavyMik7x1JK9g9A",
    ] {
        let err = reader.usdc_balance(Chain::Base, owner).await.unwrap_err();
        assert!(err.is_invalid_input(), "{owner:?}");
        assert_eq!(
            err.message(),
            format!("BASE owner address {owner:?} is not a 0x-prefixed 20-byte hex address")
        );
    }
    assert!(rpc.requests().is_empty());
}

#[tokio::test]
async fn https_to_a_plain_http_server_fails_cleanly() {
    // Exercises the rustls client: the handshake fails against plain HTTP.
    let rpc = mock_result(json!(word(1))).await;
    let url = rpc.url.replace("http://", "https://");
    let reader = reader_for(Chain::Base, &url, TIMEOUT);
    let started = Instant::now();
    let err = reader.usdc_balance(Chain::Base, ADDR).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(err.kind(), ChainErrorKind::Unreachable { .. }),
        "{err:?}"
    );
    assert!(
        err.message()
            .starts_with(&format!("BASE RPC at {url} could not be reached: ")),
        "{err}"
    );
}
