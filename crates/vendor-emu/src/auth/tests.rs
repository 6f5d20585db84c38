//! The checks against the credentials Purser itself mints (`purser_wallet::vendor`), and
//! one refusal per check.
use super::*;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use purser_wallet::Secret;
use purser_wallet::vendor::{CdpRequest, PrivyRequest, cdp_tokens, privy_tokens};
use rand::rngs::OsRng;

const HOST: &str = "127.0.0.1:4100";
const PATH: &str = "/platform/v2/end-users";
const BODY: &str =
    r#"{"userId":"u-1","authenticationMethods":[{"type":"email","email":"a@example.com"}]}"#;
const NOW: i64 = 1_800_000_000;

struct Cdp {
    keys: HashMap<String, ApiPublicKey>,
    es_secret: Secret,
    ed_secret: Secret,
    wallet_secret: Secret,
    wallet_keys: Vec<p256::ecdsa::VerifyingKey>,
}

fn cdp() -> Cdp {
    let es = p256::SecretKey::random(&mut OsRng);
    let ed = ed25519_dalek::SigningKey::generate(&mut OsRng);
    let mut ed_bytes = ed.to_bytes().to_vec();
    ed_bytes.extend_from_slice(ed.verifying_key().as_bytes());
    let wallet = p256::SecretKey::random(&mut OsRng);
    let mut keys = HashMap::new();
    keys.insert(
        "es-key".to_string(),
        ApiPublicKey::Es256(es.public_key().into()),
    );
    keys.insert(
        "ed-key".to_string(),
        ApiPublicKey::EdDsa(ed.verifying_key()),
    );
    Cdp {
        keys,
        es_secret: Secret::new(es.to_pkcs8_pem(LineEnding::LF).unwrap().as_str()),
        ed_secret: Secret::new(B64.encode(&ed_bytes)),
        wallet_secret: Secret::new(B64.encode(wallet.to_pkcs8_der().unwrap().as_bytes())),
        wallet_keys: vec![wallet.public_key().into()],
    }
}

fn line<'a>(method: &'a str, path: &'a str, body: &'a str) -> RequestLine<'a> {
    RequestLine {
        method,
        host: HOST,
        path,
        body: body.as_bytes(),
    }
}

fn mint(c: &Cdp, kid: &str, secret: &Secret, path: &str, body: &str, now: i64) -> (String, String) {
    let t = cdp_tokens(
        kid,
        secret,
        Some(&c.wallet_secret),
        &CdpRequest {
            method: "POST",
            host: HOST,
            path,
            body: Some(body),
            wallet_auth: true,
        },
        now,
    )
    .unwrap();
    (
        format!("Bearer {}", t.bearer_token),
        t.wallet_auth_token.unwrap(),
    )
}

/// A JWT with any header and claims, signed ES256 by `key`.
fn es256_jwt(header: &Value, claims: &Value, key: &p256::ecdsa::SigningKey) -> String {
    use p256::ecdsa::signature::Signer;
    let input = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
    format!("{input}.{}", B64URL.encode(sig.to_bytes()))
}

#[test]
fn purser_minted_bearer_tokens_pass_with_both_key_types() {
    let c = cdp();
    for (kid, secret) in [("es-key", &c.es_secret), ("ed-key", &c.ed_secret)] {
        let (bearer, _) = mint(&c, kid, secret, PATH, BODY, NOW);
        assert_eq!(
            verify_cdp_bearer(Some(&bearer), &c.keys, &line("POST", PATH, BODY), NOW).unwrap(),
            kid
        );
    }
}

#[test]
fn bearer_refusals() {
    let c = cdp();
    let (bearer, _) = mint(&c, "es-key", &c.es_secret, PATH, BODY, NOW);
    let req = line("POST", PATH, BODY);
    let refused = |h: &str, req: &RequestLine<'_>, now: i64| {
        let e = verify_cdp_bearer(Some(h), &c.keys, req, now).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert_eq!(e.code, "unauthorized");
        e.message
    };
    // Missing.
    assert!(verify_cdp_bearer(None, &c.keys, &req, NOW).is_err());
    // Signed by another key under a registered kid.
    let other = cdp();
    let (forged, _) = mint(&other, "es-key", &other.es_secret, PATH, BODY, NOW);
    assert!(refused(&forged, &req, NOW).contains("signature"));
    // Unknown kid.
    let (unknown, _) = mint(&other, "nobody", &other.es_secret, PATH, BODY, NOW);
    assert!(refused(&unknown, &req, NOW).contains("kid"));
    // An Ed25519 key's JWT presented under the ES256 key's kid (alg confusion).
    let (ed_as_es, _) = mint(&c, "es-key", &c.ed_secret, PATH, BODY, NOW);
    assert!(refused(&ed_as_es, &req, NOW).contains("alg"));
    // uris names another path, another method, another host.
    assert!(
        refused(
            &bearer,
            &line("POST", "/platform/v2/end-users/x/evm", BODY),
            NOW
        )
        .contains("uris")
    );
    assert!(refused(&bearer, &line("GET", PATH, BODY), NOW).contains("uris"));
    let other_host = RequestLine {
        host: "127.0.0.1:4101",
        ..req
    };
    assert!(refused(&bearer, &other_host, NOW).contains("uris"));
    // Expired, and not yet valid.
    assert!(refused(&bearer, &req, NOW + 120).contains("exp"));
    assert!(refused(&bearer, &req, NOW - 31).contains("nbf"));
}

#[test]
fn bearer_claim_checks() {
    use p256::pkcs8::DecodePrivateKey;
    let c = cdp();
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(c.es_secret.expose()).unwrap();
    let req = line("POST", PATH, BODY);
    let header = serde_json::json!({"alg": "ES256", "kid": "es-key", "typ": "JWT"});
    let claims = |iss: &str, sub: &str| {
        serde_json::json!({"iss": iss, "sub": sub, "uris": [format!("POST {HOST}{PATH}")],
            "nbf": NOW, "exp": NOW + 120})
    };
    let good = format!(
        "Bearer {}",
        es256_jwt(&header, &claims("cdp", "es-key"), &key)
    );
    verify_cdp_bearer(Some(&good), &c.keys, &req, NOW).unwrap();
    let bad_iss = format!(
        "Bearer {}",
        es256_jwt(&header, &claims("coinbase", "es-key"), &key)
    );
    assert!(
        verify_cdp_bearer(Some(&bad_iss), &c.keys, &req, NOW)
            .unwrap_err()
            .message
            .contains("iss")
    );
    let bad_sub = format!(
        "Bearer {}",
        es256_jwt(&header, &claims("cdp", "ed-key"), &key)
    );
    assert!(
        verify_cdp_bearer(Some(&bad_sub), &c.keys, &req, NOW)
            .unwrap_err()
            .message
            .contains("sub")
    );
    let no_uris = serde_json::json!({"iss": "cdp", "sub": "es-key", "nbf": NOW, "exp": NOW + 120});
    let no_uris = format!("Bearer {}", es256_jwt(&header, &no_uris, &key));
    assert!(
        verify_cdp_bearer(Some(&no_uris), &c.keys, &req, NOW)
            .unwrap_err()
            .message
            .contains("uris")
    );
}

#[test]
fn wallet_auth_accepts_purser_tokens_once() {
    let c = cdp();
    let jtis = JtiCache::default();
    let (_, wallet) = mint(&c, "es-key", &c.es_secret, PATH, BODY, NOW);
    let req = line("POST", PATH, BODY);
    verify_wallet_auth(Some(&wallet), &c.wallet_keys, &req, NOW, &jtis).unwrap();
    let e = verify_wallet_auth(Some(&wallet), &c.wallet_keys, &req, NOW, &jtis).unwrap_err();
    assert!(e.message.contains("jti"), "{}", e.message);
}

#[test]
fn wallet_auth_refusals() {
    let c = cdp();
    let jtis = JtiCache::default();
    let req = line("POST", PATH, BODY);
    let check = |token: &str, req: &RequestLine<'_>, now: i64| {
        verify_wallet_auth(Some(token), &c.wallet_keys, req, now, &jtis)
            .unwrap_err()
            .message
    };
    assert!(verify_wallet_auth(None, &c.wallet_keys, &req, NOW, &jtis).is_err());
    // The body was changed after signing: reqHash.
    let (_, w) = mint(&c, "es-key", &c.es_secret, PATH, BODY, NOW);
    let tampered = BODY.replace("u-1", "u-2");
    assert!(check(&w, &line("POST", PATH, &tampered), NOW).contains("reqHash"));
    // The same body with keys in another order hashes the same (sortKeys).
    let (_, w) = mint(&c, "es-key", &c.es_secret, PATH, BODY, NOW);
    let reordered =
        r#"{"authenticationMethods":[{"email":"a@example.com","type":"email"}],"userId":"u-1"}"#;
    verify_wallet_auth(
        Some(&w),
        &c.wallet_keys,
        &line("POST", PATH, reordered),
        NOW,
        &jtis,
    )
    .unwrap();
    // Stale and future iat.
    let (_, w) = mint(&c, "es-key", &c.es_secret, PATH, BODY, NOW);
    assert!(check(&w, &req, NOW + 61).contains("iat"));
    let (_, w) = mint(&c, "es-key", &c.es_secret, PATH, BODY, NOW);
    assert!(check(&w, &req, NOW - 31).contains("iat"));
    // Another path.
    let (_, w) = mint(&c, "es-key", &c.es_secret, PATH, BODY, NOW);
    assert!(
        check(
            &w,
            &line("POST", "/platform/v2/end-users/u-1/evm", BODY),
            NOW
        )
        .contains("uris")
    );
    // Signed by a secret that is not the project's.
    let other = cdp();
    let (_, w) = mint(&other, "es-key", &other.es_secret, PATH, BODY, NOW);
    assert!(check(&w, &req, NOW).contains("wallet secret"));
}

#[test]
fn privy_basic_auth() {
    let apps = vec![PrivyApp {
        app_id: "app-1".into(),
        secret_hash: Sha256::digest(b"s3cret").into(),
    }];
    let basic = |id: &str, s: &str| format!("Basic {}", B64.encode(format!("{id}:{s}")));
    assert_eq!(
        verify_privy_basic(Some(&basic("app-1", "s3cret")), Some("app-1"), &apps)
            .unwrap()
            .app_id,
        "app-1"
    );
    for (h, id) in [
        (basic("app-1", "wrong"), Some("app-1")),
        (basic("app-2", "s3cret"), Some("app-2")),
        (basic("app-1", "s3cret"), Some("app-2")),
        (basic("app-1", "s3cret"), None),
        ("Bearer x".to_string(), Some("app-1")),
    ] {
        let e = verify_privy_basic(Some(&h), id, &apps).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }
}

#[test]
fn privy_signatures_minted_by_purser_verify() {
    let key = p256::SecretKey::random(&mut OsRng);
    let private = Secret::new(format!(
        "wallet-auth:{}",
        B64.encode(key.to_pkcs8_der().unwrap().as_bytes())
    ));
    let public: p256::ecdsa::VerifyingKey = key.public_key().into();
    assert!(key.public_key().to_public_key_der().is_ok());
    let body = r#"{"method":"eth_signTypedData_v4","params":{"typed_data":{"primary_type":"X"}}}"#;
    let path = "/v1/wallets/w1/rpc";
    let t = privy_tokens(
        "app-1",
        &Secret::new("s"),
        Some(&private),
        &PrivyRequest {
            host: "api.privy.io",
            path,
            body,
            sign: true,
        },
        NOW * 1000,
    )
    .unwrap();
    let expiry = t.request_expiry_ms.unwrap().to_string();
    let url = format!("https://api.privy.io{path}");
    let payload =
        privy_signed_payload("POST", &url, body.as_bytes(), "app-1", None, Some(&expiry)).unwrap();
    let sig = t.authorization_signature.unwrap();
    verify_privy_signature(Some(&sig), &payload, &[public]).unwrap();
    // Several signatures, one good.
    verify_privy_signature(Some(&format!("AAAA,{sig}")), &payload, &[public]).unwrap();
    // Another body, another URL, another expiry, another key, none at all.
    let other_body = body.replace("X", "Y");
    for p in [
        privy_signed_payload(
            "POST",
            &url,
            other_body.as_bytes(),
            "app-1",
            None,
            Some(&expiry),
        )
        .unwrap(),
        privy_signed_payload(
            "POST",
            "http://127.0.0.1:1/v1/wallets/w1/rpc",
            body.as_bytes(),
            "app-1",
            None,
            Some(&expiry),
        )
        .unwrap(),
        privy_signed_payload("POST", &url, body.as_bytes(), "app-1", None, Some("1")).unwrap(),
        privy_signed_payload(
            "POST",
            &url,
            body.as_bytes(),
            "app-1",
            Some("idem"),
            Some(&expiry),
        )
        .unwrap(),
    ] {
        let e = verify_privy_signature(Some(&sig), &p, &[public]).unwrap_err();
        assert_eq!(e.code, "zero_correct_authorization_signatures");
    }
    let stranger: p256::ecdsa::VerifyingKey =
        p256::SecretKey::random(&mut OsRng).public_key().into();
    assert!(verify_privy_signature(Some(&sig), &payload, &[stranger]).is_err());
    let e = verify_privy_signature(None, &payload, &[public]).unwrap_err();
    assert_eq!(e.code, "missing_or_empty_authorization_header");
}
