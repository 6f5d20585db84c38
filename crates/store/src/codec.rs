//! Conversions between domain values and column values.
use purser_core::clock::{from_millis, to_millis};
use purser_core::domain::Tags;
use purser_core::store::StoreError;
use time::OffsetDateTime;

pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    to_millis(t)
}

pub(crate) fn ms_opt(t: Option<OffsetDateTime>) -> Option<i64> {
    t.map(to_millis)
}

pub(crate) fn time(ms: i64) -> OffsetDateTime {
    from_millis(ms)
}

pub(crate) fn tags_to_text(tags: &Tags) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn tags_from_text(text: &str) -> Result<Tags, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("bad tags column: {e}")))
}

pub(crate) fn parse<T>(
    what: &str,
    value: &str,
    f: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    f(value).ok_or_else(|| StoreError::Backend(format!("bad {what} column: {value}")))
}

pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e.as_database_error(), Some(d) if d.is_unique_violation())
}

/// The provider name a credential-provider ARN ends with.
pub(crate) fn provider_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
