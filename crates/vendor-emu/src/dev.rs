//! The emulator's own development endpoints (no vendor has them): grant or revoke a CDP
//! end user's delegation (what the end user does from a frontend), switch the project's
//! delegated signing off, make a Privy wallet's requests fail its policy, and inject
//! faults (429 / 5xx / delay) into the next vendor calls. Unauthenticated: the emulator
//! listens on loopback only.
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::error::{ApiError, Vendor};
use crate::{BANNER, Emulator, now_secs, store};

/// Most calls one fault entry may cover.
const MAX_FAULT_COUNT: u64 = 1000;
/// Longest injected delay.
const MAX_DELAY_MS: u64 = 120_000;

#[derive(Clone, Debug)]
pub struct Fault {
    vendor: Option<Vendor>,
    kind: FaultKind,
    remaining: u64,
    path_contains: Option<String>,
}

#[derive(Clone, Copy, Debug)]
enum FaultKind {
    Status(u16),
    Delay(u64),
}

pub enum FaultAction {
    Fail(ApiError),
    Delay(Duration),
}

/// The fault that applies to this call, if any (and counts it).
pub fn take_fault(emu: &Emulator, vendor: Vendor, path: &str) -> Option<FaultAction> {
    let mut faults = emu.faults.lock().unwrap_or_else(|p| p.into_inner());
    let i = faults.iter().position(|f| {
        f.remaining > 0
            && f.vendor.is_none_or(|v| v == vendor)
            && f.path_contains.as_deref().is_none_or(|p| path.contains(p))
    })?;
    let fault = &mut faults[i];
    fault.remaining -= 1;
    let kind = fault.kind;
    if fault.remaining == 0 {
        faults.remove(i);
    }
    Some(match kind {
        FaultKind::Delay(ms) => FaultAction::Delay(Duration::from_millis(ms)),
        FaultKind::Status(s) => FaultAction::Fail(status_error(vendor, s)),
    })
}

fn status_error(vendor: Vendor, status: u16) -> ApiError {
    let s = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (code, message) = match (vendor, status) {
        (Vendor::Cdp, 429) => (
            "rate_limit_exceeded",
            "Rate limit exceeded. Please try again later.",
        ),
        (Vendor::Privy, 429) => ("too_many_requests", "Too many requests."),
        (Vendor::Cdp, 502) => ("bad_gateway", "Bad gateway."),
        (Vendor::Cdp, 503) => (
            "service_unavailable",
            "Service unavailable. Please try again later.",
        ),
        (Vendor::Privy, 502 | 503) => ("service_unavailable", "Service unavailable."),
        (Vendor::Cdp, _) => ("internal_server_error", "Internal server error."),
        (Vendor::Privy, _) => ("internal_error", "Internal server error."),
    };
    ApiError::new(s, code, message)
}

pub fn routes() -> axum::Router<Arc<Emulator>> {
    axum::Router::new()
        .route("/_emulator/health", get(health))
        .route(
            "/_emulator/cdp/end-users/{user_id}/delegation",
            post(grant_delegation).delete(revoke_delegation),
        )
        .route("/_emulator/cdp/settings", put(cdp_settings))
        .route(
            "/_emulator/privy/wallets/{wallet_id}/policy",
            put(privy_policy),
        )
        .route("/_emulator/faults", post(add_fault).delete(clear_faults))
}

fn dev_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// The body as JSON (`{}` when empty); `None` when it is not JSON.
fn body_json(body: &[u8]) -> Option<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(json!({}));
    }
    serde_json::from_slice(body).ok()
}

fn not_json() -> Response {
    dev_error(StatusCode::BAD_REQUEST, "the body is not JSON")
}

async fn health() -> Response {
    Json(json!({"emulator": BANNER})).into_response()
}

async fn grant_delegation(
    State(emu): State<Arc<Emulator>>,
    Path(user_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Some(body) = body_json(&body) else {
        return not_json();
    };
    let now = now_secs();
    let expires = match body.get("expiresAt") {
        None | Some(Value::Null) => now + 24 * 3600,
        Some(v) => match v.as_str().and_then(crate::cdp::parse_time) {
            Some(t) => t,
            None => {
                return dev_error(
                    StatusCode::BAD_REQUEST,
                    "expiresAt is not an RFC 3339 date-time",
                );
            }
        },
    };
    let project = emu.accounts.cdp_project_id.clone();
    let updated = emu.store.tx(|tx| {
        Ok(tx.execute(
            "UPDATE cdp_end_users SET delegation_expires_at = ?3, delegation_revoked = 0
             WHERE project_id = ?1 AND user_id = ?2",
            params![project, user_id, expires],
        )?)
    });
    match updated {
        Ok(1) => Json(json!({"expiresAt": crate::cdp::format_time(expires)})).into_response(),
        Ok(_) => dev_error(StatusCode::NOT_FOUND, "no such end user"),
        Err(e) => e.into_vendor_response(Vendor::Cdp),
    }
}

async fn revoke_delegation(
    State(emu): State<Arc<Emulator>>,
    Path(user_id): Path<String>,
) -> Response {
    let project = emu.accounts.cdp_project_id.clone();
    match emu
        .store
        .tx(|tx| crate::cdp::revoke(tx, &project, &user_id))
    {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => dev_error(StatusCode::NOT_FOUND, "no such end user"),
        Err(e) => e.into_vendor_response(Vendor::Cdp),
    }
}

async fn cdp_settings(State(emu): State<Arc<Emulator>>, body: axum::body::Bytes) -> Response {
    let Some(body) = body_json(&body) else {
        return not_json();
    };
    let Some(enabled) = body.get("delegatedSigningEnabled").and_then(Value::as_bool) else {
        return dev_error(
            StatusCode::BAD_REQUEST,
            "delegatedSigningEnabled (a boolean) is required",
        );
    };
    let project = emu.accounts.cdp_project_id.clone();
    match emu.store.tx(|tx| {
        tx.execute(
            "INSERT INTO cdp_settings (project_id, delegated_signing_enabled) VALUES (?1, ?2)
             ON CONFLICT (project_id) DO UPDATE SET delegated_signing_enabled = excluded.delegated_signing_enabled",
            params![project, enabled as i64],
        )?;
        Ok(())
    }) {
        Ok(()) => Json(json!({"delegatedSigningEnabled": enabled})).into_response(),
        Err(e) => e.into_vendor_response(Vendor::Cdp),
    }
}

async fn privy_policy(
    State(emu): State<Arc<Emulator>>,
    Path(wallet_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Some(body) = body_json(&body) else {
        return not_json();
    };
    let Some(deny) = body.get("deny").and_then(Value::as_bool) else {
        return dev_error(StatusCode::BAD_REQUEST, "deny (a boolean) is required");
    };
    match emu
        .store
        .tx(|tx| store::set_policy_deny(tx, &wallet_id, deny))
    {
        Ok(true) => Json(json!({"deny": deny})).into_response(),
        Ok(false) => dev_error(StatusCode::NOT_FOUND, "no such Privy wallet"),
        Err(e) => e.into_vendor_response(Vendor::Privy),
    }
}

async fn add_fault(State(emu): State<Arc<Emulator>>, body: axum::body::Bytes) -> Response {
    let Some(body) = body_json(&body) else {
        return not_json();
    };
    let vendor = match body.get("vendor").and_then(Value::as_str).unwrap_or("any") {
        "cdp" => Some(Vendor::Cdp),
        "privy" => Some(Vendor::Privy),
        "any" => None,
        _ => return dev_error(StatusCode::BAD_REQUEST, "vendor is cdp, privy or any"),
    };
    let kind = match body.get("kind").and_then(Value::as_str) {
        Some("delay") => match body.get("delayMs").and_then(Value::as_u64) {
            Some(ms) if ms <= MAX_DELAY_MS => FaultKind::Delay(ms),
            _ => {
                return dev_error(
                    StatusCode::BAD_REQUEST,
                    format!("delayMs (0..={MAX_DELAY_MS}) is required for a delay"),
                );
            }
        },
        Some(s @ ("429" | "500" | "502" | "503")) => FaultKind::Status(s.parse().unwrap_or(500)),
        _ => {
            return dev_error(
                StatusCode::BAD_REQUEST,
                "kind is one of 429, 500, 502, 503, delay",
            );
        }
    };
    let count = match body.get("count") {
        None => 1,
        Some(c) => match c.as_u64() {
            Some(n) if (1..=MAX_FAULT_COUNT).contains(&n) => n,
            _ => {
                return dev_error(
                    StatusCode::BAD_REQUEST,
                    format!("count is 1..={MAX_FAULT_COUNT}"),
                );
            }
        },
    };
    let path_contains = body
        .get("pathContains")
        .and_then(Value::as_str)
        .map(str::to_string);
    emu.faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Fault {
            vendor,
            kind,
            remaining: count,
            path_contains,
        });
    (StatusCode::CREATED, Json(json!({"pending": count}))).into_response()
}

async fn clear_faults(State(emu): State<Arc<Emulator>>) -> Response {
    emu.faults.lock().unwrap_or_else(|p| p.into_inner()).clear();
    StatusCode::NO_CONTENT.into_response()
}

/// Whether the CDP project has delegated signing on (the default).
pub fn delegated_signing_enabled(
    tx: &rusqlite::Transaction<'_>,
    project: &str,
) -> Result<bool, ApiError> {
    Ok(tx
        .query_row(
            "SELECT delegated_signing_enabled FROM cdp_settings WHERE project_id = ?1",
            params![project],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .is_none_or(|v| v != 0))
}
