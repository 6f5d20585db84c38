//! Short-lived vendor credentials minted from a credential provider's secrets
//! (GetResourcePaymentToken): the Coinbase CDP API-key JWT and wallet-auth JWT, and the
//! Privy basic-auth token and authorization signature.
//!
//! The secrets arrive as [`Secret`]s, are decoded into zeroizing buffers and key types that
//! zeroize on drop, and never appear in an error: every [`VendorError`] names the field
//! that is wrong, not its value.
//!
//! The formats follow the vendors' own SDKs:
//! * CDP (`@coinbase/cdp-sdk` `auth/utils/jwt.js`): the API-key JWT has the header
//!   `{alg, kid: apiKeyId, typ: "JWT", nonce: 16 random bytes as hex}` and the claims
//!   `{sub: apiKeyId, iss: "cdp", uris: ["METHOD host/path"], iat, nbf, exp: iat + 120}`;
//!   `ES256` for a PEM EC P-256 key (PKCS#8 or SEC1), `EdDSA` for the base64 of 64 bytes
//!   (seed || public key). The wallet-auth JWT is `ES256` with the wallet secret (base64
//!   DER PKCS#8 P-256), header `{alg: "ES256", typ: "JWT"}`, claims `{uris, reqHash?, iat,
//!   nbf, jti}`; `reqHash` is the hex SHA-256 of `JSON.stringify(sortKeys(body))`, present
//!   when the body is a non-empty JSON object or array.
//! * Privy (`@privy-io/node` `lib/authorization.ts`): the signature is ECDSA P-256 /
//!   SHA-256, DER, base64, over the RFC 8785 canonical JSON of `{version: 1, method:
//!   "POST", url, body, headers: {"privy-app-id", "privy-request-expiry"}}`, where an empty
//!   object body is replaced by the empty string.
//!
//! JSON numbers: both formats serialise numbers as JavaScript does. Purser reproduces that
//! exactly for integers of magnitude up to 2^53 (a number written with a fraction or an
//! exponent that is such an integer, e.g. `1.0`, counts); any other number is refused
//! ([`VendorError::UnsupportedNumber`]) rather than risk a digest the vendor would not
//! compute.
use std::cmp::Ordering;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use p256::ecdsa::signature::Signer;
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::Secret;

/// Lifetime of a CDP API-key JWT (the SDK's default).
pub const CDP_JWT_SECONDS: i64 = 120;
/// How far ahead a Privy `privy-request-expiry` lies (the Privy SDK's default).
pub const PRIVY_REQUEST_EXPIRY_MS: i64 = 15 * 60 * 1000;

/// Why a vendor credential could not be minted. Messages name fields, never values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VendorError {
    #[error(
        "The provider's apiKeySecret is neither a PEM EC P-256 private key nor the base64 of a 64-byte Ed25519 key."
    )]
    InvalidApiKeySecret,
    #[error("The provider has no walletSecret; includeWalletAuthToken needs one.")]
    MissingWalletSecret,
    #[error("The provider's walletSecret is not a base64 DER PKCS#8 P-256 private key.")]
    InvalidWalletSecret,
    #[error(
        "The provider has no authorizationPrivateKey; includeAuthorizationSignature needs one."
    )]
    MissingAuthorizationKey,
    #[error("The provider's authorizationPrivateKey is not a base64 DER PKCS#8 P-256 private key.")]
    InvalidAuthorizationKey,
    #[error("The provider has no {0}.")]
    MissingSecret(&'static str),
    #[error("{0} is not valid JSON.")]
    BodyNotJson(&'static str),
    #[error(
        "{0} contains a number that is not an integer of magnitude at most 2^53; Purser canonicalizes only such numbers."
    )]
    UnsupportedNumber(&'static str),
}

/// A CDP request to authorize.
#[derive(Debug, Clone)]
pub struct CdpRequest<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    /// The request body (JSON text), for the wallet-auth JWT's `reqHash`.
    pub body: Option<&'a str>,
    pub wallet_auth: bool,
}

/// What CDP needs on the request.
pub struct CdpTokens {
    pub bearer_token: String,
    pub wallet_auth_token: Option<String>,
}

impl std::fmt::Debug for CdpTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CdpTokens(***)")
    }
}

/// A Privy request to authorize.
#[derive(Debug, Clone)]
pub struct PrivyRequest<'a> {
    pub host: &'a str,
    pub path: &'a str,
    pub body: &'a str,
    pub sign: bool,
}

/// What Privy needs on the request.
pub struct PrivyTokens {
    pub app_id: String,
    pub basic_auth_token: String,
    pub authorization_signature: Option<String>,
    pub request_expiry_ms: Option<i64>,
}

impl std::fmt::Debug for PrivyTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivyTokens")
            .field("app_id", &self.app_id)
            .field("request_expiry_ms", &self.request_expiry_ms)
            .finish_non_exhaustive()
    }
}

fn random_hex16() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex_lower(&b)
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

enum ApiKey {
    Ec(p256::ecdsa::SigningKey),
    Ed(ed25519_dalek::SigningKey),
}

fn parse_api_key(secret: &Secret) -> Result<ApiKey, VendorError> {
    use p256::pkcs8::DecodePrivateKey;
    let text = secret.expose().trim();
    if text.starts_with("-----BEGIN") {
        // Keys pasted from a JSON file may carry literal `\n` sequences.
        let pem = Zeroizing::new(text.replace("\\n", "\n"));
        let key = p256::SecretKey::from_pkcs8_pem(&pem)
            .or_else(|_| p256::SecretKey::from_sec1_pem(&pem))
            .map_err(|_| VendorError::InvalidApiKeySecret)?;
        return Ok(ApiKey::Ec(key.into()));
    }
    let raw = Zeroizing::new(
        B64.decode(text.as_bytes())
            .map_err(|_| VendorError::InvalidApiKeySecret)?,
    );
    if raw.len() != 64 {
        return Err(VendorError::InvalidApiKeySecret);
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&raw[..32]);
    Ok(ApiKey::Ed(ed25519_dalek::SigningKey::from_bytes(&seed)))
}

fn parse_p256_pkcs8_b64(text: &str) -> Option<p256::ecdsa::SigningKey> {
    use p256::pkcs8::DecodePrivateKey;
    let der = Zeroizing::new(B64.decode(text.trim().as_bytes()).ok()?);
    let key = p256::SecretKey::from_pkcs8_der(&der)
        .or_else(|_| p256::SecretKey::from_sec1_der(&der))
        .ok()?;
    Some(key.into())
}

fn es256(key: &p256::ecdsa::SigningKey, signing_input: &str) -> String {
    let sig: p256::ecdsa::Signature = key.sign(signing_input.as_bytes());
    B64URL.encode(sig.to_bytes())
}

fn jwt(header: &str, claims: &str, sign: impl FnOnce(&str) -> String) -> String {
    let input = format!(
        "{}.{}",
        B64URL.encode(header.as_bytes()),
        B64URL.encode(claims.as_bytes())
    );
    let sig = sign(&input);
    format!("{input}.{sig}")
}

/// The CDP API-key JWT (and the wallet-auth JWT when asked) for one request, issued at
/// `now` (unix seconds).
pub fn cdp_tokens(
    api_key_id: &str,
    api_key_secret: &Secret,
    wallet_secret: Option<&Secret>,
    req: &CdpRequest<'_>,
    now: i64,
) -> Result<CdpTokens, VendorError> {
    let uri = format!("{} {}{}", req.method, req.host, req.path);
    let uris = format!("[{}]", json_str(&uri));
    // The wallet-auth inputs are checked before anything is signed.
    let wallet = if req.wallet_auth {
        let secret = wallet_secret.ok_or(VendorError::MissingWalletSecret)?;
        let key = parse_p256_pkcs8_b64(secret.expose()).ok_or(VendorError::InvalidWalletSecret)?;
        let req_hash = match req.body {
            Some(body) => cdp_request_hash(body)?,
            None => None,
        };
        Some((key, req_hash))
    } else {
        None
    };
    let key = parse_api_key(api_key_secret)?;
    let alg = match key {
        ApiKey::Ec(_) => "ES256",
        ApiKey::Ed(_) => "EdDSA",
    };
    let header = format!(
        "{{\"alg\":\"{alg}\",\"kid\":{},\"typ\":\"JWT\",\"nonce\":\"{}\"}}",
        json_str(api_key_id),
        random_hex16()
    );
    let claims = format!(
        "{{\"sub\":{},\"iss\":\"cdp\",\"uris\":{uris},\"iat\":{now},\"nbf\":{now},\"exp\":{}}}",
        json_str(api_key_id),
        now + CDP_JWT_SECONDS
    );
    let bearer_token = jwt(&header, &claims, |input| match &key {
        ApiKey::Ec(k) => es256(k, input),
        ApiKey::Ed(k) => {
            use ed25519_dalek::Signer as _;
            B64URL.encode(k.sign(input.as_bytes()).to_bytes())
        }
    });
    let wallet_auth_token = wallet.map(|(key, req_hash)| {
        let hash = req_hash
            .map(|h| format!(",\"reqHash\":\"{h}\""))
            .unwrap_or_default();
        let claims = format!(
            "{{\"uris\":{uris}{hash},\"iat\":{now},\"nbf\":{now},\"jti\":\"{}\"}}",
            random_hex16()
        );
        jwt(r#"{"alg":"ES256","typ":"JWT"}"#, &claims, |input| {
            es256(&key, input)
        })
    });
    Ok(CdpTokens {
        bearer_token,
        wallet_auth_token,
    })
}

/// The wallet-auth JWT's `reqHash` for a request body: hex SHA-256 of
/// `JSON.stringify(sortKeys(body))`, or `None` when the SDK would leave it out (the body
/// is not a non-empty object or array).
pub fn cdp_request_hash(body: &str) -> Result<Option<String>, VendorError> {
    let value: Value =
        serde_json::from_str(body).map_err(|_| VendorError::BodyNotJson("requestBody"))?;
    let non_empty = match &value {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    };
    if !non_empty {
        return Ok(None);
    }
    let text = js_json(&value, KeyOrder::JsObject, "requestBody")?;
    Ok(Some(hex_lower(&Sha256::digest(text.as_bytes()))))
}

/// The Privy credentials for one request; `now_ms` is the current unix time in ms.
pub fn privy_tokens(
    app_id: &str,
    app_secret: &Secret,
    authorization_key: Option<&Secret>,
    req: &PrivyRequest<'_>,
    now_ms: i64,
) -> Result<PrivyTokens, VendorError> {
    let url = format!("https://{}{}", req.host, req.path);
    privy_request_tokens(
        app_id,
        app_secret,
        authorization_key,
        &url,
        req.body,
        req.sign,
        None,
        now_ms,
    )
}

/// The Privy credentials for a POST of `body` to the absolute `url` (the signature covers
/// the URL as called, scheme included, and the `privy-idempotency-key` header when sent).
#[allow(clippy::too_many_arguments)]
pub fn privy_request_tokens(
    app_id: &str,
    app_secret: &Secret,
    authorization_key: Option<&Secret>,
    url: &str,
    body: &str,
    sign: bool,
    idempotency_key: Option<&str>,
    now_ms: i64,
) -> Result<PrivyTokens, VendorError> {
    let basic = Zeroizing::new(format!("{app_id}:{}", app_secret.expose()));
    let basic_auth_token = B64.encode(basic.as_bytes());
    let (authorization_signature, request_expiry_ms) = if sign {
        let secret = authorization_key.ok_or(VendorError::MissingAuthorizationKey)?;
        let text = secret.expose().trim();
        let text = text
            .strip_prefix("wallet-auth:")
            .or_else(|| text.strip_prefix("wallet-api:"))
            .unwrap_or(text);
        let key = parse_p256_pkcs8_b64(text).ok_or(VendorError::InvalidAuthorizationKey)?;
        let expiry = now_ms + PRIVY_REQUEST_EXPIRY_MS;
        let payload = privy_signature_payload_with(app_id, url, body, expiry, idempotency_key)?;
        let sig: p256::ecdsa::Signature = key.sign(payload.as_bytes());
        let sig = sig.normalize_s().unwrap_or(sig);
        (Some(B64.encode(sig.to_der().as_bytes())), Some(expiry))
    } else {
        (None, None)
    };
    Ok(PrivyTokens {
        app_id: app_id.to_string(),
        basic_auth_token,
        authorization_signature,
        request_expiry_ms,
    })
}

/// The bytes Privy's authorization signature covers (its
/// `formatRequestForAuthorizationSignature`) for a POST of `body` to `url`.
pub fn privy_signature_payload(
    app_id: &str,
    url: &str,
    body: &str,
    expiry_ms: i64,
) -> Result<String, VendorError> {
    privy_signature_payload_with(app_id, url, body, expiry_ms, None)
}

/// [`privy_signature_payload`] of a request that also sends `privy-idempotency-key`.
pub fn privy_signature_payload_with(
    app_id: &str,
    url: &str,
    body: &str,
    expiry_ms: i64,
    idempotency_key: Option<&str>,
) -> Result<String, VendorError> {
    let mut body: Value =
        serde_json::from_str(body).map_err(|_| VendorError::BodyNotJson("requestBody"))?;
    if body.as_object().is_some_and(|m| m.is_empty()) {
        body = Value::String(String::new());
    }
    let mut input = serde_json::json!({
        "version": 1,
        "method": "POST",
        "url": url,
        "body": body,
        "headers": {
            "privy-app-id": app_id,
            "privy-request-expiry": expiry_ms.to_string(),
        },
    });
    if let Some(k) = idempotency_key {
        input["headers"]["privy-idempotency-key"] = Value::String(k.to_string());
    }
    canonical_json(&input, "requestBody")
}

/// RFC 8785 (JCS) canonical JSON of a value whose numbers are integers of magnitude at
/// most 2^53. `field` names the input in errors.
pub fn canonical_json(value: &Value, field: &'static str) -> Result<String, VendorError> {
    js_json(value, KeyOrder::CodeUnits, field)
}

/// How object keys are ordered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyOrder {
    /// By UTF-16 code units (RFC 8785; JavaScript's default `sort()`).
    CodeUnits,
    /// `JSON.stringify` of an object built by inserting keys in code-unit order: a
    /// JavaScript object lists its array-index keys ("0", "7", "42") first, in numeric
    /// order, then the others in insertion order (CDP's `sortKeys`).
    JsObject,
}

fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    if !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<u32>().ok().filter(|&n| n != u32::MAX)
}

fn key_cmp(order: KeyOrder, a: &str, b: &str) -> Ordering {
    if order == KeyOrder::JsObject {
        match (array_index(a), array_index(b)) {
            (Some(x), Some(y)) => return x.cmp(&y),
            (Some(_), None) => return Ordering::Less,
            (None, Some(_)) => return Ordering::Greater,
            (None, None) => {}
        }
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

const MAX_SAFE: f64 = 9_007_199_254_740_992.0; // 2^53

fn js_json(value: &Value, order: KeyOrder, field: &'static str) -> Result<String, VendorError> {
    let mut out = String::new();
    write_js(value, order, field, &mut out)?;
    Ok(out)
}

fn write_js(
    value: &Value,
    order: KeyOrder,
    field: &'static str,
    out: &mut String,
) -> Result<(), VendorError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let int = if let Some(i) = n.as_i64() {
                (i.unsigned_abs() <= 1 << 53).then_some(i)
            } else if n.as_u64().is_some() {
                None
            } else {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() <= MAX_SAFE)
                    .map(|f| f as i64)
            };
            let i = int.ok_or(VendorError::UnsupportedNumber(field))?;
            out.push_str(&i.to_string());
        }
        Value::String(s) => out.push_str(&json_str(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_js(item, order, field, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| key_cmp(order, a, b));
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json_str(k));
                out.push(':');
                write_js(&map[k.as_str()], order, field, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A linked account of an instrument, as the vendors identify their users.
#[derive(Clone, Copy)]
pub enum LinkedAccount<'a> {
    Email(&'a str),
    /// E.164.
    Phone(&'a str),
}

impl std::fmt::Debug for LinkedAccount<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the address or number itself
        f.write_str(match self {
            LinkedAccount::Email(_) => "Email(***)",
            LinkedAccount::Phone(_) => "Phone(***)",
        })
    }
}

/// The chain family of a vendor wallet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VendorChain {
    Evm,
    Solana,
}

/// A wallet held by a vendor: the vendor's user (CDP end user, Privy user), the wallet's
/// id at the vendor (CDP: its address; Privy: the wallet id) and its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorWallet {
    pub user_id: String,
    pub wallet_id: String,
    pub address: String,
}

/// `0x`-hex bytes.
pub(crate) fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    let t = text.strip_prefix("0x").unwrap_or(text);
    if !t.len().is_multiple_of(2) {
        return None;
    }
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A 65-byte secp256k1 signature `r || s || v` as vendors answer it (`0x`-hex; v as 27/28
/// or 0/1, normalised to 27/28).
pub(crate) fn secp256k1_signature(text: &str) -> Result<[u8; 65], api::ApiError> {
    let bytes = hex_bytes(text).ok_or(api::ApiError::Malformed("signature is not hex"))?;
    let mut sig: [u8; 65] = bytes
        .try_into()
        .map_err(|_| api::ApiError::Malformed("signature is not 65 bytes"))?;
    if sig[64] < 27 {
        sig[64] += 27;
    }
    Ok(sig)
}

pub mod api;
pub mod cdp;
pub mod privy;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod tests;
