//! **Purser's vendor emulator — a development tool, not a vendor.**
//!
//! A local implementation of the subset of the Coinbase CDP v2 Wallet API and of the Privy
//! API that Purser's CoinbaseCDP and StripePrivy connectors use, with the vendors' real
//! authentication checks (CDP bearer and wallet-auth JWTs; Privy basic auth and
//! authorization signatures). It holds its wallets' keys itself and signs as the vendor
//! would (EIP-712 digests, EIP-1559 transactions, Solana transactions).
//!
//! One listener serves both vendors, told apart by path: CDP under `/platform/v2/...`
//! (base URL `http://HOST:PORT/platform`), Privy under `/v1/...` (base URL
//! `http://HOST:PORT`), and the emulator's own development endpoints under `/_emulator/`
//! (grant or revoke an end user's delegation, deny a wallet's requests by policy, inject
//! faults). The contract with Purser's clients, endpoint by endpoint, is `API.md` beside
//! this crate's Cargo.toml.
//!
//! State: a directory holding `accounts.json` (the emulated vendor accounts' secrets,
//! mode 0600, generated on first start), `vendor-emulator.db` (SQLite: end users, users,
//! wallets with their keys sealed under `emulator.key`, idempotency records). It shares
//! nothing with Purser's own database or vault.
pub mod accounts;
pub mod auth;
mod cdp;
mod dev;
pub mod eip712;
pub mod error;
pub mod evm;
mod privy;
pub mod solana;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use accounts::{ACCOUNTS_FILE, Accounts};
use error::{ApiError, Vendor};

/// Said at start and in `--help`.
pub const BANNER: &str = "Purser vendor emulator: a DEVELOPMENT TOOL emulating the Coinbase CDP and Privy wallet APIs locally; it is not Coinbase or Privy and holds no real funds";

/// A running emulator's shared state.
pub struct Emulator {
    dir: PathBuf,
    accounts: Accounts,
    store: store::Store,
    jtis: auth::JtiCache,
    faults: Mutex<Vec<dev::Fault>>,
    /// Serialises requests that carry an idempotency key, so the same key never acts twice.
    idempotent: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Opens (creating when needed) the emulator's state in `dir`. Answers whether fresh
    /// accounts were generated (their secrets are in `dir/accounts.json`).
    pub fn open(dir: &Path) -> Result<(Arc<Emulator>, bool), String> {
        // Private: it holds the emulated accounts' secrets and the users' linked accounts.
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let (accounts, created) = accounts::load_or_create(dir).map_err(|e| e.to_string())?;
        let store = store::Store::open(dir)?;
        Ok((
            Arc::new(Emulator {
                dir: dir.to_path_buf(),
                accounts,
                store,
                jtis: auth::JtiCache::default(),
                faults: Mutex::new(Vec::new()),
                idempotent: tokio::sync::Mutex::new(()),
            }),
            created,
        ))
    }

    pub fn accounts_path(&self) -> PathBuf {
        self.dir.join(ACCOUNTS_FILE)
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The axum app.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        dev::routes().fallback(dispatch).with_state(self.clone())
    }
}

/// A running listener.
pub struct Running {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// CDP base URL (as `basePath` of `@coinbase/cdp-sdk`).
    pub fn cdp_base_url(&self) -> String {
        format!("http://{}/platform", self.addr)
    }
    /// Privy base URL (as `baseURL` of `@privy-io/node`).
    pub fn privy_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The file in the emulator's directory naming its root URL (`http://127.0.0.1:PORT`),
/// rewritten at every start, for tools and tests.
pub const URL_FILE: &str = "url";

/// Serves `emu` on `listener` in a background task (and writes its URL to `dir/url`).
pub fn spawn(emu: &Arc<Emulator>, listener: tokio::net::TcpListener) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    std::fs::write(emu.dir.join(URL_FILE), format!("http://{addr}\n"))?;
    let app = emu.router();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "vendor emulator stopped");
        }
    });
    Ok(Running { addr, task })
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One vendor request as received.
pub(crate) struct Req {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn host(&self) -> &str {
        self.header("host").unwrap_or("")
    }
    pub fn path(&self) -> &str {
        self.uri.path()
    }
    pub fn line(&self) -> auth::RequestLine<'_> {
        auth::RequestLine {
            method: self.method.as_str(),
            host: self.host(),
            path: self.path(),
            body: &self.body,
        }
    }
    /// The body as a JSON value (`{}` when empty).
    pub fn json(&self) -> Result<serde_json::Value, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        serde_json::from_slice(&self.body).map_err(|_| {
            ApiError::bad_request("invalid_request", "The request body is not valid JSON.")
        })
    }
    /// Query parameters, decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        self.uri
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
    /// The fingerprint of an idempotent request.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.method.as_str());
        h.update([0]);
        h.update(self.path());
        h.update([0]);
        h.update(&self.body);
        hex::encode(h.finalize())
    }
}

/// A JSON reply.
pub(crate) type Reply = Result<(StatusCode, serde_json::Value), ApiError>;

async fn dispatch(
    State(emu): State<Arc<Emulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = Req {
        method,
        uri,
        headers,
        body,
    };
    let path = req.path().to_string();
    let vendor = if path.starts_with("/platform/") {
        Vendor::Cdp
    } else if path.starts_with("/v1/") {
        Vendor::Privy
    } else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "not a CDP (/platform/...) or Privy (/v1/...) path of the vendor emulator"})),
        )
            .into_response();
    };
    if let Some(fault) = dev::take_fault(&emu, vendor, &path) {
        match fault {
            dev::FaultAction::Fail(e) => {
                tracing::info!(vendor = ?vendor, method = %req.method, path = %path, status = e.status.as_u16(), "vendor emulator: injected fault");
                return e.into_vendor_response(vendor);
            }
            dev::FaultAction::Delay(d) => tokio::time::sleep(d).await,
        }
    }
    let result = match vendor {
        Vendor::Cdp => cdp::handle(&emu, &req).await,
        Vendor::Privy => privy::handle(&emu, &req).await,
    };
    let response = match result {
        Ok((status, body)) if status == StatusCode::NO_CONTENT => {
            let _ = body;
            status.into_response()
        }
        Ok((status, body)) => (status, axum::Json(body)).into_response(),
        Err(e) => e.into_vendor_response(vendor),
    };
    // Method, path and status only: never headers, bodies or query strings (which may name
    // an email or a phone number).
    tracing::info!(vendor = ?vendor, method = %req.method, path = %path, status = response.status().as_u16(), "vendor emulator");
    response
}

/// Runs `f` once per idempotency key: a replay answers the stored reply, a key reused for
/// another request answers `conflict`.
pub(crate) async fn idempotent<F, Fut>(
    emu: &Emulator,
    scope: &str,
    key: Option<&str>,
    req: &Req,
    conflict: ApiError,
    f: F,
) -> Reply
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return f().await;
    };
    let _guard = emu.idempotent.lock().await;
    let fingerprint = req.fingerprint();
    let now = now_secs();
    if let Some(replay) = emu
        .store
        .tx(|tx| store::idempotent_lookup(tx, scope, key, &fingerprint, now, conflict))?
    {
        return Ok((
            StatusCode::from_u16(replay.status).unwrap_or(StatusCode::OK),
            replay.body,
        ));
    }
    let (status, body) = f().await?;
    emu.store.tx(|tx| {
        store::idempotent_record(tx, scope, key, &fingerprint, status.as_u16(), &body, now)
    })?;
    Ok((status, body))
}
