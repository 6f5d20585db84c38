//! Payment sessions (B20) and ProcessPayment (B21-B24): x402 `exact` on EVM chains,
//! signed with the instrument's self-custody key, under a session budget that cannot be
//! beaten.
//!
//! The budget rule lives in ONE place: the store's atomic `reserve` statement, executed
//! before any signature exists. Payments go through a single ledger writer per process
//! that groups concurrent payments into one write transaction (group commit): reserve
//! each, sign the reserved ones in parallel, release the reservation of any that failed to
//! sign, record the signed ones, commit once (durable), and only then reply.
use std::collections::HashSet;
use std::sync::Arc;

use purser_chain::payment::{
    self, BuildContext, BuildError, PayerSigner, PaymentInput, PaymentType, Signature, ToSign,
    Unsigned,
};
use purser_wallet::Vault;
use tokio::sync::{mpsc, oneshot};

use crate::domain::*;
use crate::instruments::{Actor, DataPlane, Owner, key_aad, manager_id_of, owner_from};
use crate::money::{self, format_usd};
use crate::policies::{Effective, RollingCaps, Spent};
use crate::store::{Reserve, Store, StoreError, Unique};
use crate::{CoreError, CoreResult, Idempotency};

/// Largest number of payments grouped into one transaction.
pub const MAX_BATCH: usize = 256;

/// Input of CreatePaymentSession (after wire validation).
#[derive(Debug, Clone)]
pub struct SessionInput {
    pub manager_arn: String,
    pub expiry_minutes: i32,
    /// `limits.maxSpendAmount.value`, a decimal USD string.
    pub max_spend: Option<String>,
}

/// ProcessPayment after wire validation: which session and instrument pay, and what.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    pub manager_arn: String,
    pub session_id: String,
    pub instrument_id: String,
    pub payment_type: PaymentType,
    /// The member of the paymentInput union that was sent.
    pub input: PaymentInput,
    /// The agent name header (observability only: recorded, never part of the request's
    /// identity).
    pub agent_name: Option<String>,
}

fn session_not_found(id: &str) -> CoreError {
    CoreError::NotFound(format!("Payment session '{id}' not found."))
}

/// Count a ProcessPayment refusal by reason (`purser_payment_refusals_total`) and pass
/// the error on.
fn refused(reason: &'static str, e: CoreError) -> CoreError {
    purser_metrics::REFUSALS.inc(&[("reason", reason)]);
    e
}

/// ProcessPayment's answer for a session that does not exist for the caller (B21).
fn payment_session_not_found(id: &str) -> CoreError {
    refused(
        "session_not_found",
        CoreError::rule(format!("Payment session not found: '{id}'.")),
    )
}

fn session_expired(id: &str) -> CoreError {
    refused(
        "session_expired",
        CoreError::rule(format!("Payment session '{id}' has expired.")),
    )
}

fn insufficient(id: &str, remaining: i64, requested: i64) -> CoreError {
    insufficient_text(format!(
        "Insufficient budget in payment session '{id}': remaining {} USD, requested {} USD.",
        format_usd(remaining),
        format_usd(requested)
    ))
}

fn insufficient_text(message: String) -> CoreError {
    refused("insufficient_budget", CoreError::rule(message))
}

impl DataPlane {
    // ----- sessions -------------------------------------------------------------------

    pub async fn create_session(
        &self,
        actor: &Actor,
        input: SessionInput,
        idem: Option<&Idempotency>,
    ) -> CoreResult<Session> {
        const OP: &str = "CreatePaymentSession";
        let owner = self.owner(actor, &input.manager_arn).await?;
        let caller = &actor.caller;
        if let Some(id) = self.replay(caller, OP, idem).await? {
            return self
                .store()
                .session_get(&caller.account_id, &id)
                .await?
                .ok_or_else(|| session_not_found(&id));
        }
        let cap = match &input.max_spend {
            None => None,
            Some(v) => Some(
                money::parse_usd(v)
                    .filter(|c| *c > 0 && *c <= money::MAX_CAP)
                    .ok_or_else(|| {
                        CoreError::validation(
                            "limits.maxSpendAmount.value",
                            "limits.maxSpendAmount.value must be a decimal number of USD greater than 0 and at most 10000, with at most 6 decimal places.",
                        )
                    })?,
            ),
        };
        let now = self.now();
        let s = Session {
            account_id: caller.account_id.clone(),
            id: crate::ids::session_id(),
            manager_id: owner.manager.id,
            user_id: owner.user_id,
            expiry_minutes: input.expiry_minutes,
            expires_at: now + time::Duration::minutes(input.expiry_minutes as i64),
            cap,
            spent: 0,
            created_at: now,
            updated_at: now,
        };
        let write = Idempotency::write(idem, OP, &s.id, now);
        match self.store().session_insert(&s, write.as_ref()).await {
            Ok(()) => Ok(s),
            Err(StoreError::Duplicate(Unique::ClientToken)) => {
                match self.replay(caller, OP, idem).await? {
                    Some(id) => self
                        .store()
                        .session_get(&caller.account_id, &id)
                        .await?
                        .ok_or_else(|| session_not_found(&id)),
                    None => Err(CoreError::Internal("idempotency record vanished".into())),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn owned_session(&self, owner: &Owner, id: &str) -> CoreResult<Option<Session>> {
        Ok(self
            .store()
            .session_get(&owner.manager.account_id, id)
            .await?
            .filter(|s| owner.owns_session(s)))
    }

    pub async fn get_session(
        &self,
        actor: &Actor,
        manager_arn: &str,
        id: &str,
    ) -> CoreResult<Session> {
        let owner = self.owner(actor, manager_arn).await?;
        self.owned_session(&owner, id)
            .await?
            .ok_or_else(|| session_not_found(id))
    }

    pub async fn delete_session(
        &self,
        actor: &Actor,
        manager_arn: &str,
        id: &str,
    ) -> CoreResult<()> {
        let owner = self.owner(actor, manager_arn).await?;
        self.owned_session(&owner, id)
            .await?
            .ok_or_else(|| session_not_found(id))?;
        if !self
            .store()
            .session_delete(&owner.manager.account_id, id)
            .await?
        {
            return Err(session_not_found(id));
        }
        Ok(())
    }

    pub async fn list_sessions(
        &self,
        actor: &Actor,
        manager_arn: &str,
        max_results: Option<i32>,
        next_token: Option<&str>,
    ) -> CoreResult<Page<Session>> {
        let owner = self.owner(actor, manager_arn).await?;
        let scope = format!(
            "{}/ListPaymentSessions/{}/{}",
            owner.manager.account_id, owner.manager.id, owner.user_id
        );
        let (after, limit) = self.page_start(&scope, max_results, next_token)?;
        let items = self
            .store()
            .session_list(
                &owner.manager.account_id,
                &owner.manager.id,
                &owner.user_id,
                after.as_deref(),
                limit + 1,
            )
            .await?;
        Ok(self.page_end(&scope, items, limit, |s| &s.id))
    }

    // ----- ProcessPayment --------------------------------------------------------------

    /// The audit trail of a session (every signed payment, oldest first).
    pub async fn session_payments(
        &self,
        account_id: &str,
        session_id: &str,
    ) -> CoreResult<Vec<Payment>> {
        Ok(self
            .store()
            .payments_of_session(account_id, session_id)
            .await?)
    }

    pub async fn process_payment(
        &self,
        actor: &Actor,
        req: PaymentRequest,
        idem: Option<&Idempotency>,
    ) -> CoreResult<Payment> {
        // One read for the manager, the session, the instrument and a replay; the checks
        // below keep the order of B21 (manager, replay, request, session, instrument).
        let manager_id = manager_id_of(&actor.caller, &req.manager_arn)?;
        let ctx = self
            .store()
            .payment_context(
                &actor.caller.account_id,
                manager_id,
                &req.session_id,
                &req.instrument_id,
                idem.map(|i| i.token.as_str()),
            )
            .await?;
        let owner =
            owner_from(actor, manager_id, ctx.manager).map_err(|e| refused("manager", e))?;
        let account = owner.manager.account_id.clone();
        // B8: a replay answers even after the session was deleted.
        if let (Some(i), Some(p)) = (idem, ctx.replay) {
            return replay_payment(p, i);
        }
        // 1. the request: its kind reads and checks it (B22-B24)
        let input_type = match req.input {
            PaymentInput::X402 { .. } => PaymentType::CryptoX402,
            PaymentInput::Mpp { .. } => PaymentType::Mpp,
        };
        if req.payment_type != input_type {
            return Err(refused(
                "invalid_input",
                CoreError::validation(
                    "paymentInput",
                    format!(
                        "paymentType {} requires paymentInput.{}.",
                        req.payment_type.as_str(),
                        match req.payment_type {
                            PaymentType::CryptoX402 => "cryptoX402",
                            PaymentType::Mpp => "mpp",
                        }
                    ),
                ),
            ));
        }
        let requirement = payment::parse(&req.input)
            .map_err(|e| refused("invalid_input", CoreError::validation(&e.field, e.message)))?;
        check_payment_ceiling(requirement.amount, &requirement.amount_field)
            .map_err(|e| refused("over_ceiling", e))?;
        // 2. the session
        let now = self.now();
        let session = ctx
            .session
            .filter(|s| owner.owns_session(s))
            .ok_or_else(|| payment_session_not_found(&req.session_id))?;
        let audit = RefusalBase {
            owner: &owner,
            req: &req,
            requirement: &requirement,
            at: now,
        };
        if session.expires_at <= now {
            return Err(self
                .record_refusal(
                    &audit,
                    RefusalReason::SessionExpired,
                    None,
                    session_expired(&session.id),
                )
                .await);
        }
        // 3. the instrument
        let instrument = ctx
            .instrument
            .filter(|i| owner.owns_live_instrument(i))
            .ok_or_else(|| {
                refused(
                    "instrument_unusable",
                    CoreError::validation(
                        "paymentInstrumentId",
                        format!("Payment instrument not found: '{}'.", req.instrument_id),
                    ),
                )
            })?;
        if instrument.status != InstrumentStatus::Active {
            return Err(refused(
                "instrument_unusable",
                CoreError::validation(
                    "paymentInstrumentId",
                    format!(
                        "Payment instrument '{}' is {}, not ACTIVE.",
                        instrument.id,
                        instrument.status.as_str()
                    ),
                ),
            ));
        }
        if requirement.chain.family().as_str() != instrument.network.as_str() {
            return Err(refused(
                "network_mismatch",
                CoreError::validation(
                    network_field(&req.input),
                    format!(
                        "Network {} does not match payment instrument '{}' on network {}.",
                        requirement.network,
                        instrument.id,
                        instrument.network.as_str()
                    ),
                ),
            ));
        }
        // 4. the budget, pre-checked here (no transaction needed to refuse early) and
        //    enforced atomically by the ledger writer.
        let debit = match session.cap {
            None => 0,
            Some(cap) => match i64::try_from(requirement.debit).ok().filter(|a| *a <= cap) {
                Some(a) => a,
                None => {
                    let e = insufficient_text(format!(
                        "Insufficient budget in payment session '{}': remaining {} USD, requested {} USD.",
                        session.id,
                        format_usd(cap - session.spent),
                        format_units(requirement.debit)
                    ));
                    return Err(self
                        .record_refusal(&audit, RefusalReason::SessionBudget, None, e)
                        .await);
                }
            },
        };
        if let Some(remaining) = session.remaining()
            && debit > remaining
        {
            let e = insufficient(&session.id, remaining, debit);
            return Err(self
                .record_refusal(&audit, RefusalReason::SessionBudget, None, e)
                .await);
        }
        // 4b. spending policies (crate::policies): what depends on this payment alone is
        //     checked here; the rolling caps go to the ledger's atomic step.
        let value = i64::try_from(requirement.debit).unwrap_or(i64::MAX);
        let policy = Effective::of(ctx.manager_policy.as_ref(), ctx.user_policy.as_ref());
        if let Err((name, e)) = policy.check_payment(&requirement.payee, value) {
            return Err(self
                .record_refusal(&audit, RefusalReason::Policy, Some(name), e)
                .await);
        }
        // 5. what the payer signs, built by the kind (reading the chain if it must: never
        //    inside the ledger's transaction), and the instrument's holder: the vault
        //    signs inside the ledger; a remote holder (a vendor's wallet API) signs here,
        //    before the ledger, and the ledger reserves and records the signed payment in
        //    one step (a refused reservation discards the signature: none leaves the
        //    process before its debit is durable).
        let aad = key_aad(&account, &instrument.id);
        let remote = match instrument.holder {
            WalletHolder::SelfCustody => None, // (no await on the self-custody path)
            WalletHolder::Vendor { .. } => self.remote_signer(&instrument).await?,
        };
        let vault_signer = VaultSigner {
            vault: self.vault(),
            aad: &aad,
            sealed_key: &instrument.sealed_key,
        };
        let signer: &dyn PayerSigner = match &remote {
            Some(r) => r,
            None => &vault_signer,
        };
        let unsigned = requirement
            .kind
            .build(&BuildContext {
                payer: &instrument.wallet_address,
                now: now.unix_timestamp().max(0) as u64,
                chains: self.chains(),
                signer,
            })
            .await
            .map_err(build_error)?;
        let sign = match remote {
            None => Signing::Vault(SignJob {
                aad,
                sealed_key: instrument.sealed_key.clone(),
                unsigned,
            }),
            Some(r) => {
                let signature = r
                    .sign_payment(&unsigned.to_sign(), unsigned.typed_data())
                    .await?;
                let output = unsigned.finish(&signature).ok_or_else(|| {
                    CoreError::Throttled(
                        "The wallet provider signed with a key of the wrong kind; retry the request.".into(),
                    )
                })?;
                Signing::Signed(output)
            }
        };
        let payment = Payment {
            account_id: account.clone(),
            id: crate::ids::uuid_v4(),
            session_id: session.id.clone(),
            instrument_id: instrument.id.clone(),
            manager_id: owner.manager.id.clone(),
            user_id: owner.user_id.clone(),
            client_token: idem.map(|i| i.token.clone()),
            fingerprint: idem.map(|i| i.fingerprint),
            payment_type: requirement.payment_type.as_str().into(),
            version: requirement.version.clone(),
            scheme: requirement.scheme.clone(),
            network: requirement.network.clone(),
            payer: instrument.wallet_address.clone(),
            payee: requirement.payee.clone(),
            asset: requirement.asset.clone(),
            amount: requirement.amount.to_string(),
            debited: debit,
            value,
            agent_name: req.agent_name.clone(),
            output: String::new(),
            created_at: now,
        };
        let (reply, answer) = oneshot::channel();
        let intent = Intent {
            payment,
            sign,
            caps: policy.rolling(),
            reply,
        };
        self.ledger()
            .send(intent)
            .await
            .map_err(|_| CoreError::Internal("The payment ledger is not running.".into()))?;
        let result = answer
            .await
            .map_err(|_| CoreError::Internal("The payment ledger stopped.".into()))?;
        match (result, idem) {
            (Ok(p), _) => Ok(p),
            // lost a race with a concurrent request that used the same clientToken
            (Err(LedgerError::DuplicateToken), Some(i)) => {
                match self.store().payment_by_token(&account, &i.token).await? {
                    Some(p) => replay_payment(p, i),
                    None => Err(CoreError::Internal("idempotency record vanished".into())),
                }
            }
            (Err(LedgerError::DuplicateToken), None) => {
                Err(CoreError::Internal("duplicate payment".into()))
            }
            (Err(LedgerError::Refused(reason, name, e)), _) => {
                Err(self.record_refusal(&audit, reason, name, e).await)
            }
            (Err(LedgerError::Core(e)), _) => Err(e),
        }
    }

    /// Record a refusal for the operator (best effort: a failure to record is logged and
    /// never changes the answer), then give the refusal back. Runs outside the ledger's
    /// transaction, on the refused request's own task.
    async fn record_refusal(
        &self,
        base: &RefusalBase<'_>,
        reason: RefusalReason,
        policy: Option<&'static str>,
        e: CoreError,
    ) -> CoreError {
        if reason == RefusalReason::Policy {
            // Every other reason is counted where its error is made (`refused`).
            purser_metrics::REFUSALS.inc(&[("reason", "policy")]);
        }
        let r = Refusal {
            account_id: base.owner.manager.account_id.clone(),
            id: crate::ids::uuid_v4(),
            manager_id: base.owner.manager.id.clone(),
            user_id: base.owner.user_id.clone(),
            agent_name: base.req.agent_name.clone(),
            session_id: base.req.session_id.clone(),
            instrument_id: base.req.instrument_id.clone(),
            reason,
            policy: policy.map(str::to_string),
            payment_type: base.requirement.payment_type.as_str().into(),
            scheme: base.requirement.scheme.clone(),
            network: base.requirement.network.clone(),
            payee: base.requirement.payee.clone(),
            amount: base.requirement.amount.to_string(),
            value: i64::try_from(base.requirement.debit).unwrap_or(i64::MAX),
            message: e.to_string(),
            created_at: base.at,
        };
        if let Err(err) = self.store().refusal_insert(&r).await {
            tracing::warn!(error = %err, reason = reason.as_str(), "recording a refusal failed");
        }
        e
    }
}

/// What a refusal record is made of.
struct RefusalBase<'a> {
    owner: &'a Owner,
    req: &'a PaymentRequest,
    requirement: &'a payment::Requirement,
    at: time::OffsetDateTime,
}

/// The request field that names a payment's network, for a mismatch with the instrument.
fn network_field(input: &PaymentInput) -> &'static str {
    match input {
        PaymentInput::X402 { .. } => "paymentInput.cryptoX402.payload.network",
        PaymentInput::Mpp { .. } => "paymentInput.mpp.wwwAuthenticateHeaders",
    }
}

/// A kind's failure to build a payment: nothing was reserved, so nothing is released.
fn build_error(e: BuildError) -> CoreError {
    match e {
        BuildError::Input(e) => {
            refused("invalid_input", CoreError::validation(&e.field, e.message))
        }
        BuildError::Chain(e) => refused("chain_error", CoreError::Internal(e.message())),
        BuildError::Signing => refused(
            "signing_failed",
            CoreError::Internal("The payment could not be signed.".into()),
        ),
    }
}

/// The self-custody signer: the instrument's sealed key, opened and zeroized inside
/// `purser-wallet` for each signature.
struct VaultSigner<'a> {
    vault: &'a Vault,
    aad: &'a [u8],
    sealed_key: &'a [u8],
}

#[async_trait::async_trait]
impl PayerSigner for VaultSigner<'_> {
    async fn sign(&self, what: &ToSign) -> Result<Signature, BuildError> {
        sign_with_vault(self.vault, self.aad, self.sealed_key, what)
            .map_err(|()| BuildError::Signing)
    }
}

/// Sign `what` with a sealed self-custody key: secp256k1 over a digest, or ed25519 over
/// a Solana message.
fn sign_with_vault(
    vault: &Vault,
    aad: &[u8],
    sealed_key: &[u8],
    what: &ToSign,
) -> Result<Signature, ()> {
    let signed = match what {
        ToSign::TypedData { digest, .. } | ToSign::EvmTransaction { digest, .. } => vault
            .sign_secp256k1_digest(aad, sealed_key, digest)
            .map(Signature::Secp256k1),
        ToSign::SolanaMessage { message } => vault
            .sign_ed25519(aad, sealed_key, message)
            .map(Signature::Ed25519),
    };
    signed.map_err(|e| tracing::error!(error = %e, "signing failed"))
}

/// Atomic units (6 decimals) as a decimal string, for amounts beyond i64.
fn format_units(units: u128) -> String {
    match i64::try_from(units) {
        Ok(u) => format_usd(u),
        Err(_) => format!("{}.{:06}", units / 1_000_000, units % 1_000_000),
    }
}

/// B25: every payment has a ceiling, whatever its session says (a session without
/// `limits` has no budget, not no ceiling): the largest session cap, 10,000 USD, in the
/// payment's atomic units (USDC: 10,000,000,000).
fn check_payment_ceiling(amount: u128, field: &str) -> CoreResult<()> {
    if amount > crate::money::MAX_PAYMENT as u128 {
        return Err(CoreError::validation(
            field,
            format!(
                "Payment amount exceeds maximum allowed value. Received: {amount}, Maximum: {}",
                crate::money::MAX_PAYMENT
            ),
        ));
    }
    Ok(())
}

fn replay_payment(p: Payment, idem: &Idempotency) -> CoreResult<Payment> {
    if p.fingerprint == Some(idem.fingerprint) {
        Ok(p)
    } else {
        Err(crate::idempotency_mismatch())
    }
}

// ----- the ledger writer ---------------------------------------------------------------

struct SignJob {
    aad: Vec<u8>,
    sealed_key: Vec<u8>,
    unsigned: Box<dyn Unsigned>,
}

/// How a payment reaches the ledger: to be signed by the vault there, or already signed
/// by a remote holder (kept in the process until its debit commits).
enum Signing {
    Vault(SignJob),
    Signed(serde_json::Value),
}

pub(crate) struct Intent {
    payment: Payment,
    /// The user's rolling caps (spending policies), checked with the reservation.
    caps: Option<RollingCaps>,
    sign: Signing,
    reply: oneshot::Sender<Result<Payment, LedgerError>>,
}

enum LedgerError {
    DuplicateToken,
    /// Refused by the reservation's atomic step (session budget, expiry, rolling caps),
    /// with the spending policy's name when one refused it.
    Refused(RefusalReason, Option<&'static str>, CoreError),
    Core(CoreError),
}

/// Start the ledger writer on a thread of its own; returns the queue that feeds it.
///
/// The thread runs its own single-threaded runtime, so a store may drive the payment
/// transaction synchronously (the embedded SQLite store does: its statements and the
/// commit's fsync block this thread, never a worker that serves requests). It ends when
/// the queue closes (every sender dropped).
pub(crate) fn spawn_ledger(store: Arc<dyn Store>, vault: Vault) -> mpsc::Sender<Intent> {
    let (tx, mut rx) = mpsc::channel::<Intent>(4096);
    let run = async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(i) => batch.push(i),
                    Err(_) => break,
                }
            }
            run_batch(&*store, &vault, batch).await;
        }
    };
    let started = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|rt| {
            std::thread::Builder::new()
                .name("purser-ledger".into())
                .spawn(move || rt.block_on(run))
        });
    if let Err(e) = started {
        // The queue's receiver is gone with `run`: every payment is answered with
        // "The payment ledger is not running." (an internal error), nothing is signed.
        tracing::error!(error = %e, "starting the payment ledger failed");
    }
    tx
}

fn internal(msg: &str) -> LedgerError {
    LedgerError::Core(CoreError::Internal(msg.into()))
}

async fn run_batch(store: &dyn Store, vault: &Vault, mut batch: Vec<Intent>) {
    // Lock in one global order (account, manager, user, then the user's spending turn
    // before their sessions) so that writers on several nodes sharing one database never
    // lock two rows in opposite orders (no deadlock); the sort is stable, so payments of
    // one session keep their arrival order.
    batch.sort_by(|a, b| {
        let (a, b) = (&a.payment, &b.payment);
        (&a.account_id, &a.manager_id, &a.user_id, &a.session_id).cmp(&(
            &b.account_id,
            &b.manager_id,
            &b.user_id,
            &b.session_id,
        ))
    });
    let started = std::time::Instant::now();
    let size = batch.len();
    let mut tx = match store.begin_payments().await {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "opening the payment transaction failed");
            for i in batch {
                let _ = i
                    .reply
                    .send(Err(internal("The payment could not be recorded.")));
            }
            return;
        }
    };
    // A clientToken seen earlier in the batch waits for it (answered as a replay).
    let mut candidates: Vec<Intent> = Vec::with_capacity(batch.len());
    let mut done: Done = Vec::new();
    let mut tokens: HashSet<(String, String)> = HashSet::new();
    for intent in batch {
        let p = &intent.payment;
        if let Some(t) = &p.client_token
            && !tokens.insert((p.account_id.clone(), t.clone()))
        {
            done.push((intent.reply, Err(LedgerError::DuplicateToken)));
        } else {
            candidates.push(intent);
        }
    }
    // Reserve per session: first the session's whole share of the batch in one atomic
    // statement; only if that does not fit, each payment in arrival order, so that exactly
    // the payments that fit go through.
    let mut reserved: Vec<Intent> = Vec::with_capacity(candidates.len());
    // Each capped user's spend in the rolling windows, read once per batch under the
    // user's turn and kept up to date with what this batch reserves.
    let mut spent = UserSpend {
        active: candidates.iter().any(|i| i.caps.is_some()),
        ..UserSpend::default()
    };
    let mut rest = candidates.into_iter().peekable();
    while let Some(first) = rest.next() {
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|n| {
            n.payment.account_id == group[0].payment.account_id
                && n.payment.session_id == group[0].payment.session_id
        }) {
            group.push(next);
        }
        let p = &group[0].payment;
        let (account, session, at) = (p.account_id.clone(), p.session_id.clone(), p.created_at);
        let total: i64 = group.iter().map(|i| i.payment.debited).sum();
        // Spending policies' rolling caps, in this same transaction: the whole group fits
        // the caps, or its payments go one by one below.
        let capped = match spent.load(&mut *tx, &group).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "reading a user's spend failed");
                return fail_all(reserved.into_iter().chain(group), done);
            }
        };
        let group_fits = !capped || spent.fits(&group, group.iter().map(|i| i.payment.value).sum());
        let outcome = if group_fits {
            match tx.reserve(&account, &session, total, at).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!(error = %e, "reserving budget failed");
                    return fail_all(reserved.into_iter().chain(group), done);
                }
            }
        } else {
            // (not asked: decided one by one below)
            Reserve::Insufficient { remaining: 0 }
        };
        match outcome {
            Reserve::Reserved { .. } => {
                spent.took(&group);
                reserved.extend(group)
            }
            Reserve::Insufficient { .. } if group.len() > 1 || !group_fits => {
                for intent in group {
                    let p = &intent.payment;
                    if let Some((name, e)) = spent.refusal(&intent) {
                        let refused = LedgerError::Refused(RefusalReason::Policy, Some(name), e);
                        done.push((intent.reply, Err(refused)));
                        continue;
                    }
                    match tx
                        .reserve(&account, &session, p.debited, p.created_at)
                        .await
                    {
                        Ok(Reserve::Reserved { .. }) => {
                            spent.took(std::slice::from_ref(&intent));
                            reserved.push(intent)
                        }
                        Ok(refused) => {
                            let e = refusal(&session, refused, p.debited);
                            done.push((intent.reply, Err(e)));
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "reserving budget failed");
                            return fail_all(reserved.into_iter().chain([intent]), done);
                        }
                    }
                }
            }
            refused => {
                for intent in group {
                    let e = refusal(&session, refused, intent.payment.debited);
                    done.push((intent.reply, Err(e)));
                }
            }
        }
    }
    let reserved_at = started.elapsed();
    // Sign the reserved ones, in parallel across cores. If a signing worker dies, its
    // payments are lost with it: roll the whole batch back rather than keep their budget.
    let Some(signed) = sign_all(vault, reserved).await else {
        return drop_batch(Vec::new(), done);
    };
    let mut to_record: Vec<(oneshot::Sender<Result<Payment, LedgerError>>, Payment)> =
        Vec::with_capacity(signed.len());
    let mut signed = signed.into_iter();
    while let Some((intent, sig)) = signed.next() {
        let mut p = intent.payment;
        match sig {
            Ok(output) => {
                p.output = output.to_string();
                to_record.push((intent.reply, p));
            }
            Err(()) => {
                if let Err(e) = tx.release(&p.account_id, &p.session_id, p.debited).await {
                    tracing::error!(error = %e, "releasing a reservation failed");
                    to_record.push((intent.reply, p));
                    to_record.extend(signed.map(|(i, _)| (i.reply, i.payment)));
                    return drop_batch(to_record, done);
                }
                done.push((
                    intent.reply,
                    Err(internal("The payment could not be signed.")),
                ));
            }
        }
    }
    let signed_at = started.elapsed();
    let payments: Vec<Payment> = to_record.iter().map(|(_, p)| p.clone()).collect();
    let outcome = match tx.record_all(&payments).await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "recording payments failed");
            return drop_batch(to_record, done);
        }
    };
    let mut recorded = Vec::with_capacity(to_record.len());
    let mut outcomes = to_record.into_iter().zip(outcome);
    while let Some(((reply, p), ok)) = outcomes.next() {
        if ok {
            recorded.push((reply, p));
            continue;
        }
        // The token was committed by an earlier batch: give the budget back and answer
        // with the original payment.
        if let Err(e) = tx.release(&p.account_id, &p.session_id, p.debited).await {
            tracing::error!(error = %e, "releasing a reservation failed");
            recorded.push((reply, p));
            recorded.extend(outcomes.map(|(r, _)| r));
            return drop_batch(recorded, done);
        }
        done.push((reply, Err(LedgerError::DuplicateToken)));
    }
    let recorded_at = started.elapsed();
    // One durable commit for the whole batch; nothing signed leaves before it.
    if let Err(e) = tx.commit().await {
        tracing::error!(error = %e, "committing the payment batch failed");
        return drop_batch(recorded, done);
    }
    batch_metrics(size, &recorded, recorded_at, started.elapsed());
    tracing::debug!(
        target: "purser::ledger",
        size,
        signed = recorded.len(),
        reserve_us = reserved_at.as_micros() as u64,
        sign_us = (signed_at - reserved_at).as_micros() as u64,
        record_us = (recorded_at - signed_at).as_micros() as u64,
        commit_us = (started.elapsed() - recorded_at).as_micros() as u64,
        "payment batch committed"
    );
    for (reply, p) in recorded {
        tracing::debug!(payment_id = %p.id, session_id = %p.session_id, amount = %p.amount, network = %p.network, "payment signed");
        let _ = reply.send(Ok(p));
    }
    for (reply, r) in done {
        let _ = reply.send(r);
    }
}

/// The ledger's metrics, once per committed batch: its size and times, and the payments
/// it recorded, summed per (type, scheme, network) before touching the registry.
fn batch_metrics(
    size: usize,
    recorded: &[(oneshot::Sender<Result<Payment, LedgerError>>, Payment)],
    recorded_at: std::time::Duration,
    total: std::time::Duration,
) {
    purser_metrics::LEDGER_BATCH.observe(&[], size as f64);
    purser_metrics::LEDGER_COMMIT_SECONDS.observe(&[], (total - recorded_at).as_secs_f64());
    purser_metrics::LEDGER_BATCH_SECONDS.observe(&[], total.as_secs_f64());
    let mut sums: Vec<(&str, &str, &str, u128, u128)> = Vec::new();
    for (_, p) in recorded {
        let amount = p.amount.parse::<u128>().unwrap_or(0);
        match sums
            .iter_mut()
            .find(|(t, s, n, _, _)| *t == p.payment_type && *s == p.scheme && *n == p.network)
        {
            Some(entry) => {
                entry.3 += 1;
                entry.4 += amount;
            }
            None => sums.push((&p.payment_type, &p.scheme, &p.network, 1, amount)),
        }
    }
    for (payment_type, scheme, network, count, amount) in sums {
        let labels = [
            ("type", payment_type),
            ("scheme", scheme),
            ("network", network),
        ];
        purser_metrics::PAYMENTS.add(&labels, count);
        purser_metrics::PAYMENT_AMOUNT.add(&labels, amount);
    }
}

type Done = Vec<(
    oneshot::Sender<Result<Payment, LedgerError>>,
    Result<Payment, LedgerError>,
)>;

/// The transaction is abandoned (rolled back): nothing of it happened.
fn drop_batch(recorded: Vec<(oneshot::Sender<Result<Payment, LedgerError>>, Payment)>, done: Done) {
    for (reply, _) in recorded {
        let _ = reply.send(Err(internal("The payment could not be recorded.")));
    }
    for (reply, r) in done {
        // refusals (budget, expiry) stay true after a rollback; successes did not happen
        let _ = reply.send(r);
    }
}

fn fail_all(pending: impl IntoIterator<Item = Intent>, done: Done) {
    for i in pending {
        let _ = i
            .reply
            .send(Err(internal("The payment could not be recorded.")));
    }
    for (reply, r) in done {
        let _ = reply.send(r);
    }
}

/// The answer to a payment whose reservation was refused.
fn refusal(session_id: &str, outcome: Reserve, requested: i64) -> LedgerError {
    match outcome {
        Reserve::Insufficient { remaining } => LedgerError::Refused(
            RefusalReason::SessionBudget,
            None,
            insufficient(session_id, remaining, requested),
        ),
        Reserve::Expired => LedgerError::Refused(
            RefusalReason::SessionExpired,
            None,
            session_expired(session_id),
        ),
        // (a reservation that went through is never a refusal; a session deleted since
        // the payment's read is not a refusal an operator needs to see)
        Reserve::NotFound | Reserve::Reserved { .. } => {
            LedgerError::Core(payment_session_not_found(session_id))
        }
    }
}

/// The rolling spend of each capped user of a batch (see `crate::policies`).
#[derive(Default)]
struct UserSpend {
    /// Whether any payment of the batch has rolling caps (if none, this costs nothing).
    active: bool,
    users: std::collections::HashMap<(String, String, String), Spent>,
    /// What this batch reserved for users not read yet (their policy changed within the
    /// batch): counted when they are.
    pending: std::collections::HashMap<(String, String, String), i64>,
}

impl UserSpend {
    fn key(p: &Payment) -> (String, String, String) {
        (
            p.account_id.clone(),
            p.manager_id.clone(),
            p.user_id.clone(),
        )
    }

    /// Whether the group (one session's payments: one user) has rolling caps; if so, the
    /// user's turn is taken and their spend read, once per transaction.
    async fn load(
        &mut self,
        tx: &mut dyn crate::store::PaymentTx,
        group: &[Intent],
    ) -> Result<bool, StoreError> {
        if group.iter().all(|i| i.caps.is_none()) {
            return Ok(false);
        }
        let p = &group[0].payment;
        let key = Self::key(p);
        if !self.users.contains_key(&key) {
            let (day, month) = crate::policies::windows(p.created_at);
            let (d, m) = tx
                .lock_user_spent(
                    &p.account_id,
                    &p.manager_id,
                    &p.user_id,
                    p.created_at,
                    day,
                    month,
                )
                .await?;
            let mut spent = Spent { day: d, month: m };
            spent.add(self.pending.remove(&key).unwrap_or(0));
            self.users.insert(key, spent);
        }
        Ok(true)
    }

    fn spent(&self, p: &Payment) -> Spent {
        self.users.get(&Self::key(p)).copied().unwrap_or_default()
    }

    /// Whether every payment's caps leave room for `value` more.
    fn fits(&self, group: &[Intent], value: i64) -> bool {
        group.iter().all(|i| {
            i.caps.is_none_or(|c| {
                c.refusal(&i.payment.user_id, self.spent(&i.payment), value)
                    .is_none()
            })
        })
    }

    fn refusal(&self, i: &Intent) -> Option<(&'static str, CoreError)> {
        i.caps?
            .refusal(&i.payment.user_id, self.spent(&i.payment), i.payment.value)
    }

    /// Count what was just reserved.
    fn took(&mut self, reserved: &[Intent]) {
        if !self.active {
            return;
        }
        for i in reserved {
            let key = Self::key(&i.payment);
            match self.users.get_mut(&key) {
                Some(s) => s.add(i.payment.value),
                None => *self.pending.entry(key).or_default() += i.payment.value,
            }
        }
    }
}

/// Sign on this thread and, for a batch of more than one payment, on as many blocking
/// threads as there are further cores, each taking an equal share.
async fn sign_all(
    vault: &Vault,
    items: Vec<Intent>,
) -> Option<Vec<(Intent, Result<serde_json::Value, ()>)>> {
    let sign = |vault: &Vault, part: Vec<Intent>| {
        part.into_iter()
            .map(|i| {
                let s = sign_one(vault, &i.sign);
                (i, s)
            })
            .collect::<Vec<_>>()
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    let chunk = items.len().div_ceil(workers);
    let mut items = items;
    let mut rest = items.split_off(chunk.min(items.len()));
    let mut handles = Vec::new();
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        let part = std::mem::replace(&mut rest, tail);
        let vault = vault.clone();
        handles.push(tokio::task::spawn_blocking(move || sign(&vault, part)));
    }
    // (a panic here must not end the ledger thread: it fails this batch like a dead worker)
    let own = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sign(vault, items)));
    let mut failed = own.is_err();
    if failed {
        tracing::error!("signing on the ledger thread panicked");
    }
    let mut out = own.unwrap_or_default();
    for h in handles {
        match h.await {
            Ok(v) => out.extend(v),
            Err(e) => {
                tracing::error!(error = %e, "a signing worker failed");
                failed = true;
            }
        }
    }
    if failed {
        for (i, _) in out {
            let _ = i
                .reply
                .send(Err(internal("The payment could not be signed.")));
        }
        return None;
    }
    Some(out)
}

/// Sign one payment and turn the signature into its output (a remote holder's payment
/// arrives signed).
fn sign_one(vault: &Vault, sign: &Signing) -> Result<serde_json::Value, ()> {
    let job = match sign {
        Signing::Vault(job) => job,
        Signing::Signed(output) => return Ok(output.clone()),
    };
    let signature = sign_with_vault(vault, &job.aad, &job.sealed_key, &job.unsigned.to_sign())?;
    job.unsigned.finish(&signature).ok_or_else(|| {
        tracing::error!("a payment was signed by a key of the wrong kind");
    })
}
