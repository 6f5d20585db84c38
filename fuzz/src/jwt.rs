//! Target `jwt`: `purser_jwt` — the token header gate, JWKS parsing, a whole
//! verification against an in-memory issuer serving the input's JWKS, and the claim
//! checks.
//!
//! Input: up to three parts separated by a line `--`: the token, the JWKS document, a
//! claims object (each lossily UTF-8). Invariants beyond "never panics": a refusal's
//! message is short printable ASCII and never contains `#` (no seed or template has one,
//! so a `#` would be a token or claim value echoed back); a verified token's subject is
//! the non-empty `sub` of its payload; a claims check that passes returns the `sub`.
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use purser_jwt::{ClaimOperator, ClaimRule, ClaimType, Denied, MatchValue, Policy, Settings};
use serde_json::{Value, json};

const DISCOVERY: &str = "https://issuer.fuzz/.well-known/openid-configuration";
const ISSUER: &str = "https://issuer.fuzz";
const NOW: i64 = 1_800_000_000;

struct MemIssuer(Value);

#[async_trait::async_trait]
impl purser_jwt::keys::Fetch for MemIssuer {
    async fn get_json(&self, url: &str) -> Result<(Value, Option<Duration>), String> {
        match url {
            DISCOVERY => Ok((
                json!({"issuer": ISSUER, "jwks_uri": "https://issuer.fuzz/jwks"}),
                None,
            )),
            _ => Ok((self.0.clone(), None)),
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    })
}

fn policy() -> Policy {
    Policy {
        discovery_url: DISCOVERY.into(),
        allowed_audience: vec!["api".into()],
        allowed_clients: vec!["app".into()],
        allowed_scopes: vec!["pay".into()],
        custom_claims: vec![
            ClaimRule {
                name: "tier".into(),
                value_type: ClaimType::String,
                operator: ClaimOperator::Equals,
                value: MatchValue::One("gold".into()),
            },
            ClaimRule {
                name: "roles".into(),
                value_type: ClaimType::StringArray,
                operator: ClaimOperator::ContainsAny,
                value: MatchValue::Many(vec!["agent".into(), "admin".into()]),
            },
        ],
    }
}

fn check_denied(d: &Denied) {
    let m = d.message();
    assert!(!m.is_empty() && m.len() <= 400, "{m:?}");
    assert!(m.bytes().all(|b| (0x20..0x7f).contains(&b)), "{m:?}");
    assert!(!m.contains('#'), "a value was echoed: {m:?}");
}

fn payload_sub(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("sub")?.as_str().map(str::to_string)
}

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, "\n--\n");
    let token = parts.next().unwrap_or("").trim_end_matches('\n');
    let jwks = parts
        .next()
        .and_then(|j| serde_json::from_str::<Value>(j).ok());
    let claims = parts
        .next()
        .and_then(|c| serde_json::from_str::<Value>(c).ok());

    match purser_jwt::parse_header(token) {
        Ok(h) => assert!(token.len() <= purser_jwt::MAX_TOKEN && h.kid.as_deref() != Some("#")),
        Err(d) => check_denied(&d),
    }

    let jwks = jwks.unwrap_or_else(|| json!({"keys": []}));
    if let Ok(keys) = purser_jwt::keys::parse_jwks(&jwks) {
        assert!(keys.len() <= purser_jwt::keys::MAX_KEYS);
    }
    let verifier = purser_jwt::Verifier::with_fetch(Arc::new(MemIssuer(jwks)), Settings::default());
    let result = runtime().block_on(verifier.verify_at(token, &policy(), Instant::now(), NOW));
    match result {
        Ok(v) => {
            assert!(!v.subject.is_empty());
            assert_eq!(Some(v.subject), payload_sub(token));
        }
        Err(d) => check_denied(&d),
    }

    if let Some(Value::Object(claims)) = claims {
        match purser_jwt::policy::check_claims(&claims, ISSUER, &policy(), NOW, 60) {
            Ok(sub) => {
                assert!(!sub.is_empty());
                assert_eq!(
                    claims.get("sub").and_then(Value::as_str),
                    Some(sub.as_str())
                );
            }
            Err(d) => check_denied(&d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `valid-*` seeds verify (so the fuzzer starts from the accepting paths of every
    /// algorithm), the others are refused.
    #[test]
    fn seeds_reach_both_outcomes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/jwt");
        let mut valid = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut parts = text.splitn(3, "\n--\n");
            let token = parts.next().unwrap();
            let jwks = parts
                .next()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or(json!({}));
            let v =
                purser_jwt::Verifier::with_fetch(Arc::new(MemIssuer(jwks)), Settings::default());
            let r = runtime().block_on(v.verify_at(token, &policy(), Instant::now(), NOW));
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("valid-") {
                assert_eq!(r.map(|v| v.subject), Ok("fuzz-user".to_string()), "{name}");
                valid += 1;
            } else {
                assert!(r.is_err(), "{name}");
            }
        }
        assert_eq!(valid, 6);
    }
}
