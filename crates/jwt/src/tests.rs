//! The cache rules and an end-to-end verification against an in-memory issuer.
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use p256::ecdsa::{Signature, SigningKey, signature::Signer};
use serde_json::json;

use super::*;

const DISCOVERY: &str = "https://issuer.test/.well-known/openid-configuration";
const JWKS: &str = "https://issuer.test/jwks.json";
const ISS: &str = "https://issuer.test";

/// An in-memory issuer: its JWKS can be rotated and it can go down.
struct FakeIssuer {
    keys: Mutex<Vec<(String, SigningKey)>>,
    down: Mutex<bool>,
    hang: Mutex<bool>,
    fetches: AtomicUsize,
}

impl FakeIssuer {
    fn new(kids: &[&str]) -> Arc<Self> {
        let i = Arc::new(FakeIssuer {
            keys: Mutex::new(Vec::new()),
            down: Mutex::new(false),
            hang: Mutex::new(false),
            fetches: AtomicUsize::new(0),
        });
        for k in kids {
            i.add(k);
        }
        i
    }

    fn add(&self, kid: &str) {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        self.keys.lock().unwrap().push((kid.to_string(), key));
    }

    fn set_down(&self, down: bool) {
        *self.down.lock().unwrap() = down;
    }

    fn jwks_fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn sign(&self, kid: &str, claims: Value) -> String {
        let keys = self.keys.lock().unwrap();
        let (_, key) = keys.iter().find(|(k, _)| k == kid).unwrap();
        let header = B64.encode(json!({"alg": "ES256", "typ": "JWT", "kid": kid}).to_string());
        let payload = B64.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        let sig: Signature = key.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.to_bytes()))
    }
}

#[async_trait::async_trait]
impl keys::Fetch for FakeIssuer {
    async fn get_json(&self, url: &str) -> Result<(Value, Option<Duration>), String> {
        let hang = *self.hang.lock().unwrap();
        if hang {
            std::future::pending::<()>().await;
        }
        if *self.down.lock().unwrap() {
            return Err("connection refused".into());
        }
        match url {
            DISCOVERY => Ok((json!({"issuer": ISS, "jwks_uri": JWKS}), None)),
            JWKS => {
                self.fetches.fetch_add(1, Ordering::SeqCst);
                let keys: Vec<Value> = self
                    .keys
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(kid, k)| {
                        let p = k.verifying_key().to_encoded_point(false);
                        json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                               "x": B64.encode(p.x().unwrap()), "y": B64.encode(p.y().unwrap())})
                    })
                    .collect();
                Ok((json!({"keys": keys}), None))
            }
            _ => Err("404".into()),
        }
    }
}

fn settings() -> Settings {
    Settings {
        min_refresh: Duration::from_secs(30),
        ttl: Duration::from_secs(600),
        max_stale: Duration::from_secs(3600),
        ..Settings::default()
    }
}

fn policy() -> Policy {
    Policy {
        discovery_url: DISCOVERY.into(),
        ..Policy::default()
    }
}

const NOW: i64 = 1_800_000_000;

fn claims(sub: &str) -> Value {
    json!({"iss": ISS, "sub": sub, "exp": NOW + 300})
}

#[tokio::test]
async fn verifies_and_names_the_subject() {
    let issuer = FakeIssuer::new(&["k1"]);
    let v = Verifier::with_fetch(issuer.clone(), settings());
    let t0 = Instant::now();
    let token = issuer.sign("k1", claims("alice"));
    let ok = v.verify_at(&token, &policy(), t0, NOW).await.unwrap();
    assert_eq!(ok.subject, "alice");
    // Cached: a second token does not refetch.
    let token = issuer.sign("k1", claims("bob"));
    assert_eq!(
        v.verify_at(&token, &policy(), t0, NOW)
            .await
            .unwrap()
            .subject,
        "bob"
    );
    assert_eq!(issuer.jwks_fetches(), 1);
}

#[tokio::test]
async fn tampered_or_unsigned_tokens_are_refused() {
    let issuer = FakeIssuer::new(&["k1"]);
    let v = Verifier::with_fetch(issuer.clone(), settings());
    let t0 = Instant::now();
    let token = issuer.sign("k1", claims("alice"));
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = B64.encode(claims("mallory").to_string());
    let e = v
        .verify_at(&parts.join("."), &policy(), t0, NOW)
        .await
        .unwrap_err();
    assert!(e.message().contains("signature"), "{e}");
    assert!(!e.message().contains("mallory"));

    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none"}"#),
        B64.encode(claims("alice").to_string())
    );
    let e = v.verify_at(&none, &policy(), t0, NOW).await.unwrap_err();
    assert!(e.message().contains("alg none"), "{e}");
    let hs = format!(
        "{}.{}.AAAA",
        B64.encode(r#"{"alg":"HS256","kid":"k1"}"#),
        B64.encode(claims("alice").to_string())
    );
    let e = v.verify_at(&hs, &policy(), t0, NOW).await.unwrap_err();
    assert!(e.message().contains("HMAC"), "{e}");
    // An RS256 header on the EC key: alg does not match the JWK.
    let rs = format!(
        "{}.{}.{}",
        B64.encode(r#"{"alg":"RS256","kid":"k1"}"#),
        parts[1],
        parts[2]
    );
    let e = v.verify_at(&rs, &policy(), t0, NOW).await.unwrap_err();
    assert!(e.message().contains("does not match"), "{e}");
    for junk in [
        "",
        "a.b",
        "....",
        "a.b.c.d",
        "!!.x.y",
        &"a".repeat(MAX_TOKEN + 1),
    ] {
        assert!(v.verify_at(junk, &policy(), t0, NOW).await.is_err());
    }
    let e = v
        .verify_at(
            &issuer.sign("k1", json!({"iss": ISS, "sub": "a", "exp": NOW - 3600})),
            &policy(),
            t0,
            NOW,
        )
        .await
        .unwrap_err();
    assert!(e.message().contains("expired"), "{e}");
}

#[tokio::test]
async fn unknown_kid_refreshes_at_most_once_per_interval() {
    let issuer = FakeIssuer::new(&["k1"]);
    let v = Verifier::with_fetch(issuer.clone(), settings());
    let t0 = Instant::now();
    v.verify_at(&issuer.sign("k1", claims("a")), &policy(), t0, NOW)
        .await
        .unwrap();
    assert_eq!(issuer.jwks_fetches(), 1);
    // The issuer rotates in k2 right away: within the interval the refresh is refused.
    issuer.add("k2");
    let t2 = issuer.sign("k2", claims("a"));
    let e = v
        .verify_at(&t2, &policy(), t0 + Duration::from_secs(1), NOW)
        .await
        .unwrap_err();
    assert!(e.message().contains("kid"), "{e}");
    assert_eq!(issuer.jwks_fetches(), 1, "rate-limited: no fetch");
    // After the interval, an unknown kid triggers one refresh and the token verifies.
    let later = t0 + Duration::from_secs(31);
    assert_eq!(
        v.verify_at(&t2, &policy(), later, NOW)
            .await
            .unwrap()
            .subject,
        "a"
    );
    assert_eq!(issuer.jwks_fetches(), 2);
    // A kid that never exists refreshes at most once per interval.
    issuer.add("k3");
    let t3 = {
        let mut p: Vec<String> = issuer
            .sign("k3", claims("a"))
            .split('.')
            .map(String::from)
            .collect();
        p[0] = B64.encode(r#"{"alg":"ES256","kid":"nope"}"#);
        p.join(".")
    };
    for s in 0..5 {
        let _ = v
            .verify_at(&t3, &policy(), later + Duration::from_secs(s), NOW)
            .await;
    }
    assert_eq!(
        issuer.jwks_fetches(),
        2,
        "no refresh within 30 s of the last one"
    );
    let _ = v
        .verify_at(&t3, &policy(), later + Duration::from_secs(31), NOW)
        .await;
    assert_eq!(issuer.jwks_fetches(), 3);
}

#[tokio::test]
async fn cached_keys_serve_while_the_issuer_is_down() {
    let issuer = FakeIssuer::new(&["k1"]);
    let v = Verifier::with_fetch(issuer.clone(), settings());
    let t0 = Instant::now();
    let token = issuer.sign("k1", claims("a"));
    v.verify_at(&token, &policy(), t0, NOW).await.unwrap();
    issuer.set_down(true);
    // Past the TTL: the refresh fails, the stale keys still verify.
    let past_ttl = t0 + Duration::from_secs(601);
    assert!(v.verify_at(&token, &policy(), past_ttl, NOW).await.is_ok());
    assert!(
        v.verify_at(&token, &policy(), past_ttl + Duration::from_secs(5), NOW)
            .await
            .is_ok()
    );
    // Beyond the stale allowance they no longer do.
    let too_old = t0 + Duration::from_secs(600 + 3600 + 1);
    let e = v
        .verify_at(&token, &policy(), too_old, NOW)
        .await
        .unwrap_err();
    assert!(e.message().contains("could not be fetched"), "{e}");
    // Back up: keys are fetched again.
    issuer.set_down(false);
    let back = too_old + Duration::from_secs(31);
    assert!(v.verify_at(&token, &policy(), back, NOW).await.is_ok());
}

#[tokio::test]
async fn an_unreachable_issuer_is_not_hammered() {
    let issuer = FakeIssuer::new(&["k1"]);
    issuer.set_down(true);
    let v = Verifier::with_fetch(issuer.clone(), settings());
    let t0 = Instant::now();
    let token = issuer.sign("k1", claims("a"));
    for s in 0..3 {
        let e = v
            .verify_at(&token, &policy(), t0 + Duration::from_secs(s), NOW)
            .await
            .unwrap_err();
        assert!(e.message().contains("could not be fetched"), "{e}");
    }
    issuer.set_down(false);
    // Still within the interval of the failed attempt: no new attempt.
    assert!(
        v.verify_at(&token, &policy(), t0 + Duration::from_secs(5), NOW)
            .await
            .is_err()
    );
    assert_eq!(issuer.jwks_fetches(), 0);
    assert!(
        v.verify_at(&token, &policy(), t0 + Duration::from_secs(31), NOW)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_fetch_dropped_midway_does_not_rate_limit_the_next() {
    let issuer = FakeIssuer::new(&["k1"]);
    let v = Verifier::with_fetch(issuer.clone(), settings());
    let t0 = Instant::now();
    let token = issuer.sign("k1", claims("a"));
    *issuer.hang.lock().unwrap() = true;
    let dropped = tokio::time::timeout(
        Duration::from_millis(20),
        v.verify_at(&token, &policy(), t0, NOW),
    )
    .await;
    assert!(
        dropped.is_err(),
        "the fetch hangs and its request is dropped"
    );
    *issuer.hang.lock().unwrap() = false;
    assert!(
        v.verify_at(&token, &policy(), t0 + Duration::from_secs(1), NOW)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let issuer = FakeIssuer::new(&["k1"]);
    let v = Verifier::with_fetch(
        issuer.clone(),
        Settings {
            max_issuers: 3,
            ..settings()
        },
    );
    let t0 = Instant::now();
    for i in 0..10 {
        let p = Policy {
            discovery_url: format!("https://issuer{i}.test/.well-known/openid-configuration"),
            ..Policy::default()
        };
        let _ = v
            .verify_at(&issuer.sign("k1", claims("a")), &p, t0, NOW)
            .await;
    }
    assert_eq!(v.cache.len(), 3);
}

#[test]
fn urls_https_or_loopback_http() {
    use keys::check_url;
    assert!(
        check_url(
            "https://login.example.com/.well-known/openid-configuration",
            false
        )
        .is_ok()
    );
    for ok in [
        "http://127.0.0.1:9/x",
        "http://127.9.9.9/x",
        "http://localhost:8080/x",
        "http://[::1]:80/x",
    ] {
        assert!(check_url(ok, false).is_ok(), "{ok}");
    }
    for bad in [
        "http://example.com/x",
        "http://10.0.0.1/x",
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
        "not a url",
    ] {
        assert!(check_url(bad, false).is_err(), "{bad}");
    }
    assert!(check_url("http://example.com/x", true).is_ok());
}

#[test]
fn jwks_parsing_skips_what_it_cannot_use() {
    let doc = json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "RSA", "kid": "broken"},
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed"},
        // Wrong sizes (a short Ed25519 key panicked jsonwebtoken's verifier; found by fuzz).
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIa", "kid": "ed-short"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": "ec-short"},
        {"kty": "RSA", "n": "3reNnR5otNFnWh3-7k0vIp7z0hgyqmI", "e": "AQAB", "kid": "rsa-short"},
        {"kty": "RSA", "n": "", "e": "", "kid": "rsa-empty"},
        {"kty": "RSA", "n": "AAAA", "e": "AQAB", "kid": "rsa-zero"},
        "not an object",
        42
    ]});
    let keys = keys::parse_jwks(&doc).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid.as_deref(), Some("ed"));
    assert!(keys::parse_jwks(&json!({"nokeys": 1})).is_err());
    assert!(keys::parse_jwks(&json!([])).is_err());
}

#[test]
fn cache_control_max_age() {
    use keys::max_age;
    assert_eq!(
        max_age("public, max-age=300"),
        Some(Duration::from_secs(300))
    );
    assert_eq!(max_age("no-store"), Some(Duration::ZERO));
    assert_eq!(max_age("max-age=\"60\""), Some(Duration::from_secs(60)));
    assert_eq!(max_age("private"), None);
    assert_eq!(max_age("max-age=-1"), None);
}
