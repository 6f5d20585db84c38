use super::*;
use p256::ecdsa::VerifyingKey;
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::{EncodePrivateKey, LineEnding};

fn split(token: &str) -> (Value, Value, String, Vec<u8>) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
    let claims = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    (
        header,
        claims,
        format!("{}.{}", parts[0], parts[1]),
        B64URL.decode(parts[2]).unwrap(),
    )
}

fn ec_key() -> (p256::SecretKey, VerifyingKey) {
    let sk = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let vk = VerifyingKey::from(&p256::ecdsa::SigningKey::from(sk.clone()));
    (sk, vk)
}

fn req<'a>(wallet_auth: bool, body: Option<&'a str>) -> CdpRequest<'a> {
    CdpRequest {
        method: "POST",
        host: "api.cdp.coinbase.com",
        path: "/platform/v2/evm/accounts",
        body,
        wallet_auth,
    }
}

#[test]
fn cdp_es256_bearer_jwt_has_the_sdk_header_and_claims_and_verifies() {
    let (sk, vk) = ec_key();
    let pem = sk.to_pkcs8_pem(LineEnding::LF).unwrap();
    for secret in [
        pem.to_string(),
        sk.to_sec1_pem(LineEnding::LF).unwrap().to_string(),
    ] {
        let t = cdp_tokens(
            "key-1",
            &Secret::new(secret),
            None,
            &req(false, None),
            1_700_000_000,
        )
        .unwrap();
        assert!(t.wallet_auth_token.is_none());
        let (h, c, input, sig) = split(&t.bearer_token);
        assert_eq!(h["alg"], "ES256");
        assert_eq!(h["kid"], "key-1");
        assert_eq!(h["typ"], "JWT");
        let nonce = h["nonce"].as_str().unwrap();
        assert!(nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(h.as_object().unwrap().len(), 4);
        assert_eq!(
            c,
            serde_json::json!({"sub": "key-1", "iss": "cdp",
                "uris": ["POST api.cdp.coinbase.com/platform/v2/evm/accounts"],
                "iat": 1_700_000_000, "nbf": 1_700_000_000, "exp": 1_700_000_120})
        );
        let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        vk.verify(input.as_bytes(), &sig).unwrap();
        // tampering breaks it
        assert!(vk.verify(format!("{input}x").as_bytes(), &sig).is_err());
    }
}

#[test]
fn cdp_eddsa_bearer_jwt_verifies() {
    let sk = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let mut raw = sk.to_bytes().to_vec();
    raw.extend_from_slice(sk.verifying_key().as_bytes());
    let t = cdp_tokens(
        "k2",
        &Secret::new(B64.encode(&raw)),
        None,
        &req(false, None),
        100,
    )
    .unwrap();
    let (h, c, input, sig) = split(&t.bearer_token);
    assert_eq!(h["alg"], "EdDSA");
    assert_eq!(h["kid"], "k2");
    assert_eq!(c["exp"], 220);
    let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
    sk.verifying_key()
        .verify_strict(input.as_bytes(), &sig)
        .unwrap();
}

#[test]
fn cdp_wallet_auth_jwt() {
    let (api, _) = ec_key();
    let (wallet, wallet_vk) = ec_key();
    let api = Secret::new(api.to_pkcs8_pem(LineEnding::LF).unwrap().to_string());
    let wallet_secret = Secret::new(B64.encode(wallet.to_pkcs8_der().unwrap().as_bytes()));
    let body = r#"{"name":"a","0":1}"#;
    let t = cdp_tokens("k", &api, Some(&wallet_secret), &req(true, Some(body)), 50).unwrap();
    let (h, c, input, sig) = split(t.wallet_auth_token.as_deref().unwrap());
    assert_eq!(h, serde_json::json!({"alg": "ES256", "typ": "JWT"}));
    assert_eq!(
        c["uris"][0],
        "POST api.cdp.coinbase.com/platform/v2/evm/accounts"
    );
    assert_eq!((c["iat"].as_i64(), c["nbf"].as_i64()), (Some(50), Some(50)));
    assert_eq!(c["jti"].as_str().unwrap().len(), 32);
    let expected = hex_lower(&Sha256::digest(br#"{"0":1,"name":"a"}"#));
    assert_eq!(c["reqHash"], expected);
    let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
    wallet_vk.verify(input.as_bytes(), &sig).unwrap();
    // no body or an empty one: no reqHash
    for body in [None, Some("{}")] {
        let t = cdp_tokens("k", &api, Some(&wallet_secret), &req(true, body), 50).unwrap();
        let (_, c, _, _) = split(t.wallet_auth_token.as_deref().unwrap());
        assert!(c.get("reqHash").is_none());
    }
    // refusals name no secret
    assert_eq!(
        cdp_tokens("k", &api, None, &req(true, None), 50).unwrap_err(),
        VendorError::MissingWalletSecret
    );
    assert_eq!(
        cdp_tokens(
            "k",
            &api,
            Some(&Secret::new("bm9wZQ==")),
            &req(true, None),
            50
        )
        .unwrap_err(),
        VendorError::InvalidWalletSecret
    );
    assert_eq!(
        cdp_tokens("k", &Secret::new("garbage"), None, &req(false, None), 50).unwrap_err(),
        VendorError::InvalidApiKeySecret
    );
    assert_eq!(
        cdp_tokens("k", &api, Some(&wallet_secret), &req(true, Some("{")), 50).unwrap_err(),
        VendorError::BodyNotJson("requestBody")
    );
}

#[test]
fn cdp_request_hash_vector_from_the_sdk() {
    // JSON.stringify(sortKeys(body)) and its SHA-256, computed with node and the SDK's
    // sortKeys: array-index keys first in numeric order.
    let body = r#"{"b":1,"a":[{"z":"é\n","y":null}],"10":true,"9":2.0,"B":"x\u2028"}"#;
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        js_json(&v, KeyOrder::JsObject, "f").unwrap(),
        "{\"9\":2,\"10\":true,\"B\":\"x\u{2028}\",\"a\":[{\"y\":null,\"z\":\"é\\n\"}],\"b\":1}"
    );
    assert_eq!(
        cdp_request_hash(body).unwrap().unwrap(),
        "3fbe91cea07a175af40bfbf6c61915892bd1623472a6faab091a173eef6c7f55"
    );
    assert_eq!(cdp_request_hash("\"text\"").unwrap(), None);
}

#[test]
fn canonical_json_vectors() {
    let v: Value = serde_json::from_str(
        r#"{"b":1,"a":[{"z":"é\n","y":null}],"10":true,"9":2.0,"B":"x\u2028","\ud83d\ude00":0,"\ufb01":-5}"#,
    )
    .unwrap();
    // RFC 8785: keys by UTF-16 code units (the emoji's surrogates sort before U+FB01).
    assert_eq!(
        canonical_json(&v, "f").unwrap(),
        "{\"10\":true,\"9\":2,\"B\":\"x\u{2028}\",\"a\":[{\"y\":null,\"z\":\"é\\n\"}],\"b\":1,\"\u{1F600}\":0,\"\u{FB01}\":-5}"
    );
    assert_eq!(
        canonical_json(&serde_json::json!({"c": "\u{1}\t\"\\"}), "f").unwrap(),
        "{\"c\":\"\\u0001\\t\\\"\\\\\"}"
    );
    for bad in ["1.5", "1e300", "9007199254740993", "18446744073709551615"] {
        let v: Value = serde_json::from_str(bad).unwrap();
        assert_eq!(
            canonical_json(&v, "requestBody").unwrap_err(),
            VendorError::UnsupportedNumber("requestBody"),
            "{bad}"
        );
    }
    for (ok, text) in [
        ("1.0", "1"),
        ("-0", "0"),
        ("9007199254740992", "9007199254740992"),
    ] {
        let v: Value = serde_json::from_str(ok).unwrap();
        assert_eq!(canonical_json(&v, "f").unwrap(), text);
    }
}

#[test]
fn privy_tokens_and_signature() {
    let (sk, vk) = ec_key();
    let key = format!(
        "wallet-auth:{}",
        B64.encode(sk.to_pkcs8_der().unwrap().as_bytes())
    );
    let r = PrivyRequest {
        host: "api.privy.io",
        path: "/v1/wallets/w1/rpc",
        body: r#"{"method":"eth_signTypedData_v4","params":{"b":2,"a":1}}"#,
        sign: true,
    };
    let key_secret = Secret::new(key);
    let t = privy_tokens(
        "app-1",
        &Secret::new("s3cret"),
        Some(&key_secret),
        &r,
        1_000,
    )
    .unwrap();
    assert_eq!(t.app_id, "app-1");
    assert_eq!(t.basic_auth_token, B64.encode("app-1:s3cret"));
    let expiry = 1_000 + PRIVY_REQUEST_EXPIRY_MS;
    assert_eq!(t.request_expiry_ms, Some(expiry));
    let payload = format!(
        "{{\"body\":{{\"method\":\"eth_signTypedData_v4\",\"params\":{{\"a\":1,\"b\":2}}}},\"headers\":{{\"privy-app-id\":\"app-1\",\"privy-request-expiry\":\"{expiry}\"}},\"method\":\"POST\",\"url\":\"https://api.privy.io/v1/wallets/w1/rpc\",\"version\":1}}"
    );
    assert_eq!(
        privy_signature_payload(
            "app-1",
            "https://api.privy.io/v1/wallets/w1/rpc",
            r.body,
            expiry
        )
        .unwrap(),
        payload
    );
    let der = B64.decode(t.authorization_signature.unwrap()).unwrap();
    let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
    vk.verify(payload.as_bytes(), &sig).unwrap();
    // low-S, as noble signs (half of all raw signatures are high-S: try several payloads)
    for i in 0..16 {
        let r = PrivyRequest {
            path: &format!("/v1/wallets/w{i}/rpc"),
            ..r.clone()
        };
        let t = privy_tokens("a", &Secret::new("s"), Some(&key_secret), &r, i).unwrap();
        let der = B64.decode(t.authorization_signature.unwrap()).unwrap();
        let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
        assert!(sig.normalize_s().is_none(), "low-S, as noble signs");
    }
    assert!(vk.verify(b"other", &sig).is_err());
    // an empty object body is signed as ""
    assert!(
        privy_signature_payload("a", "https://h/p", "{}", 5)
            .unwrap()
            .starts_with("{\"body\":\"\",")
    );
    // without a signature: no key needed, no expiry
    let t = privy_tokens(
        "app-1",
        &Secret::new("s"),
        None,
        &PrivyRequest {
            sign: false,
            ..r.clone()
        },
        0,
    )
    .unwrap();
    assert!(t.authorization_signature.is_none() && t.request_expiry_ms.is_none());
    assert_eq!(
        privy_tokens("a", &Secret::new("s"), None, &r, 0).unwrap_err(),
        VendorError::MissingAuthorizationKey
    );
}
