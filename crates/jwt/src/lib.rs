//! CUSTOM_JWT bearer tokens (B30, B33): verify a token against a payment manager's
//! `customJWTAuthorizer` and name its payment user (`sub`).
//!
//! - [`keys`]: OpenID / OAuth discovery and the JWKS, cached per discovery URL.
//! - [`policy`]: the claim checks (exp/nbf with [`Settings::leeway_secs`], iss, aud,
//!   client_id/azp, scope/scp, custom claims).
//!
//! Nothing here knows the AWS wire format; the server translates the manager's
//! configuration into a [`Policy`]. A [`Denied`] message says which check failed and
//! never contains the token or a claim value taken from it. Nothing here panics on input.
pub mod keys;
pub mod policy;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

pub use policy::{ClaimOperator, ClaimRule, ClaimType, MatchValue, Policy};

/// The longest bearer token accepted (bytes).
pub const MAX_TOKEN: usize = 16 * 1024;

/// Operator settings of token verification.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Fetch discovery documents and JWKS over plain http from any host (not only
    /// loopback).
    pub allow_http: bool,
    /// At most one refresh of an issuer's keys (on an unknown kid, or after a failure)
    /// per this interval.
    pub min_refresh: Duration,
    /// How long fetched keys are used without refetching (an issuer's
    /// `Cache-Control: max-age` may shorten it, down to `min_ttl`).
    pub ttl: Duration,
    pub min_ttl: Duration,
    /// How long past their TTL cached keys still serve while the issuer is unreachable.
    pub max_stale: Duration,
    /// Per HTTP request.
    pub http_timeout: Duration,
    /// Retries of a failed HTTP request (connection errors, 5xx, 429).
    pub http_retries: u32,
    /// Most issuers (discovery URLs) cached; the least recently used is dropped.
    pub max_issuers: usize,
    /// Clock skew allowed on `exp` and `nbf` (seconds).
    pub leeway_secs: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            allow_http: false,
            min_refresh: Duration::from_secs(30),
            ttl: Duration::from_secs(600),
            min_ttl: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 3600),
            http_timeout: Duration::from_secs(5),
            http_retries: 1,
            max_issuers: 1024,
            leeway_secs: 60,
        }
    }
}

/// A refused token: the message says why (safe to return to the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied(String);

impl Denied {
    pub fn new(m: impl Into<String>) -> Self {
        Denied(m.into())
    }
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The JOSE name of an algorithm.
pub fn alg_name(alg: Algorithm) -> &'static str {
    use Algorithm::*;
    match alg {
        HS256 => "HS256",
        HS384 => "HS384",
        HS512 => "HS512",
        ES256 => "ES256",
        ES384 => "ES384",
        RS256 => "RS256",
        RS384 => "RS384",
        RS512 => "RS512",
        PS256 => "PS256",
        PS384 => "PS384",
        PS512 => "PS512",
        EdDSA => "EdDSA",
        _ => "unsupported",
    }
}

/// The asymmetric algorithms accepted.
fn accepted_alg(name: &str) -> Result<Algorithm, Denied> {
    use Algorithm::*;
    Ok(match name {
        "RS256" => RS256,
        "RS384" => RS384,
        "RS512" => RS512,
        "PS256" => PS256,
        "PS384" => PS384,
        "PS512" => PS512,
        "ES256" => ES256,
        "ES384" => ES384,
        "EdDSA" => EdDSA,
        n if n.eq_ignore_ascii_case("none") => {
            return Err(Denied::new(
                "Unsigned bearer tokens (alg none) are not accepted.",
            ));
        }
        "HS256" | "HS384" | "HS512" => {
            return Err(Denied::new(
                "HMAC-signed bearer tokens are not accepted; the issuer must sign with a key of its JWKS.",
            ));
        }
        _ => {
            return Err(Denied::new(
                "The bearer token's algorithm (alg) is not supported (RS256/384/512, PS256/384/512, ES256, ES384, EdDSA).",
            ));
        }
    })
}

/// A verified token: its subject is the payment user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub subject: String,
}

/// Verifies bearer tokens; one per process, shared by all requests.
pub struct Verifier {
    cache: keys::KeyCache,
    leeway: i64,
}

impl Verifier {
    pub fn new(settings: Settings) -> Result<Self, String> {
        let fetch = Arc::new(keys::HttpFetch::new(&settings)?);
        Ok(Self::with_fetch(fetch, settings))
    }

    pub fn with_fetch(fetch: Arc<dyn keys::Fetch>, settings: Settings) -> Self {
        Verifier {
            leeway: settings.leeway_secs,
            cache: keys::KeyCache::new(fetch, settings),
        }
    }

    /// Verify `token` for a manager with this policy (signature by a key of the issuer's
    /// JWKS, then the claims), at the real time.
    pub async fn verify(&self, token: &str, policy: &Policy) -> Result<Verified, Denied> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.verify_at(token, policy, Instant::now(), now).await
    }

    pub async fn verify_at(
        &self,
        token: &str,
        policy: &Policy,
        instant: Instant,
        now: i64,
    ) -> Result<Verified, Denied> {
        let TokenHeader { alg, kid } = parse_header(token)?;
        let kid = kid.as_deref();
        let found = self
            .cache
            .candidates(&policy.discovery_url, kid, alg, instant)
            .await?;
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let mut claims = None;
        for key in &found.keys {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind as K;
                    if matches!(
                        e.kind(),
                        K::Json(_) | K::Utf8(_) | K::Base64(_) | K::InvalidToken
                    ) {
                        return Err(malformed_token());
                    }
                    // Anything else (a bad signature, a key the backend refuses): try the
                    // next candidate.
                }
            }
        }
        let Some(claims) = claims else {
            return Err(Denied::new(
                "The bearer token's signature does not verify with the issuer's key.",
            ));
        };
        let subject = policy::check_claims(&claims, &found.issuer, policy, now, self.leeway)?;
        Ok(Verified { subject })
    }
}

/// What the token's JOSE header says: an accepted algorithm and the key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHeader {
    pub alg: Algorithm,
    pub kid: Option<String>,
}

fn malformed_token() -> Denied {
    Denied::new("The bearer token is not a well-formed JWT (JWS compact form).")
}

/// Check the token's form (three base64url parts, at most [`MAX_TOKEN`] bytes) and read
/// its header: `alg` must be an accepted asymmetric algorithm (not `none`, not HMAC), no
/// `crit`, `kid` a string when present, a non-empty signature part.
pub fn parse_header(token: &str) -> Result<TokenHeader, Denied> {
    let malformed = malformed_token;
    if token.len() > MAX_TOKEN {
        return Err(Denied::new(format!(
            "The bearer token is longer than {MAX_TOKEN} bytes."
        )));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3
        || parts[0].is_empty()
        || parts[1].is_empty()
        || !parts.iter().all(|p| p.bytes().all(is_b64url))
    {
        return Err(malformed());
    }
    let header: Map<String, Value> = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[0])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(malformed)?;
    let alg_text = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(malformed)?;
    let alg = accepted_alg(alg_text)?;
    if parts[2].is_empty() {
        return Err(Denied::new("The bearer token has no signature."));
    }
    if header.contains_key("crit") {
        return Err(Denied::new(
            "The bearer token's header has critical extensions (crit), which are not supported.",
        ));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(malformed()),
    };
    Ok(TokenHeader { alg, kid })
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests;
