//! The vendor clients against a local HTTP server that answers as the vendors do: error
//! classification (B28), retries of idempotent calls with the same idempotency key,
//! no retry of calls without one, timeouts, and the request each client sends.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::any;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};

use super::api::{ApiError, BaseUrl, HttpSettings, VendorHttp};
use super::cdp::{Cdp, CdpCredentials};
use super::privy::{Privy, PrivyCredentials};
use super::{LinkedAccount, VendorChain, VendorWallet};
use crate::Secret;

/// What the server saw: (path, idempotency key, body).
type Seen = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

/// A server answering each request with the next `(status, body, delay)` (the last one
/// repeats).
async fn server(answers: Vec<(u16, Value, u64)>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let answers = Arc::new(Mutex::new(answers));
    let s = seen.clone();
    let app = Router::new().fallback(any(
        move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let (seen, answers) = (s.clone(), answers.clone());
            async move {
                let key = headers
                    .get("x-idempotency-key")
                    .or_else(|| headers.get("privy-idempotency-key"))
                    .map(|v| v.to_str().unwrap().to_string());
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                seen.lock()
                    .unwrap()
                    .push((uri.path().to_string(), key, body));
                let (status, answer, delay) = {
                    let mut a = answers.lock().unwrap();
                    if a.len() > 1 {
                        a.remove(0)
                    } else {
                        a[0].clone()
                    }
                };
                tokio::time::sleep(Duration::from_millis(delay)).await;
                (StatusCode::from_u16(status).unwrap(), answer.to_string())
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn settings() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_millis(400),
        attempts: 3,
        backoff: Duration::from_millis(5),
    }
}

struct Keys {
    api: Secret,
    wallet: Secret,
    privy: Secret,
}

fn keys() -> Keys {
    let pem = p256::SecretKey::random(&mut rand::rngs::OsRng)
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap();
    let der = |k: p256::SecretKey| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(k.to_pkcs8_der().unwrap().as_bytes())
    };
    Keys {
        api: Secret::new(pem.to_string()),
        wallet: Secret::new(der(p256::SecretKey::random(&mut rand::rngs::OsRng))),
        privy: Secret::new(der(p256::SecretKey::random(&mut rand::rngs::OsRng))),
    }
}

fn wallet() -> VendorWallet {
    VendorWallet {
        user_id: "user-1".into(),
        wallet_id: "w1".into(),
        address: "0x0000000000000000000000000000000000000001".into(),
    }
}

fn cdp_error(code: &str) -> Value {
    json!({"errorType": code, "errorMessage": "alice@example.org is not delegated", "correlationId": "c"})
}

async fn cdp_sign(answers: Vec<(u16, Value, u64)>) -> (Result<[u8; 65], ApiError>, Seen) {
    let (base, seen) = server(answers).await;
    let cdp = Cdp::new(
        VendorHttp::new(settings()),
        BaseUrl::parse(&format!("{base}/platform")).unwrap(),
    );
    let k = keys();
    let creds = CdpCredentials {
        api_key_id: "key-1",
        api_key_secret: &k.api,
        wallet_secret: Some(&k.wallet),
    };
    let typed = json!({"types": {}, "primaryType": "T", "domain": {}, "message": {}});
    let r = cdp
        .sign_typed_data(&creds, &wallet(), &typed, 1_700_000_000)
        .await;
    (r, seen)
}

fn sig_hex(v: u8) -> String {
    format!("0x{}{:02x}", "11".repeat(64), v)
}

#[tokio::test]
async fn cdp_signing_retries_429_and_5xx_with_one_idempotency_key() {
    let (r, seen) = cdp_sign(vec![
        (429, cdp_error("rate_limit_exceeded"), 0),
        (503, cdp_error("service_unavailable"), 0),
        (200, json!({"signature": sig_hex(0)}), 0),
    ])
    .await;
    let sig = r.unwrap();
    assert_eq!(sig[64], 27, "v normalised to 27/28");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[0].0,
        "/platform/v2/embedded-wallet-api/end-users/user-1/evm/sign/typed-data"
    );
    assert!(seen[0].1.is_some());
    assert!(
        seen.iter().all(|s| s.1 == seen[0].1),
        "same key on every attempt"
    );
    assert_eq!(seen[0].2["address"], wallet().address);
}

#[tokio::test]
async fn cdp_errors_map_and_stop_after_the_allowed_attempts() {
    let cases = [
        (429, "rate_limit_exceeded", ApiError::RateLimited, 3),
        (
            500,
            "internal_server_error",
            ApiError::Unavailable("server error"),
            3,
        ),
        (
            403,
            "delegation_not_found",
            ApiError::DelegationNotActive,
            1,
        ),
        (403, "delegation_revoked", ApiError::DelegationNotActive, 1),
        (403, "delegation_expired", ApiError::DelegationNotActive, 1),
        (
            403,
            "delegation_not_enabled",
            ApiError::DelegationNotEnabled,
            1,
        ),
        (401, "unauthorized", ApiError::CredentialsInvalid, 1),
        (400, "policy_violation", ApiError::PolicyDenied, 1),
        (
            400,
            "invalid_request",
            ApiError::Refused {
                status: 400,
                code: "invalid_request".into(),
            },
            1,
        ),
    ];
    for (status, code, want, attempts) in cases {
        let (r, seen) = cdp_sign(vec![(status, cdp_error(code), 0)]).await;
        let e = r.unwrap_err();
        assert_eq!(e, want, "{code}");
        assert_eq!(seen.lock().unwrap().len(), attempts, "{code}");
        // the vendor's message (which may echo a linked account) is never kept
        assert!(!e.to_string().contains("alice"), "{e}");
    }
}

#[tokio::test]
async fn a_vendor_that_does_not_answer_in_time_is_unavailable() {
    let (r, seen) = cdp_sign(vec![(200, json!({"signature": sig_hex(27)}), 2_000)]).await;
    assert_eq!(r.unwrap_err(), ApiError::Unavailable("timed out"));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn cdp_creates_an_end_user_or_finds_it_and_adds_an_account() {
    let k = keys();
    let creds = CdpCredentials {
        api_key_id: "key-1",
        api_key_secret: &k.api,
        wallet_secret: Some(&k.wallet),
    };
    // created with its account
    let (base, seen) = server(vec![(
        201,
        json!({"userId": "u-1", "evmAccountObjects": [{"address": "0xAbc"}], "solanaAccountObjects": []}),
        0,
    )])
    .await;
    let cdp = Cdp::new(
        VendorHttp::new(settings()),
        BaseUrl::parse(&format!("{base}/platform")).unwrap(),
    );
    let email = LinkedAccount::Email("bob@example.org");
    let w = cdp
        .create_wallet(&creds, &email, VendorChain::Evm, "k-1", 1_700_000_000)
        .await
        .unwrap();
    assert_eq!((w.user_id.as_str(), w.address.as_str()), ("u-1", "0xAbc"));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].0, "/platform/v2/end-users");
        assert_eq!(seen[0].1.as_deref(), Some("k-1"));
        assert_eq!(
            seen[0].2["authenticationMethods"],
            json!([{"type": "email", "email": "bob@example.org"}])
        );
        assert_eq!(
            seen[0].2["evmAccount"],
            json!({"createSmartAccount": false})
        );
    }
    // the linked account already has an end user, without a Solana account: found, and
    // given one
    let (base, seen) = server(vec![
        (409, cdp_error("already_exists"), 0),
        (
            200,
            json!({"endUsers": [{"userId": "u-2", "evmAccounts": ["0xAbc"], "solanaAccounts": []}]}),
            0,
        ),
        (201, json!({"solanaAccount": {"address": "So1ana"}}), 0),
    ])
    .await;
    let cdp = Cdp::new(
        VendorHttp::new(settings()),
        BaseUrl::parse(&format!("{base}/platform")).unwrap(),
    );
    let phone = LinkedAccount::Phone("+15555550100");
    let w = cdp
        .create_wallet(&creds, &phone, VendorChain::Solana, "k-2", 1_700_000_000)
        .await
        .unwrap();
    assert_eq!((w.user_id.as_str(), w.address.as_str()), ("u-2", "So1ana"));
    let seen = seen.lock().unwrap();
    let paths: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/platform/v2/end-users",
            "/platform/v2/end-users/lookup",
            "/platform/v2/end-users/u-2/solana"
        ]
    );
}

#[tokio::test]
async fn privy_errors_map_and_user_creation_is_not_retried() {
    let k = keys();
    let creds = PrivyCredentials {
        app_id: "app-1",
        app_secret: &k.api,
        authorization_key: Some(&k.privy),
        authorization_id: Some("kq-1"),
    };
    let cases = [
        (
            400,
            json!({"error": "denied", "code": "policy_violation"}),
            ApiError::PolicyDenied,
            1,
        ),
        (
            401,
            json!({"error": "x", "code": "zero_correct_authorization_signatures"}),
            ApiError::CredentialsInvalid,
            1,
        ),
        (
            429,
            json!({"error": "x", "code": "too_many_requests"}),
            ApiError::RateLimited,
            3,
        ),
        (
            500,
            json!({"error": "x", "code": "internal_error"}),
            ApiError::Unavailable("server error"),
            3,
        ),
    ];
    for (status, body, want, attempts) in cases {
        let (base, seen) = server(vec![(status, body, 0)]).await;
        let p = Privy::new(VendorHttp::new(settings()), BaseUrl::parse(&base).unwrap());
        let typed = json!({"types": {}, "primaryType": "T", "domain": {}, "message": {}});
        let e = p
            .sign_typed_data(&creds, &wallet(), &typed, 1)
            .await
            .unwrap_err();
        assert_eq!(e, want);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), attempts);
        assert_eq!(seen[0].0, "/v1/wallets/w1/rpc");
        assert_eq!(seen[0].2["params"]["typed_data"]["primary_type"], "T");
    }
    // creating a user has no idempotency key at Privy: a 500 is not retried
    let (base, seen) = server(vec![(500, json!({"error": "x"}), 0)]).await;
    let p = Privy::new(VendorHttp::new(settings()), BaseUrl::parse(&base).unwrap());
    let e = p
        .create_wallet(
            &creds,
            &LinkedAccount::Email("a@b.c"),
            VendorChain::Evm,
            "k",
            1,
        )
        .await
        .unwrap_err();
    assert_eq!(e, ApiError::Unavailable("server error"));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn base_urls_are_https_or_loopback_http() {
    for ok in [
        "https://api.cdp.coinbase.com/platform",
        "https://api.privy.io",
        "http://127.0.0.1:8080/platform",
        "http://localhost:9",
        "http://[::1]:9",
    ] {
        assert!(BaseUrl::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://api.privy.io",
        "http://10.0.0.1",
        "ftp://127.0.0.1",
        "https://h/p?q=1",
        "https://u@h",
        "not a url",
    ] {
        assert!(BaseUrl::parse(bad).is_err(), "{bad}");
    }
    let b = BaseUrl::parse("http://127.0.0.1:8080/platform/").unwrap();
    assert_eq!(b.authority(), "127.0.0.1:8080");
    assert_eq!(b.path("/v2/end-users"), "/platform/v2/end-users");
    assert_eq!(b.url("/v2/x"), "http://127.0.0.1:8080/platform/v2/x");
}
