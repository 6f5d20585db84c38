/// What a domain operation can answer besides success. The server maps each variant to
/// exactly one AWS error shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// Bad input that the model's constraints cannot express. `field` names the member.
    #[error("{message}")]
    Validation {
        message: String,
        field: Option<String>,
    },
    /// Same clientToken, different request.
    #[error("{0}")]
    IdempotencyMismatch(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    AccessDenied(String),
    /// A dependency (a vendor's wallet API) is rate limiting or unavailable: retry later
    /// (ThrottlingException). Nothing was charged.
    #[error("{0}")]
    Throttled(String),
    /// Something broke inside Purser. The message is safe to show (no secrets).
    #[error("{0}")]
    Internal(String),
}

pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    /// A request that is well-formed but breaks a rule (budget, expiry, ...): a
    /// ValidationException without a field.
    pub fn rule(message: impl Into<String>) -> Self {
        CoreError::Validation {
            message: message.into(),
            field: None,
        }
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        CoreError::Validation {
            message: message.into(),
            field: Some(field.to_string()),
        }
    }
}

impl From<crate::store::StoreError> for CoreError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        CoreError::Internal("An internal error occurred while accessing storage.".into())
    }
}
