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
pub mod ids;
pub mod instruments;
pub mod money;
pub mod paging;
pub mod payments;
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
