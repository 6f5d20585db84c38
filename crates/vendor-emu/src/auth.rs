//! The vendors' authentication checks, as the vendors make them.
//!
//! * CDP bearer JWT (`Authorization: Bearer`): ES256 (P-256) or EdDSA (Ed25519) by a
//!   registered API key named by `kid`; `iss = "cdp"`, `sub = kid`; `nbf`/`exp` window;
//!   `uris` names this request (`"METHOD host[:port]/path"`, the Host header and path as
//!   received, no query).
//! * CDP wallet-auth JWT (`X-Wallet-Auth`, write calls): ES256 by a registered wallet
//!   secret; same `uris`; `iat` fresh; `jti` never seen before; `reqHash` = hex SHA-256 of
//!   `JSON.stringify(sortKeys(body))` when the body is a non-empty object or array (and
//!   absent otherwise).
//! * Privy: `Authorization: Basic base64(appId:appSecret)` with `privy-app-id: appId`; on
//!   wallet actions `privy-authorization-signature` (comma-separated base64 DER ECDSA
//!   P-256/SHA-256 signatures over the RFC 8785 JSON of `{version: 1, method, url, body,
//!   headers}`), one of which must verify under a key allowed to act on the wallet.
//!
//! Refusals name the check that failed, never the token, key or secret.
use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Clock skew tolerated on `nbf` / `iat` in the future, seconds.
pub const CLOCK_SKEW: i64 = 30;
/// Oldest `iat` a wallet-auth JWT may have, seconds (the emulator's choice; the SDK mints
/// a fresh one per request).
pub const WALLET_AUTH_MAX_AGE: i64 = 60;

/// A registered CDP API key's public half.
#[derive(Clone, Debug)]
pub enum ApiPublicKey {
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_dalek::VerifyingKey),
}

/// What of the request the credentials must name.
#[derive(Clone, Copy, Debug)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    /// The Host header as received (host[:port]).
    pub host: &'a str,
    /// The path as received, without the query.
    pub path: &'a str,
    pub body: &'a [u8],
}

impl RequestLine<'_> {
    fn uri(&self) -> String {
        format!("{} {}{}", self.method, self.host, self.path)
    }
}

struct Jwt {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

fn parse_jwt(token: &str, what: &str) -> Result<Jwt, ApiError> {
    let bad = || ApiError::unauthorized(format!("The {what} is not a well-formed JWT."));
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let object = |part: &str| -> Option<Map<String, Value>> {
        let bytes = B64URL.decode(part.trim_end_matches('=')).ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            Value::Object(m) => Some(m),
            _ => None,
        }
    };
    let header = object(h).ok_or_else(bad)?;
    let claims = object(c).ok_or_else(bad)?;
    let signature = B64URL.decode(s.trim_end_matches('=')).map_err(|_| bad())?;
    Ok(Jwt {
        header,
        claims,
        signing_input: format!("{h}.{c}"),
        signature,
    })
}

fn int_claim(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    claims.get(name).and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
    })
}

fn check_uris(
    claims: &Map<String, Value>,
    req: &RequestLine<'_>,
    what: &str,
) -> Result<(), ApiError> {
    let uri = req.uri();
    let ok = claims
        .get("uris")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|u| u.as_str() == Some(uri.as_str())));
    if ok {
        Ok(())
    } else {
        Err(ApiError::unauthorized(format!(
            "The {what}'s uris claim does not name this request (method, host and path)."
        )))
    }
}

fn verify_es256(key: &p256::ecdsa::VerifyingKey, input: &str, sig: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier;
    let Ok(sig) = p256::ecdsa::Signature::from_slice(sig) else {
        return false;
    };
    key.verify(input.as_bytes(), &sig).is_ok()
}

/// Checks `Authorization: Bearer <JWT>`; answers the API key id.
pub fn verify_cdp_bearer(
    authorization: Option<&str>,
    keys: &HashMap<String, ApiPublicKey>,
    req: &RequestLine<'_>,
    now: i64,
) -> Result<String, ApiError> {
    let token = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("Missing Authorization: Bearer token."))?;
    let jwt = parse_jwt(token, "bearer token")?;
    let kid = jwt
        .header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::unauthorized("The bearer token has no kid."))?;
    let key = keys.get(kid).ok_or_else(|| {
        ApiError::unauthorized("The bearer token's kid is not an API key of this project.")
    })?;
    let alg = jwt.header.get("alg").and_then(Value::as_str).unwrap_or("");
    let verified = match (alg, key) {
        ("ES256", ApiPublicKey::Es256(k)) => verify_es256(k, &jwt.signing_input, &jwt.signature),
        ("EdDSA", ApiPublicKey::EdDsa(k)) => {
            let Ok(sig) = ed25519_dalek::Signature::from_slice(&jwt.signature) else {
                return Err(ApiError::unauthorized(
                    "The bearer token's signature is invalid.",
                ));
            };
            k.verify_strict(jwt.signing_input.as_bytes(), &sig).is_ok()
        }
        _ => {
            return Err(ApiError::unauthorized(
                "The bearer token's alg does not match the API key's type (ES256 or EdDSA).",
            ));
        }
    };
    if !verified {
        return Err(ApiError::unauthorized(
            "The bearer token's signature is invalid.",
        ));
    }
    if jwt.claims.get("iss").and_then(Value::as_str) != Some("cdp") {
        return Err(ApiError::unauthorized("The bearer token's iss is not cdp."));
    }
    if jwt.claims.get("sub").and_then(Value::as_str) != Some(kid) {
        return Err(ApiError::unauthorized(
            "The bearer token's sub is not its kid.",
        ));
    }
    let nbf = int_claim(&jwt.claims, "nbf")
        .ok_or_else(|| ApiError::unauthorized("The bearer token has no nbf."))?;
    let exp = int_claim(&jwt.claims, "exp")
        .ok_or_else(|| ApiError::unauthorized("The bearer token has no exp."))?;
    if nbf > now + CLOCK_SKEW {
        return Err(ApiError::unauthorized(
            "The bearer token is not valid yet (nbf).",
        ));
    }
    if now >= exp {
        return Err(ApiError::unauthorized(
            "The bearer token has expired (exp).",
        ));
    }
    check_uris(&jwt.claims, req, "bearer token")?;
    Ok(kid.to_string())
}

/// `jti`s seen recently (a wallet-auth JWT is refused the second time).
#[derive(Default)]
pub struct JtiCache {
    seen: Mutex<HashMap<String, i64>>,
}

impl JtiCache {
    /// Records `jti` at `now`; false when it was already there.
    fn first_use(&self, jti: &str, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Tokens older than the freshness window are refused on `iat` anyway.
        seen.retain(|_, t| *t >= now - WALLET_AUTH_MAX_AGE - CLOCK_SKEW);
        seen.insert(jti.to_string(), now).is_none()
    }
}

/// Checks `X-Wallet-Auth` of a write call.
pub fn verify_wallet_auth(
    header: Option<&str>,
    wallet_keys: &[p256::ecdsa::VerifyingKey],
    req: &RequestLine<'_>,
    now: i64,
    jtis: &JtiCache,
) -> Result<(), ApiError> {
    let token = header
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "Missing X-Wallet-Auth header; this call needs wallet authentication.",
            )
        })?;
    let jwt = parse_jwt(token, "wallet auth token")?;
    if jwt.header.get("alg").and_then(Value::as_str) != Some("ES256") {
        return Err(ApiError::unauthorized(
            "The wallet auth token's alg is not ES256.",
        ));
    }
    if !wallet_keys
        .iter()
        .any(|k| verify_es256(k, &jwt.signing_input, &jwt.signature))
    {
        return Err(ApiError::unauthorized(
            "The wallet auth token is not signed by this project's wallet secret.",
        ));
    }
    let iat = int_claim(&jwt.claims, "iat")
        .ok_or_else(|| ApiError::unauthorized("The wallet auth token has no iat."))?;
    if iat > now + CLOCK_SKEW || now - iat > WALLET_AUTH_MAX_AGE {
        return Err(ApiError::unauthorized(
            "The wallet auth token is not fresh (iat).",
        ));
    }
    if let Some(nbf) = int_claim(&jwt.claims, "nbf")
        && nbf > now + CLOCK_SKEW
    {
        return Err(ApiError::unauthorized(
            "The wallet auth token is not valid yet (nbf).",
        ));
    }
    if let Some(exp) = int_claim(&jwt.claims, "exp")
        && now >= exp
    {
        return Err(ApiError::unauthorized(
            "The wallet auth token has expired (exp).",
        ));
    }
    check_uris(&jwt.claims, req, "wallet auth token")?;
    let expected = body_hash(req.body)?;
    let claimed = jwt.claims.get("reqHash").and_then(Value::as_str);
    if claimed != expected.as_deref() {
        return Err(ApiError::unauthorized(
            "The wallet auth token's reqHash does not match the request body.",
        ));
    }
    let jti = jwt
        .claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
        .ok_or_else(|| ApiError::unauthorized("The wallet auth token has no jti."))?;
    if !jtis.first_use(jti, now) {
        return Err(ApiError::unauthorized(
            "The wallet auth token was already used (jti replayed).",
        ));
    }
    Ok(())
}

fn body_hash(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("invalid_request", "The request body is not UTF-8."))?;
    match purser_wallet::vendor::cdp_request_hash(text) {
        Ok(h) => Ok(h),
        Err(purser_wallet::vendor::VendorError::UnsupportedNumber(_)) => {
            Err(ApiError::bad_request(
                "invalid_request",
                "The emulator canonicalizes only integer JSON numbers (|n| <= 2^53).",
            ))
        }
        Err(_) => Err(ApiError::bad_request(
            "invalid_request",
            "The request body is not valid JSON.",
        )),
    }
}

/// A Privy app as the emulator knows it.
#[derive(Clone, Debug)]
pub struct PrivyApp {
    pub app_id: String,
    /// SHA-256 of the app secret.
    pub secret_hash: [u8; 32],
}

/// Checks Privy's Basic auth and `privy-app-id`; answers the app.
pub fn verify_privy_basic<'a>(
    authorization: Option<&str>,
    app_id_header: Option<&str>,
    apps: &'a [PrivyApp],
) -> Result<&'a PrivyApp, ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_auth",
            "Invalid app ID or app secret.",
        )
    };
    let encoded = authorization
        .and_then(|h| h.strip_prefix("Basic "))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_auth",
                "Missing Authorization: Basic header.",
            )
        })?;
    let decoded = zeroize::Zeroizing::new(B64.decode(encoded.trim()).map_err(|_| bad())?);
    let text = std::str::from_utf8(&decoded).map_err(|_| bad())?;
    let (app_id, secret) = text.split_once(':').ok_or_else(bad)?;
    if app_id_header != Some(app_id) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_app_id",
            "The privy-app-id header is missing or differs from the Basic auth app id.",
        ));
    }
    let app = apps.iter().find(|a| a.app_id == app_id).ok_or_else(bad)?;
    let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    // Compare digests, so the time taken says nothing about the secret.
    if hash != app.secret_hash {
        return Err(bad());
    }
    Ok(app)
}

/// The bytes a Privy authorization signature covers (the SDK's
/// `formatRequestForAuthorizationSignature`).
pub fn privy_signed_payload(
    method: &str,
    url: &str,
    body: &[u8],
    app_id: &str,
    idempotency_key: Option<&str>,
    request_expiry: Option<&str>,
) -> Result<String, ApiError> {
    let mut body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::String(String::new())
    } else {
        serde_json::from_slice(body).map_err(|_| {
            ApiError::bad_request("invalid_request", "The request body is not valid JSON.")
        })?
    };
    if body.as_object().is_some_and(Map::is_empty) {
        body = Value::String(String::new());
    }
    let mut headers = Map::new();
    headers.insert("privy-app-id".into(), Value::String(app_id.into()));
    if let Some(k) = idempotency_key {
        headers.insert("privy-idempotency-key".into(), Value::String(k.into()));
    }
    if let Some(e) = request_expiry {
        headers.insert("privy-request-expiry".into(), Value::String(e.into()));
    }
    let input = serde_json::json!({
        "version": 1,
        "method": method,
        "url": url,
        "body": body,
        "headers": headers,
    });
    purser_wallet::vendor::canonical_json(&input, "requestBody").map_err(|_| {
        ApiError::bad_request(
            "invalid_request",
            "The emulator canonicalizes only integer JSON numbers (|n| <= 2^53).",
        )
    })
}

/// Checks `privy-authorization-signature` over `payload` against the keys allowed to act.
pub fn verify_privy_signature(
    header: Option<&str>,
    payload: &str,
    allowed: &[p256::ecdsa::VerifyingKey],
) -> Result<(), ApiError> {
    use p256::ecdsa::signature::Verifier;
    let sigs: Vec<&str> = header
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if sigs.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_or_empty_authorization_header",
            "Missing privy-authorization-signature header or no signatures provided.",
        ));
    }
    let ok = sigs.iter().any(|s| {
        let Ok(der) = B64.decode(s) else { return false };
        let Ok(sig) = p256::ecdsa::Signature::from_der(&der) else {
            return false;
        };
        allowed
            .iter()
            .any(|k| k.verify(payload.as_bytes(), &sig).is_ok())
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "zero_correct_authorization_signatures",
            "No valid authorization signatures were provided.",
        ))
    }
}

#[cfg(test)]
mod tests;
