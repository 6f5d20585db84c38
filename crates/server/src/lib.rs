//! The HTTP face of Purser: one axum app serving both AgentCore Payments planes on one port.
//!
//! Every request goes through one pipeline ([`pipeline`]): size limit -> route by (method,
//! path template) from the model -> SigV4, or a bearer token on the data plane ([`bearer`])
//! -> decode and validate the input against the
//! model -> the domain call -> encode the output or the AWS error. Handlers in
//! [`control`] only translate between the generated wire types of `purser-model` and the
//! domain types of `purser-core`.

mod auth;
mod bearer;
pub mod console;
mod control;
mod data;
mod errors;
mod ext;
mod identity;
mod ops;
mod pipeline;

use std::collections::HashMap;
use std::sync::Arc;

use purser_core::control::ControlPlane;
use purser_core::instruments::DataPlane;
use purser_wallet::Secret;

pub use ops::metrics_router;
pub use pipeline::MAX_BODY;
pub use purser_jwt::Settings as JwtSettings;

/// An access key that may call Purser, and the account it acts for.
#[derive(Clone, Debug)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub account_id: String,
}

/// Shared state of the app.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
    /// Bearer-token verification (CUSTOM_JWT managers) with its cache of issuers' keys.
    jwt: Arc<purser_jwt::Verifier>,
    /// The last readiness answer (see `ops::ready`).
    ready: Arc<ops::ReadyCache>,
    /// The web console's session keys, when the console is on.
    console: Option<Arc<console::session::SessionKeys>>,
}

struct Inner {
    credentials: HashMap<String, Credential>,
    region: String,
    control: Arc<ControlPlane>,
    data: Arc<DataPlane>,
}

impl AppState {
    pub fn new(
        credentials: Vec<Credential>,
        region: String,
        control: Arc<ControlPlane>,
        data: Arc<DataPlane>,
    ) -> anyhow::Result<Self> {
        let mut map = HashMap::new();
        for c in credentials {
            if map.insert(c.access_key_id.clone(), c).is_some() {
                anyhow::bail!("an access key id is configured twice");
            }
        }
        Ok(AppState {
            inner: Arc::new(Inner {
                credentials: map,
                region,
                control,
                data,
            }),
            jwt: Arc::new(
                purser_jwt::Verifier::new(JwtSettings::default()).map_err(anyhow::Error::msg)?,
            ),
            ready: Arc::default(),
            console: None,
        })
    }

    /// Use these bearer-token settings (http to non-loopback issuers, refresh interval).
    pub fn with_jwt_settings(mut self, settings: JwtSettings) -> anyhow::Result<Self> {
        self.jwt = Arc::new(purser_jwt::Verifier::new(settings).map_err(anyhow::Error::msg)?);
        Ok(self)
    }

    /// Turn the web console on (`/console/`), its sessions authenticated with `key` (derive
    /// it from the master key, so every node accepts every node's sessions).
    pub fn with_console(mut self, key: zeroize::Zeroizing<[u8; 32]>) -> Self {
        self.console = Some(Arc::new(console::session::SessionKeys::new(key)));
        self
    }
}

/// The app: `GET /health` (the process serves), `GET /health/ready` (the database and
/// the configured chains answer), the extension API under `/purser/v1/` (`ext`), every
/// AgentCore Payments operation, and the web console under `/console/` when it is on
/// (otherwise those paths are unknown operations, 404).
pub fn router(state: AppState) -> axum::Router {
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route("/health/ready", axum::routing::get(ops::ready))
        .route(
            &format!("{}/{{*rest}}", ext::BASE),
            axum::routing::any(ext::handle),
        );
    let app = if state.console.is_some() {
        app.merge(console::routes())
    } else {
        app
    };
    app.fallback(pipeline::handle).with_state(state)
}

/// `router` plus `POST /_purser/test/clock` `{"advanceSeconds": N}`, which moves the given
/// clock forward (for tests of expiry; `purser serve --test-clock` only).
pub fn router_with_test_clock(
    state: AppState,
    clock: Arc<purser_core::clock::OffsetClock>,
) -> axum::Router {
    let advance = move |axum::Json(body): axum::Json<serde_json::Value>| {
        let clock = clock.clone();
        async move {
            let secs = body
                .get("advanceSeconds")
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            let now = clock.advance_millis(secs.saturating_mul(1000));
            axum::Json(serde_json::json!({"now": now.unix_timestamp()}))
        }
    };
    axum::Router::new()
        .route("/_purser/test/clock", axum::routing::post(advance))
        .merge(router(state))
}
