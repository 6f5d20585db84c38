//! Purser's domain: credential providers, payment managers and connectors (and, later,
//! instruments, sessions and payments), their rules and their lifecycles.
//!
//! Architecture invariant: this crate knows no HTTP, no SQL and no AWS JSON. It speaks to
//! persistence through the [`store::Store`] port and to key material through
//! `purser-wallet`. Wire types live in `purser-model`; the server maps between the two.

pub mod clock;
pub mod control;
pub mod domain;
pub mod error;
pub mod health;
pub mod history;
pub mod holder;
pub mod identity;
pub mod ids;
pub mod instruments;
pub mod keycare;
pub mod money;
pub mod paging;
pub mod payments;
pub mod policies;
pub mod store;

pub use clock::{Clock, SystemClock};
pub use error::{CoreError, CoreResult};

/// Who is calling: the account the verified credential belongs to, and the server's region
/// (used in every ARN Purser mints).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    pub region: String,
}

/// An idempotency key supplied by the client (`clientToken`), with a fingerprint of the
/// rest of the request computed by the wire layer. Same token + same fingerprint replays;
/// same token + other fingerprint is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    pub token: String,
    pub fingerprint: [u8; 32],
}

/// The one mismatch answer of every idempotent operation (B8).
pub(crate) fn idempotency_mismatch() -> CoreError {
    CoreError::IdempotencyMismatch(
        "The clientToken was already used with a different request.".into(),
    )
}

impl Idempotency {
    /// If this token was already used for `operation` in the account, the resource id it
    /// produced; the same token with another request is refused.
    pub(crate) async fn replay(
        idem: Option<&Idempotency>,
        store: &dyn store::Store,
        account_id: &str,
        operation: &str,
    ) -> CoreResult<Option<String>> {
        let Some(idem) = idem else { return Ok(None) };
        match store
            .idempotency_get(account_id, operation, &idem.token)
            .await?
        {
            None => Ok(None),
            Some(rec) if rec.fingerprint == idem.fingerprint => Ok(Some(rec.resource_id)),
            Some(_) => Err(idempotency_mismatch()),
        }
    }

    /// The record to write together with the change that `resource_id` names.
    pub(crate) fn write<'a>(
        idem: Option<&'a Idempotency>,
        operation: &'static str,
        resource_id: &'a str,
        at: time::OffsetDateTime,
    ) -> Option<store::IdempotencyWrite<'a>> {
        idem.map(|i| store::IdempotencyWrite {
            operation,
            token: &i.token,
            fingerprint: i.fingerprint,
            resource_id,
            at,
        })
    }
}

/// Refuse to serve with a master key other than the one the database is sealed under
/// (see [`keycare::check_master_key`]).
pub use keycare::check_master_key;
