//! AWS JSON error responses.

use crate::ops::RouteError;
use crate::validate::Violation;
use serde_json::{Map, Value, json};

/// An error response in the AWS rest-json shape.
///
/// The status codes of the modelled exceptions are the models' `error.httpStatusCode`
/// (a test checks the constructors against both model files).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    /// The error shape name (`__type`), e.g. `"ValidationException"`.
    pub code: &'static str,
    /// The HTTP status code.
    pub status: u16,
    pub message: String,
    /// `ValidationException.reason` (`CannotParse`, `FieldValidationFailed`, ...).
    pub reason: Option<String>,
    /// `ValidationException.fieldList` as `(name, message)` pairs.
    pub field_list: Vec<(String, String)>,
}

impl AwsError {
    fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        AwsError {
            code,
            status,
            message: message.into(),
            reason: None,
            field_list: Vec::new(),
        }
    }

    /// A non-modelled error (e.g. `UnknownOperationException`, authentication errors).
    pub fn other(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self::new(code, status, message)
    }

    /// `ValidationException` (400) with reason `FieldValidationFailed` and no field list.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::validation_with_reason("FieldValidationFailed", message)
    }

    /// `ValidationException` (400) with reason `CannotParse`.
    pub fn cannot_parse(message: impl Into<String>) -> Self {
        Self::validation_with_reason("CannotParse", message)
    }

    /// `ValidationException` (400) with the given `reason`.
    pub fn validation_with_reason(reason: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new("ValidationException", 400, message);
        e.reason = Some(reason.to_owned());
        e
    }

    /// `ValidationException` (400), reason `FieldValidationFailed`, about one field:
    /// `message` is used verbatim both as the error message and as the field's message.
    pub fn validation_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::validation(message.clone());
        e.field_list.push((field.into(), message));
        e
    }

    /// `ValidationException` (400), reason `FieldValidationFailed`, for constraint
    /// violations: "N validation error(s) detected: Value at 'path' failed to satisfy
    /// constraint: ...; ..." with one `fieldList` entry per violation.
    pub fn field_violations(violations: &[Violation]) -> Self {
        let n = violations.len();
        let plural = if n == 1 { "" } else { "s" };
        let details: Vec<String> = violations.iter().map(Violation::message).collect();
        let mut e = Self::validation(format!(
            "{n} validation error{plural} detected: {}",
            details.join("; ")
        ));
        e.field_list = violations
            .iter()
            .map(|v| (v.path.clone(), v.constraint.clone()))
            .collect();
        e
    }

    /// `ValidationException` (400) with reason `IdempotentParameterMismatchException`: a
    /// client token was reused with different parameters.
    pub fn idempotency_mismatch(message: impl Into<String>) -> Self {
        Self::validation_with_reason("IdempotentParameterMismatchException", message)
    }

    /// `ResourceNotFoundException` (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("ResourceNotFoundException", 404, message)
    }

    /// `ConflictException` (409).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new("ConflictException", 409, message)
    }

    /// `AccessDeniedException` (403).
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new("AccessDeniedException", 403, message)
    }

    /// `InternalServerException` (500).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalServerException", 500, message)
    }

    /// `ThrottlingException` (429).
    pub fn throttling(message: impl Into<String>) -> Self {
        Self::new("ThrottlingException", 429, message)
    }

    /// `ServiceQuotaExceededException` (402, as the models say).
    pub fn service_quota(message: impl Into<String>) -> Self {
        Self::new("ServiceQuotaExceededException", 402, message)
    }

    /// `UnauthorizedException` (401).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new("UnauthorizedException", 401, message)
    }

    /// `SubscriptionRequiredException` (403).
    pub fn subscription_required(message: impl Into<String>) -> Self {
        Self::new("SubscriptionRequiredException", 403, message)
    }

    /// `ResourceLimitExceededException` (400).
    pub fn resource_limit_exceeded(message: impl Into<String>) -> Self {
        Self::new("ResourceLimitExceededException", 400, message)
    }

    /// `DecryptionFailure` (400).
    pub fn decryption_failure(message: impl Into<String>) -> Self {
        Self::new("DecryptionFailure", 400, message)
    }

    /// `EncryptionFailure` (400).
    pub fn encryption_failure(message: impl Into<String>) -> Self {
        Self::new("EncryptionFailure", 400, message)
    }

    /// The JSON body: `{"__type": code, "message": ..., "reason"?: ..., "fieldList"?: [...]}`
    /// (`reason` only when set, `fieldList` only when non-empty).
    pub fn body(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("__type".into(), Value::from(self.code));
        m.insert("message".into(), Value::from(self.message.clone()));
        if let Some(reason) = &self.reason {
            m.insert("reason".into(), Value::from(reason.clone()));
        }
        if !self.field_list.is_empty() {
            let list = self
                .field_list
                .iter()
                .map(|(name, message)| json!({"name": name, "message": message}))
                .collect();
            m.insert("fieldList".into(), Value::Array(list));
        }
        serde_json::to_vec(&Value::Object(m)).expect("a JSON value serialises")
    }
}

impl From<RouteError> for AwsError {
    /// `UnknownOperationException`: 404 for an unknown path, 405 for a known path with
    /// the wrong method.
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::NotFound => {
                AwsError::other("UnknownOperationException", 404, "Unknown operation")
            }
            RouteError::MethodNotAllowed { allowed } => AwsError::other(
                "UnknownOperationException",
                405,
                format!(
                    "Method not allowed for this resource; allowed: {}",
                    allowed.join(", ")
                ),
            ),
        }
    }
}
