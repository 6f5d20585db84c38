//! Solana balances against a loopback JSON-RPC endpoint (no SVM): the endpoint
//! records the exact request and answers with the shape a real RPC node gives
//! for `getTokenAccountsByOwner` with `jsonParsed` encoding.

mod common;

use std::time::Duration;

use common::{mock_result, mock_rpc, reader_for};
use purser_chain::{Chain, ChainErrorKind};
use serde_json::{Value, json};

const OWNER: &str = "DsZ41gUdxmdbCwsU6vDbgAco75tzRavyMik7x1JK9g9A";
const ACCOUNT_A: &str = "G9ZhdgsGhWKy8TasfUo1wGGpMhnyJ5sJktTp4mQdkA24";
const ACCOUNT_B: &str = "5wMMkpD3rQ2AWzd5bJVAyVevP68o6QBCveZ3BpiSDfai";
const TOKEN_PROGRAM: &str = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
const DEVNET_MINT: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
const MAINNET_MINT: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";

const TIMEOUT: Duration = Duration::from_secs(5);

/// One keyed account as `getTokenAccountsByOwner` returns it with `jsonParsed`.
/// `uiAmount` is a JSON float in real answers (given here as JSON text, so the
/// test code holds no float): it is there to prove it is never read.
fn token_account(pubkey: &str, mint: &str, owner: &str, amount: &str, ui: &str) -> Value {
    let ui: Value = serde_json::from_str(ui).unwrap();
    json!({
        "pubkey": pubkey,
        "account": {
            "data": {
                "program": "spl-token",
                "parsed": {
                    "info": {
                        "isNative": false,
                        "mint": mint,
                        "owner": owner,
                        "state": "initialized",
                        "tokenAmount": {
                            "amount": amount,
                            "decimals": 6,
                            "uiAmount": ui,
                            "uiAmountString": "ignored"
                        }
                    },
                    "type": "account"
                },
                "space": 165
            },
            "executable": false,
            "lamports": 2039280,
            "owner": TOKEN_PROGRAM,
            "rentEpoch": 18446744073709551615u64,
            "space": 165
        }
    })
}

fn with_context(value: Vec<Value>) -> Value {
    json!({"context": {"apiVersion": "2.2.7", "slot": 341197053}, "value": value})
}

#[tokio::test]
async fn devnet_sums_two_token_accounts_and_sends_the_exact_request() {
    let rpc = mock_result(with_context(vec![
        token_account(ACCOUNT_A, DEVNET_MINT, OWNER, "1500000", "1.5"),
        token_account(ACCOUNT_B, DEVNET_MINT, OWNER, "250000", "0.25"),
    ]))
    .await;
    let reader = reader_for(Chain::SolanaDevnet, &rpc.url, TIMEOUT);

    let balance = reader
        .usdc_balance(Chain::SolanaDevnet, OWNER)
        .await
        .unwrap();
    assert_eq!(balance, 1_750_000);

    let requests = rpc.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req["jsonrpc"], "2.0");
    assert!(req["id"].is_u64(), "{req}");
    assert_eq!(req["method"], "getTokenAccountsByOwner");
    assert_eq!(
        req["params"],
        json!([OWNER, {"mint": DEVNET_MINT}, {"encoding": "jsonParsed"}])
    );
    let keys: Vec<&String> = req.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "{req}");
}

#[tokio::test]
async fn mainnet_uses_the_mainnet_mint_and_no_accounts_is_zero() {
    let rpc = mock_result(with_context(vec![])).await;
    let reader = reader_for(Chain::Solana, &rpc.url, TIMEOUT);
    assert_eq!(reader.usdc_balance(Chain::Solana, OWNER).await.unwrap(), 0);
    assert_eq!(
        rpc.requests()[0]["params"],
        json!([OWNER, {"mint": MAINNET_MINT}, {"encoding": "jsonParsed"}])
    );
}

#[tokio::test]
async fn large_amounts_are_summed_exactly() {
    // Beyond 2^53 (where a float would round) and beyond u64 when summed.
    let rpc = mock_result(with_context(vec![
        token_account(
            ACCOUNT_A,
            MAINNET_MINT,
            OWNER,
            "18446744073709551615",
            "1.8446744073709552e13",
        ),
        token_account(ACCOUNT_B, MAINNET_MINT, OWNER, "9007199254740993", "9.0e9"),
    ]))
    .await;
    let reader = reader_for(Chain::Solana, &rpc.url, TIMEOUT);
    assert_eq!(
        reader.usdc_balance(Chain::Solana, OWNER).await.unwrap(),
        18_446_744_073_709_551_615u128 + 9_007_199_254_740_993u128
    );
}

async fn malformed_detail(result: Value) -> String {
    let rpc = mock_result(result).await;
    let reader = reader_for(Chain::SolanaDevnet, &rpc.url, TIMEOUT);
    let err = reader
        .usdc_balance(Chain::SolanaDevnet, OWNER)
        .await
        .unwrap_err();
    let msg = err.message();
    assert!(
        msg.starts_with(&format!(
            "SOLANA_DEVNET RPC at {} answered with a malformed result: ",
            rpc.url
        )),
        "{msg}"
    );
    match err.kind() {
        ChainErrorKind::Malformed { detail } => detail.clone(),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn suspicious_accounts_are_rejected() {
    let d = malformed_detail(with_context(vec![token_account(
        ACCOUNT_A,
        MAINNET_MINT,
        OWNER,
        "1",
        "0.000001",
    )]))
    .await;
    assert!(d.contains("not USDC"), "{d}");

    let d = malformed_detail(with_context(vec![token_account(
        ACCOUNT_A,
        DEVNET_MINT,
        ACCOUNT_B,
        "1",
        "0.000001",
    )]))
    .await;
    assert!(d.contains("another owner"), "{d}");

    let d = malformed_detail(with_context(vec![
        token_account(ACCOUNT_A, DEVNET_MINT, OWNER, "1", "0.000001"),
        token_account(ACCOUNT_A, DEVNET_MINT, OWNER, "1", "0.000001"),
    ]))
    .await;
    assert!(d.contains("twice"), "{d}");

    for amount in ["1.5", "-1", "", "1e6", "0x10"] {
        let d = malformed_detail(with_context(vec![token_account(
            ACCOUNT_A,
            DEVNET_MINT,
            OWNER,
            amount,
            "1.5",
        )]))
        .await;
        assert!(d.contains("has amount"), "{amount:?}: {d}");
    }

    // A numeric (not string) amount.
    let mut acc = token_account(ACCOUNT_A, DEVNET_MINT, OWNER, "1", "1");
    acc["account"]["data"]["parsed"]["info"]["tokenAmount"]["amount"] = json!(1500000);
    malformed_detail(with_context(vec![acc])).await;

    // Binary data (what a node returns when it cannot parse the account).
    let mut acc = token_account(ACCOUNT_A, DEVNET_MINT, OWNER, "1", "1");
    acc["account"]["data"] = json!(["AAAA", "base64"]);
    malformed_detail(with_context(vec![acc])).await;

    // No context/value wrapper.
    malformed_detail(json!([])).await;
}

#[tokio::test]
async fn json_rpc_error_is_reported() {
    let rpc = mock_rpc(|req| {
        let body = json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32602, "message": "Invalid param: could not find mint"}});
        (200, body.to_string())
    })
    .await;
    let reader = reader_for(Chain::Solana, &rpc.url, TIMEOUT);
    let err = reader.usdc_balance(Chain::Solana, OWNER).await.unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "SOLANA RPC at {} answered with JSON-RPC error -32602: Invalid param: could not find mint",
            rpc.url
        )
    );
}

#[tokio::test]
async fn invalid_owners_send_no_request() {
    let rpc = mock_result(with_context(vec![])).await;
    let reader = reader_for(Chain::Solana, &rpc.url, TIMEOUT);
    for owner in [
        "",
        "0x036CbD53842c5426634e7929541eC2318f3dCF7e", // an EVM address
        "hBxVhPQ8E4i2LegsKLvezqUWNt1atk4gw3hJohmLKh", // 31 bytes
        "DsZ41gUdxmdbCwsU6vDbgAco75tzRavyMik7x1JK9g90", // '0' is not base58
        "DsZ41gUdxmdbCwsU6vDbgAco75tzRavyMik7x1JK9g9ADsZ41gUdxmdb",
    ] {
        let err = reader.usdc_balance(Chain::Solana, owner).await.unwrap_err();
        assert!(err.is_invalid_input(), "{owner:?}: {err}");
        assert!(
            err.message().starts_with("SOLANA owner address")
                && err
                    .message()
                    .ends_with("is not a base58-encoded 32-byte public key"),
            "{err}"
        );
        assert_eq!(err.endpoint(), None);
    }
    assert!(rpc.requests().is_empty());
}

// ------------------------------------------------------------ getLatestBlockhash

const BLOCKHASH: &str = "EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N";

#[tokio::test]
async fn latest_blockhash_sends_the_exact_request() {
    let rpc = mock_result(json!({
        "context": {"apiVersion": "2.2.7", "slot": 341197053},
        "value": {"blockhash": BLOCKHASH, "lastValidBlockHeight": 329305447u64}
    }))
    .await;
    let reader = reader_for(Chain::SolanaDevnet, &rpc.url, TIMEOUT);
    let hash = reader
        .solana_latest_blockhash(Chain::SolanaDevnet)
        .await
        .unwrap();
    assert_eq!(bs58::encode(hash).into_string(), BLOCKHASH);
    let requests = rpc.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["method"], "getLatestBlockhash");
    assert_eq!(requests[0]["params"], json!([{"commitment": "confirmed"}]));
}

#[tokio::test]
async fn malformed_blockhashes_are_refused() {
    for value in [
        json!({"blockhash": "0OIl", "lastValidBlockHeight": 1}),
        json!({"blockhash": bs58::encode([1u8; 31]).into_string(), "lastValidBlockHeight": 1}),
        json!({"blockhash": 5, "lastValidBlockHeight": 1}),
        json!({"lastValidBlockHeight": 1}),
    ] {
        let rpc = mock_result(json!({"context": {"slot": 1}, "value": value})).await;
        let reader = reader_for(Chain::Solana, &rpc.url, TIMEOUT);
        let err = reader
            .solana_latest_blockhash(Chain::Solana)
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind(), ChainErrorKind::Malformed { .. }),
            "{value}: {err}"
        );
        assert!(
            err.message().starts_with(&format!(
                "SOLANA RPC at {} answered with a malformed",
                rpc.url
            )),
            "{err}"
        );
    }
}

#[tokio::test]
async fn blockhash_errors_keep_the_url_secret() {
    let rpc = mock_rpc(|req| {
        let body = json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32005, "message": "Node is behind"}});
        (200, body.to_string())
    })
    .await;
    let secret_url = format!("{}/v2/SECRETKEY?api-key=SECRET2", rpc.url);
    let reader = reader_for(Chain::Solana, &secret_url, TIMEOUT);
    let err = reader
        .solana_latest_blockhash(Chain::Solana)
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("SECRET"), "{text}");
    assert!(err.message().contains("-32005"), "{err}");
}
