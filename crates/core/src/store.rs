//! The persistence port. SQLite and PostgreSQL implement it in `purser-store`; every
//! implementation must pass the same contract tests.
//!
//! Rules every implementation keeps:
//! * a method that takes an [`IdempotencyWrite`] records it in the same transaction as the
//!   change it belongs to, and fails with [`StoreError::Duplicate`]`(`[`Unique::ClientToken`]`)`
//!   when the token was already used for that operation in that account;
//! * guarded state changes (a manager cannot start deleting while it has connectors; a
//!   connector cannot be created under a manager that is absent or deleting) are single
//!   atomic statements or transactions, never read-then-write in the core.
use crate::domain::{
    Connector, CredentialProvider, Instrument, InstrumentSummary, Manager, Payment, Refusal,
    RefusalReason, Session, SpendingPolicy, StoredPolicy,
};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    Name,
    ClientToken,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("duplicate {0:?}")]
    Duplicate(Unique),
    #[error("storage backend: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A used clientToken, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub fingerprint: [u8; 32],
    pub resource_id: String,
}

/// A clientToken to record together with a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyWrite<'a> {
    pub operation: &'static str,
    pub token: &'a str,
    pub fingerprint: [u8; 32],
    pub resource_id: &'a str,
    pub at: OffsetDateTime,
}

/// Outcome of asking a manager to start deleting.
#[derive(Debug, PartialEq, Eq)]
pub enum ManagerDelete {
    Started(Box<Manager>),
    NotFound,
    HasConnectors,
}

/// Outcome of deleting a credential provider.
#[derive(Debug, PartialEq, Eq)]
pub enum ProviderDelete {
    Deleted,
    NotFound,
    InUse,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn idempotency_get(
        &self,
        account_id: &str,
        operation: &str,
        token: &str,
    ) -> StoreResult<Option<IdempotencyRecord>>;

    // Credential providers, keyed by (account, name).
    async fn provider_insert(&self, p: &CredentialProvider) -> StoreResult<()>;
    async fn provider_get(
        &self,
        account_id: &str,
        name: &str,
    ) -> StoreResult<Option<CredentialProvider>>;
    /// Replaces the record; false when it does not exist.
    async fn provider_update(&self, p: &CredentialProvider) -> StoreResult<bool>;
    /// Refuses (InUse) while a connector of the account references the provider.
    async fn provider_delete(&self, account_id: &str, name: &str) -> StoreResult<ProviderDelete>;
    /// Providers ordered by name, strictly after `after`.
    async fn provider_list(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<CredentialProvider>>;

    // Managers, keyed by (account, id); names unique per account.
    async fn manager_insert(
        &self,
        m: &Manager,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<()>;
    async fn manager_get(&self, account_id: &str, id: &str) -> StoreResult<Option<Manager>>;
    /// Replaces the record unless it is deleting; false when absent or deleting.
    async fn manager_update(
        &self,
        m: &Manager,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<bool>;
    /// Atomically: if the manager exists, is not already deleting and has no connectors,
    /// set it DELETING until `transition_at`.
    async fn manager_start_delete(
        &self,
        account_id: &str,
        id: &str,
        now: OffsetDateTime,
        transition_at: OffsetDateTime,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<ManagerDelete>;
    /// Managers ordered by id, strictly after `after`.
    async fn manager_list(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Manager>>;

    // Connectors, keyed by (account, manager, id); names unique per manager.
    /// Atomically refuses (false) when the manager is absent or deleting.
    async fn connector_insert(
        &self,
        c: &Connector,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<bool>;
    async fn connector_get(
        &self,
        account_id: &str,
        manager_id: &str,
        id: &str,
    ) -> StoreResult<Option<Connector>>;
    async fn connector_update(
        &self,
        c: &Connector,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<bool>;
    /// Sets the connector DELETING until `transition_at`; None when absent or already deleting.
    async fn connector_start_delete(
        &self,
        account_id: &str,
        manager_id: &str,
        id: &str,
        now: OffsetDateTime,
        transition_at: OffsetDateTime,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<Option<Connector>>;
    async fn connector_list(
        &self,
        account_id: &str,
        manager_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Connector>>;

    /// Completes every transition due at `now`: CREATING/UPDATING become READY (updated at
    /// their transition time), DELETING records disappear. Idempotent, safe to run on
    /// several nodes at once. Returns how many records changed.
    async fn complete_transitions(&self, now: OffsetDateTime) -> StoreResult<u64>;

    // Instruments, keyed by (account, id). Deleted instruments stay (status DELETED).
    async fn instrument_insert(
        &self,
        i: &Instrument,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<()>;
    /// The instrument whatever its status (deleted ones included, for audit).
    async fn instrument_get(&self, account_id: &str, id: &str) -> StoreResult<Option<Instrument>>;
    /// Soft delete guarded by the version read: status DELETED, version + 1, updated_at.
    /// False when the instrument changed since (another delete won) or is already deleted.
    async fn instrument_soft_delete(
        &self,
        account_id: &str,
        id: &str,
        expected_version: i64,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Live (not DELETED) instruments of one owner, ordered by id, strictly after `after`.
    async fn instrument_list(
        &self,
        account_id: &str,
        manager_id: &str,
        user_id: &str,
        connector_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<InstrumentSummary>>;

    // Sessions, keyed by (account, id). Delete is a hard delete.
    async fn session_insert(
        &self,
        s: &Session,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<()>;
    async fn session_get(&self, account_id: &str, id: &str) -> StoreResult<Option<Session>>;
    async fn session_delete(&self, account_id: &str, id: &str) -> StoreResult<bool>;
    async fn session_list(
        &self,
        account_id: &str,
        manager_id: &str,
        user_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Session>>;

    /// Store `value` under `key` unless the key exists; returns the value stored now
    /// (the given one, or the one that was already there).
    async fn meta_put_if_absent(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>>;

    /// The payment recorded under a clientToken, if any (replays, B8).
    async fn payment_by_token(&self, account_id: &str, token: &str)
    -> StoreResult<Option<Payment>>;
    /// Every payment of a session, oldest first (audit).
    async fn payments_of_session(
        &self,
        account_id: &str,
        session_id: &str,
    ) -> StoreResult<Vec<Payment>>;

    /// ProcessPayment's reads in one round trip: the manager and, in the same account, the
    /// session and the instrument with these ids (whoever owns them; the core checks), and
    /// the payment already recorded under `client_token` if one is given (a replay, B8).
    /// All None when the manager does not exist.
    async fn payment_context(
        &self,
        account_id: &str,
        manager_id: &str,
        session_id: &str,
        instrument_id: &str,
        client_token: Option<&str>,
    ) -> StoreResult<PaymentContext>;

    /// Open one write transaction for a batch of payments (group commit): reservations,
    /// releases and records inside it become durable together at `commit`.
    async fn begin_payments(&self) -> StoreResult<Box<dyn PaymentTx>>;

    // ----- history, refusals, spending policies (the operator's extension API) -------

    /// Payments of an account matching `filter`, newest first (created_at, then id, both
    /// descending), strictly before `before` when given.
    async fn payment_list(
        &self,
        account_id: &str,
        filter: &PaymentFilter,
        before: Option<&Keyset>,
        limit: usize,
    ) -> StoreResult<Vec<Payment>>;
    /// Sums of payments per time bucket of `bucket_ms` (aligned on multiples of it since
    /// the epoch), oldest first, only buckets with payments.
    async fn payment_buckets(
        &self,
        account_id: &str,
        filter: &PaymentFilter,
        bucket_ms: i64,
    ) -> StoreResult<Vec<SpendBucket>>;
    /// The value of a user's payments (under one manager) created after each instant.
    async fn user_spent(
        &self,
        account_id: &str,
        manager_id: &str,
        user_id: &str,
        after_day: OffsetDateTime,
        after_month: OffsetDateTime,
    ) -> StoreResult<(i64, i64)>;
    async fn refusal_insert(&self, r: &Refusal) -> StoreResult<()>;
    /// Refusals newest first, strictly before `before`.
    async fn refusal_list(
        &self,
        account_id: &str,
        filter: &RefusalFilter,
        before: Option<&Keyset>,
        limit: usize,
    ) -> StoreResult<Vec<Refusal>>;
    /// The manager's own policy (`user_id` None) or a user's.
    async fn policy_get(
        &self,
        account_id: &str,
        manager_id: &str,
        user_id: Option<&str>,
    ) -> StoreResult<Option<StoredPolicy>>;
    /// Insert or replace.
    async fn policy_put(&self, p: &StoredPolicy) -> StoreResult<()>;
    /// False when there was none.
    async fn policy_delete(
        &self,
        account_id: &str,
        manager_id: &str,
        user_id: Option<&str>,
    ) -> StoreResult<bool>;
    /// The manager's own policy first, then user policies by user id, strictly after
    /// `after` (a user id; "" = after the manager's own).
    async fn policy_list(
        &self,
        account_id: &str,
        manager_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<StoredPolicy>>;
}

/// Filters of the payment history (all optional; `user_id` only with `manager_id`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentFilter {
    pub manager_id: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub instrument_id: Option<String>,
    /// Compared with the payee's key (`policies::payee_key`).
    pub payee: Option<String>,
    pub payment_type: Option<String>,
    pub scheme: Option<String>,
    pub network: Option<String>,
    /// Inclusive.
    pub from: Option<OffsetDateTime>,
    /// Exclusive.
    pub to: Option<OffsetDateTime>,
}

/// Filters of the refusal list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefusalFilter {
    pub manager_id: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub reason: Option<RefusalReason>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// A position in a newest-first listing: the last row of the previous page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyset {
    pub created_at: OffsetDateTime,
    pub id: String,
}

/// One bucket of [`Store::payment_buckets`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendBucket {
    pub start: OffsetDateTime,
    pub payments: i64,
    pub value: i64,
}

/// What [`Store::payment_context`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PaymentContext {
    pub manager: Option<Manager>,
    pub session: Option<Session>,
    pub instrument: Option<Instrument>,
    /// The payment recorded under the request's clientToken in this account.
    pub replay: Option<Payment>,
    /// The manager's spending policy, and the session user's (read in the same statement).
    pub manager_policy: Option<SpendingPolicy>,
    pub user_policy: Option<SpendingPolicy>,
}

/// Outcome of reserving an amount against a session's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// Debited; the remaining budget afterwards (None when the session has no cap).
    Reserved {
        remaining: Option<i64>,
    },
    Insufficient {
        remaining: i64,
    },
    Expired,
    NotFound,
}

/// A write transaction over the payment ledger. Dropping it without `commit` rolls back.
/// An implementation may block the calling thread (SQLite runs it synchronously, the
/// commit's fsync included): the core opens and drives it only from the ledger's own
/// thread.
#[async_trait::async_trait]
pub trait PaymentTx: Send {
    /// The budget rule, as ONE atomic statement: if the session exists, has not expired at
    /// `now` and `spent + amount <= cap` (or has no cap), add `amount` to `spent`.
    async fn reserve(
        &mut self,
        account_id: &str,
        session_id: &str,
        amount: i64,
        now: OffsetDateTime,
    ) -> StoreResult<Reserve>;
    /// Give back a reservation whose signature failed.
    async fn release(&mut self, account_id: &str, session_id: &str, amount: i64)
    -> StoreResult<()>;
    /// Record signed payments (one multi-row statement per chunk). For each payment, in
    /// order: true when recorded, false when its clientToken is already used (then nothing
    /// of it is written, and the transaction stays usable).
    async fn record_all(&mut self, payments: &[Payment]) -> StoreResult<Vec<bool>>;
    /// Spending policies' rolling caps: take this user's turn (a row lock held until the
    /// transaction ends, so transactions of every node checking this user take turns),
    /// then sum the value of the user's payments (under the manager) created after each
    /// instant, as committed before the turn was taken.
    async fn lock_user_spent(
        &mut self,
        account_id: &str,
        manager_id: &str,
        user_id: &str,
        now: OffsetDateTime,
        after_day: OffsetDateTime,
        after_month: OffsetDateTime,
    ) -> StoreResult<(i64, i64)>;
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}
