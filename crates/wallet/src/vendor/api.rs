//! The one HTTP client of the vendor wallet APIs (Coinbase CDP, Privy): timeouts, bounded
//! retries with backoff for idempotent calls, a response size cap, the https-or-loopback
//! rule, and the vendors' answers classified into [`ApiError`]s that carry no secret, no
//! token and no linked-account detail (vendor error messages are never passed on: they
//! may echo the request).
//!
//! Nothing here may run inside a database transaction: the callers (instruments,
//! ProcessPayment) call the vendors before the ledger, never inside it.
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use super::VendorError;

/// Largest vendor answer read (a signed transaction or a user with its wallets is a few KB).
const MAX_BODY: usize = 256 * 1024;

/// Why a vendor call failed. Messages name the vendor and what went wrong, never a value
/// from the request or a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The provider's secrets cannot make the vendor's credentials.
    #[error(transparent)]
    Credential(#[from] VendorError),
    /// The vendor refused the credentials (401, or a CDP `unauthorized`/`invalid_signature`).
    #[error("the vendor refused the credentials")]
    CredentialsInvalid,
    /// The end user has not granted (or revoked, or let expire) delegated signing.
    #[error("delegated signing is not active for the end user")]
    DelegationNotActive,
    /// The vendor project does not allow delegated signing at all.
    #[error("delegated signing is not enabled for the vendor project")]
    DelegationNotEnabled,
    /// A vendor-side wallet policy refused to sign.
    #[error("a wallet policy denied the request")]
    PolicyDenied,
    /// 429 (after the retries allowed).
    #[error("rate limited by the vendor")]
    RateLimited,
    /// 5xx, a timeout or a connection failure (after the retries allowed).
    #[error("the vendor is unavailable ({0})")]
    Unavailable(&'static str),
    /// 404 / `not_found`.
    #[error("not found at the vendor")]
    NotFound,
    /// 409 / `already_exists`.
    #[error("already exists at the vendor")]
    AlreadyExists,
    /// Any other refusal: the HTTP status and the vendor's error code (never its message).
    #[error("the vendor refused the request (HTTP {status}, {code})")]
    Refused { status: u16, code: String },
    /// An answer Purser cannot read.
    #[error("the vendor's answer could not be read ({0})")]
    Malformed(&'static str),
}

impl ApiError {
    /// Worth another attempt (for an idempotent call).
    fn transient(&self) -> bool {
        matches!(self, ApiError::RateLimited | ApiError::Unavailable(_))
    }
}

/// Connection and retry settings of the vendor client.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// The whole exchange of one attempt.
    pub timeout: Duration,
    /// Attempts of an idempotent call (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubled after each attempt.
    pub backoff: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

/// A vendor's base URL: `https://host[:port][/prefix]`, or `http://` on a loopback host
/// (the vendor emulator, tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl(Url);

impl BaseUrl {
    pub fn parse(text: &str) -> Result<BaseUrl, String> {
        let url =
            Url::parse(text.trim_end_matches('/')).map_err(|_| format!("'{text}' is not a URL"))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(format!(
                    "'{text}' must be an https URL (http only on a loopback address)"
                ));
            }
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(format!("'{text}' must not carry a query, fragment or user"));
        }
        Ok(BaseUrl(url))
    }

    /// `host[:port]` as a vendor's signature covers it.
    pub fn authority(&self) -> String {
        match self.0.port() {
            Some(p) => format!("{}:{p}", self.0.host_str().unwrap_or_default()),
            None => self.0.host_str().unwrap_or_default().to_string(),
        }
    }

    /// The full path of `path` under this base (its prefix included), e.g.
    /// `/platform/v2/end-users`.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.0.path().trim_end_matches('/'))
    }

    /// The absolute URL of `path` under this base.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}://{}{}",
            self.0.scheme(),
            self.authority(),
            self.path(path)
        )
    }
}

/// One request, rebuilt for every attempt (credentials are minted per attempt: CDP JWTs
/// carry a nonce and a two-minute lifetime).
pub(crate) struct Call {
    pub method: Method,
    pub url: String,
    pub query: Vec<(&'static str, String)>,
    pub headers: HeaderMap,
    pub body: Option<String>,
}

/// The shared HTTP client of the vendor APIs.
#[derive(Clone, Debug)]
pub struct VendorHttp {
    client: reqwest::Client,
    settings: HttpSettings,
}

impl VendorHttp {
    pub fn new(settings: HttpSettings) -> VendorHttp {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .build()
            .expect("a TLS backend is compiled in");
        VendorHttp { client, settings }
    }

    /// Send a call; `idempotent` calls (GETs, POSTs with an idempotency key or with no
    /// effect at the vendor beyond a signature) are retried on 429, 5xx and timeouts.
    /// `classify` turns a vendor's error answer into an [`ApiError`].
    pub(crate) async fn send(
        &self,
        idempotent: bool,
        mut build: impl FnMut() -> Result<Call, ApiError>,
        classify: fn(StatusCode, &Value) -> ApiError,
    ) -> Result<Value, ApiError> {
        let attempts = if idempotent {
            self.settings.attempts.max(1)
        } else {
            1
        };
        let mut backoff = self.settings.backoff;
        let mut attempt = 1;
        loop {
            let result = self.once(build()?, classify).await;
            match result {
                Err(e) if e.transient() && attempt < attempts => {
                    tracing::debug!(target: "purser::vendor", error = %e, attempt, "retrying a vendor call");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn once(
        &self,
        call: Call,
        classify: fn(StatusCode, &Value) -> ApiError,
    ) -> Result<Value, ApiError> {
        let mut req = self
            .client
            .request(call.method, &call.url)
            .headers(call.headers)
            .header(ACCEPT, "application/json");
        if !call.query.is_empty() {
            req = req.query(&call.query);
        }
        if let Some(body) = call.body {
            req = req.header(CONTENT_TYPE, "application/json").body(body);
        }
        let exchange = async {
            let mut response = req.send().await.map_err(transport)?;
            let status = response.status();
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport)? {
                if bytes.len() + chunk.len() > MAX_BODY {
                    return Err(ApiError::Malformed("answer too large"));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok((status, bytes))
        };
        // reqwest's timeout covers the exchange too; this one also bounds a slow body.
        let (status, bytes) = tokio::time::timeout(self.settings.timeout, exchange)
            .await
            .map_err(|_| ApiError::Unavailable("timed out"))??;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(_) if !status.is_success() => Value::Null,
                Err(_) => return Err(ApiError::Malformed("not JSON")),
            }
        };
        if status.is_success() {
            Ok(value)
        } else {
            Err(classify(status, &value))
        }
    }
}

fn transport(e: reqwest::Error) -> ApiError {
    if e.is_timeout() {
        ApiError::Unavailable("timed out")
    } else {
        ApiError::Unavailable("connection failed")
    }
}

/// The classification every vendor shares, by HTTP status alone.
pub(crate) fn by_status(status: StatusCode, code: &str) -> ApiError {
    match status.as_u16() {
        401 => ApiError::CredentialsInvalid,
        404 => ApiError::NotFound,
        409 => ApiError::AlreadyExists,
        429 => ApiError::RateLimited,
        500..=599 => ApiError::Unavailable("server error"),
        s => ApiError::Refused {
            status: s,
            code: code.to_string(),
        },
    }
}

/// A fresh idempotency key (a random UUID v4), the same for every attempt of one call.
pub(crate) fn idempotency_key() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A string member of a JSON answer.
pub(crate) fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}
