//! Issuers' signing keys: OpenID / OAuth discovery, then the JWKS, cached per discovery
//! URL (bounded, with a TTL), refreshed on an unknown `kid` at most once per
//! `min_refresh` per issuer, and served stale (up to `max_stale`) while the issuer is
//! unreachable. HTTP goes through [`HttpFetch`] (timeouts, bounded retries, a size cap, no
//! redirects, https only except loopback); no caller holds a database transaction here.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::{Denied, Settings};

/// Largest discovery document or JWKS read (bytes).
pub const MAX_DOCUMENT: usize = 256 * 1024;
/// Most keys kept from one JWKS.
pub const MAX_KEYS: usize = 64;

/// Reads a JSON document over HTTP: the document and the `max-age` it may be cached for.
#[async_trait::async_trait]
pub trait Fetch: Send + Sync {
    async fn get_json(&self, url: &str) -> Result<(Value, Option<Duration>), String>;
}

/// Whether `url` may be fetched: https, or http to a loopback host (127.0.0.0/8, ::1,
/// localhost), or any http when the operator allows it.
pub fn check_url(url: &str, allow_http: bool) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(url).map_err(|_| "is not a valid URL".to_string())?;
    match u.scheme() {
        "https" => Ok(u),
        "http" if allow_http => Ok(u),
        "http" => {
            let host = u.host_str().unwrap_or("");
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(u)
            } else {
                Err("uses http to a host that is not loopback (PURSER_JWT_ALLOW_HTTP=true allows it)".into())
            }
        }
        _ => Err("is not an https URL".into()),
    }
}

/// The HTTP client of discovery and JWKS fetches.
pub struct HttpFetch {
    client: reqwest::Client,
    allow_http: bool,
    retries: u32,
}

impl HttpFetch {
    pub fn new(settings: &Settings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.http_timeout)
            .connect_timeout(settings.http_timeout.min(Duration::from_secs(3)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("purser/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the JWKS HTTP client: {e}"))?;
        Ok(HttpFetch {
            client,
            allow_http: settings.allow_http,
            retries: settings.http_retries,
        })
    }

    async fn once(&self, url: &reqwest::Url) -> Result<(Value, Option<Duration>), (bool, String)> {
        let mut resp = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| (true, format!("request failed: {}", without_url(e))))?;
        let status = resp.status();
        if !status.is_success() {
            let retry = status.is_server_error() || status.as_u16() == 429;
            return Err((retry, format!("answered HTTP {}", status.as_u16())));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT as u64)
        {
            return Err((false, format!("document larger than {MAX_DOCUMENT} bytes")));
        }
        let max_age = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| (true, format!("reading failed: {}", without_url(e))))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err((false, format!("document larger than {MAX_DOCUMENT} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let doc = serde_json::from_slice(&body).map_err(|_| (false, "is not JSON".to_string()))?;
        Ok((doc, max_age))
    }
}

fn without_url(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

/// `max-age=N` of a Cache-Control header (`no-store`/`no-cache` count as 0).
pub(crate) fn max_age(v: &str) -> Option<Duration> {
    for part in v.split(',').map(str::trim) {
        if part.eq_ignore_ascii_case("no-store") || part.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if let Some(n) = part.strip_prefix("max-age=") {
            return n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    None
}

#[async_trait::async_trait]
impl Fetch for HttpFetch {
    async fn get_json(&self, url: &str) -> Result<(Value, Option<Duration>), String> {
        let u = check_url(url, self.allow_http)?;
        let mut attempt = 0;
        loop {
            let result = self.once(&u).await;
            purser_metrics::JWKS_FETCHES
                .inc(&[("result", if result.is_ok() { "ok" } else { "error" })]);
            match result {
                Ok(x) => return Ok(x),
                Err((retry, e)) => {
                    if !retry || attempt >= self.retries {
                        return Err(e);
                    }
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
            }
        }
    }
}

/// The kind of a JWK, which decides the algorithms it may verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    pub fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        matches!(
            (self, alg),
            (KeyKind::Rsa, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
                | (KeyKind::P256, ES256)
                | (KeyKind::P384, ES384)
                | (KeyKind::Ed25519, EdDSA)
        )
    }
}

/// One signing key of an issuer.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    /// The JWK's `alg`, when it names one: the token's alg must then be the same.
    pub alg: Option<String>,
    pub kind: KeyKind,
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Key {
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.kind.fits(alg)
            && self
                .alg
                .as_deref()
                .is_none_or(|a| a == crate::alg_name(alg))
    }
}

/// The usable signing keys of a JWKS document (others are skipped: encryption keys,
/// symmetric keys, unknown types, malformed entries).
pub fn parse_jwks(doc: &Value) -> Result<Vec<Key>, String> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no \"keys\" array")?;
    let s = |k: &Value, name: &str| k.get(name).and_then(Value::as_str).map(str::to_string);
    let mut out = Vec::new();
    for k in keys.iter().take(MAX_KEYS * 4) {
        if s(k, "use").is_some_and(|u| u != "sig") {
            continue;
        }
        // Component sizes are checked here: the verifiers behind `jsonwebtoken` assume
        // well-sized keys (a short Ed25519 key made one panic).
        let bytes =
            |name: &str| s(k, name).and_then(|v| B64URL.decode(v.trim_end_matches('=')).ok());
        let parsed = match (s(k, "kty").as_deref(), s(k, "crv").as_deref()) {
            (Some("RSA"), _) => match (bytes("n"), bytes("e")) {
                (Some(n), Some(e)) if rsa_sizes_ok(&n, &e) => {
                    Some((KeyKind::Rsa, DecodingKey::from_rsa_raw_components(&n, &e)))
                }
                _ => None,
            },
            (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => {
                let (kind, len) = if crv == "P-256" {
                    (KeyKind::P256, 32)
                } else {
                    (KeyKind::P384, 48)
                };
                match (s(k, "x"), s(k, "y"), bytes("x"), bytes("y")) {
                    (Some(x), Some(y), Some(xb), Some(yb))
                        if xb.len() == len && yb.len() == len =>
                    {
                        DecodingKey::from_ec_components(&x, &y)
                            .ok()
                            .map(|d| (kind, d))
                    }
                    _ => None,
                }
            }
            (Some("OKP"), Some("Ed25519")) => match (s(k, "x"), bytes("x")) {
                (Some(x), Some(xb)) if xb.len() == 32 => DecodingKey::from_ed_components(&x)
                    .ok()
                    .map(|d| (KeyKind::Ed25519, d)),
                _ => None,
            },
            _ => None,
        };
        if let Some((kind, decoding)) = parsed {
            out.push(Key {
                kid: s(k, "kid"),
                alg: s(k, "alg"),
                kind,
                decoding,
            });
            if out.len() == MAX_KEYS {
                break;
            }
        }
    }
    Ok(out)
}

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// RSA keys of 2048 to 4096 bits with a small odd exponent.
fn rsa_sizes_ok(n: &[u8], e: &[u8]) -> bool {
    let n = &n[n.iter().take_while(|b| **b == 0).count()..];
    let e = &e[e.iter().take_while(|b| **b == 0).count()..];
    let bits = n
        .first()
        .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
    (2048..=4096).contains(&bits) && !e.is_empty() && e.len() <= 4 && e[e.len() - 1] & 1 == 1
}

/// What is known of one issuer (per discovery URL).
#[derive(Clone, Debug)]
pub struct IssuerKeys {
    pub issuer: String,
    pub keys: Arc<Vec<Key>>,
    pub fetched_at: Instant,
    pub ttl: Duration,
}

#[derive(Default)]
struct Slot {
    current: Option<IssuerKeys>,
    last_attempt: Option<Instant>,
}

type SharedSlot = Arc<tokio::sync::Mutex<Slot>>;

/// The keys a token may be verified with: the issuer, and the candidate keys.
#[derive(Debug)]
pub struct Candidates {
    pub issuer: String,
    pub keys: Vec<Key>,
}

/// The cache of issuers' keys.
pub struct KeyCache {
    fetch: Arc<dyn Fetch>,
    settings: Settings,
    /// Per discovery URL: its slot (locked while it is fetched) and when it was last used.
    slots: Mutex<HashMap<String, (SharedSlot, Instant)>>,
}

impl KeyCache {
    pub fn new(fetch: Arc<dyn Fetch>, settings: Settings) -> Self {
        KeyCache {
            fetch,
            settings,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Number of discovery URLs cached.
    pub fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, url: &str, now: Instant) -> SharedSlot {
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if let Some((slot, used)) = slots.get_mut(url) {
            *used = now;
            return slot.clone();
        }
        if slots.len() >= self.settings.max_issuers {
            // Evict the least recently used issuer.
            if let Some(oldest) = slots
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            {
                slots.remove(&oldest);
            }
        }
        let slot: SharedSlot = Arc::new(tokio::sync::Mutex::new(Slot::default()));
        slots.insert(url.to_string(), (slot.clone(), now));
        slot
    }

    /// The issuer of `discovery_url` and its keys that may have signed a token with this
    /// `kid` and `alg`, fetching or refreshing them as the rules above allow.
    pub async fn candidates(
        &self,
        discovery_url: &str,
        kid: Option<&str>,
        alg: Algorithm,
        now: Instant,
    ) -> Result<Candidates, Denied> {
        let slot = self.slot(discovery_url, now);
        // One fetch per issuer at a time: concurrent requests wait for it.
        let mut s = slot.lock().await;
        let fresh = s
            .current
            .as_ref()
            .is_some_and(|c| now < c.fetched_at + c.ttl);
        let may_refresh = s
            .last_attempt
            .is_none_or(|t| now >= t + self.settings.min_refresh);
        if fresh || !may_refresh {
            if let Some(c) = usable(&s.current, now, self.settings.max_stale) {
                match pick(c, kid, alg) {
                    Ok(found) => return Ok(found),
                    // An unknown kid may be a rotation: refresh unless rate-limited.
                    Err(e) if !may_refresh || has_kid(c, kid) => return Err(e),
                    Err(_) => {}
                }
            } else if !may_refresh {
                return Err(unreachable());
            }
        }
        let refreshed = self.refresh(discovery_url, now).await;
        // Recorded once the attempt has finished: a request dropped mid-fetch (its client
        // went away) does not stop the next one from trying.
        s.last_attempt = Some(now);
        match refreshed {
            Ok(k) => s.current = Some(k),
            Err(e) => {
                tracing::warn!(discovery_url, error = %e, "fetching an issuer's signing keys failed");
            }
        }
        match usable(&s.current, now, self.settings.max_stale) {
            Some(c) => pick(c, kid, alg),
            None => Err(unreachable()),
        }
    }

    async fn refresh(&self, discovery_url: &str, now: Instant) -> Result<IssuerKeys, String> {
        let (doc, _) = self
            .fetch
            .get_json(discovery_url)
            .await
            .map_err(|e| format!("discovery document: {e}"))?;
        let issuer = doc
            .get("issuer")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or("the discovery document has no issuer")?
            .to_string();
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("the discovery document has no jwks_uri")?
            .to_string();
        let (jwks, max_age) = self
            .fetch
            .get_json(&jwks_uri)
            .await
            .map_err(|e| format!("JWKS: {e}"))?;
        let keys = parse_jwks(&jwks)?;
        let ttl = max_age
            .unwrap_or(self.settings.ttl)
            .clamp(self.settings.min_ttl, self.settings.ttl);
        Ok(IssuerKeys {
            issuer,
            keys: Arc::new(keys),
            fetched_at: now,
            ttl,
        })
    }
}

fn unreachable() -> Denied {
    Denied::new("The signing keys of the payment manager's token issuer could not be fetched.")
}

/// The cached keys if they are within their TTL plus the stale allowance.
fn usable(c: &Option<IssuerKeys>, now: Instant, max_stale: Duration) -> Option<&IssuerKeys> {
    c.as_ref()
        .filter(|c| now < c.fetched_at + c.ttl + max_stale)
}

fn has_kid(c: &IssuerKeys, kid: Option<&str>) -> bool {
    kid.is_some_and(|kid| c.keys.iter().any(|k| k.kid.as_deref() == Some(kid)))
}

/// Keys with the token's kid (all keys when it names none) that fit its alg.
fn pick(c: &IssuerKeys, kid: Option<&str>, alg: Algorithm) -> Result<Candidates, Denied> {
    let by_kid: Vec<&Key> = c
        .keys
        .iter()
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .collect();
    let any_kid = !by_kid.is_empty();
    let keys: Vec<Key> = by_kid
        .into_iter()
        .filter(|k| k.fits(alg))
        .cloned()
        .collect();
    if !keys.is_empty() {
        return Ok(Candidates {
            issuer: c.issuer.clone(),
            keys,
        });
    }
    Err(Denied::new(match (kid, any_kid) {
        (Some(_), true) => "The bearer token's algorithm (alg) does not match its signing key.",
        (Some(_), false) => "The bearer token's signing key (kid) is not among the issuer's keys.",
        (None, _) => "None of the issuer's keys fits the bearer token's algorithm (alg).",
    }))
}
