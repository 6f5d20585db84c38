//! Errors in each vendor's own shape.
//!
//! * CDP (docs.cdp.coinbase.com/api-reference/v2/errors): `{errorType, errorMessage,
//!   correlationId, errorLink}`.
//! * Privy: `{error: <message>, code: <code>}` (the codes are those of Privy's API error
//!   reference; the shape is the emulator's choice, see crates/vendor-emu/API.md).
//!
//! Messages name what is wrong, never a secret, a key, a token or a linked account.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    Cdp,
    Privy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            message,
        )
    }

    /// The body in `vendor`'s shape.
    pub fn body(&self, vendor: Vendor) -> Value {
        match vendor {
            Vendor::Cdp => json!({
                "errorType": self.code,
                "errorMessage": self.message,
                "correlationId": correlation_id(),
                "errorLink": format!("https://docs.cdp.coinbase.com/api-reference/v2/errors#{}", self.code),
            }),
            Vendor::Privy => json!({"error": self.message, "code": self.code}),
        }
    }

    pub fn into_vendor_response(self, vendor: Vendor) -> Response {
        (self.status, axum::Json(self.body(vendor))).into_response()
    }
}

fn correlation_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{}-EMU", hex::encode(b))
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        tracing::error!(error = %e, "vendor emulator database error");
        ApiError::internal("The emulator's database failed.")
    }
}
