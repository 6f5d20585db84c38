//! Domain errors to AWS errors: one mapping, used by every handler.
use purser_core::CoreError;
use purser_model::AwsError;

pub fn to_aws(e: CoreError) -> AwsError {
    match e {
        CoreError::Validation {
            message,
            field: Some(field),
        } => {
            // Every field-level message names its field, as the model-derived ones do.
            let message = if message.contains(&field) {
                message
            } else {
                format!(
                    "1 validation error detected: Value at '{field}' failed to satisfy constraint: {message}"
                )
            };
            AwsError::validation_field(field, message)
        }
        CoreError::Validation {
            message,
            field: None,
        } => AwsError::validation(&message),
        CoreError::IdempotencyMismatch(m) => AwsError::idempotency_mismatch(&m),
        CoreError::NotFound(m) => AwsError::not_found(&m),
        CoreError::Conflict(m) => AwsError::conflict(&m),
        CoreError::AccessDenied(m) => AwsError::access_denied(&m),
        CoreError::Throttled(m) => AwsError::throttling(&m),
        CoreError::Internal(m) => AwsError::internal(&m),
    }
}
