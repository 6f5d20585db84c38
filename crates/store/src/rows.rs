//! Rows to domain records, written once for every way this crate reads a row: sqlx rows
//! of either engine (see `Cols` in sql.rs) and the plain SQLite rows of the payment hot
//! path (sqlite/direct.rs).
use purser_core::domain::*;
use purser_core::store::{StoreError, StoreResult};

use crate::codec::{parse, tags_from_text, time};

/// Typed access to the columns of one table within a row, by column name.
pub(crate) trait Columns {
    fn text(&self, name: &str) -> StoreResult<String>;
    fn text_opt(&self, name: &str) -> StoreResult<Option<String>>;
    fn int(&self, name: &str) -> StoreResult<i64>;
    fn int_opt(&self, name: &str) -> StoreResult<Option<i64>>;
    /// An `INTEGER` column (32 bits on PostgreSQL).
    fn int32(&self, name: &str) -> StoreResult<i32>;
    fn blob(&self, name: &str) -> StoreResult<Vec<u8>>;
    fn blob_opt(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
}

/// `impl Columns for $t` through the type's own `fn get<T>(&self, name) -> StoreResult<T>`
/// (each driver bounds `T` by its own decoding trait).
macro_rules! columns_through_get {
    ($t:ty) => {
        impl crate::rows::Columns for $t {
            fn text(&self, name: &str) -> StoreResult<String> {
                self.get(name)
            }
            fn text_opt(&self, name: &str) -> StoreResult<Option<String>> {
                self.get(name)
            }
            fn int(&self, name: &str) -> StoreResult<i64> {
                self.get(name)
            }
            fn int_opt(&self, name: &str) -> StoreResult<Option<i64>> {
                self.get(name)
            }
            fn int32(&self, name: &str) -> StoreResult<i32> {
                self.get(name)
            }
            fn blob(&self, name: &str) -> StoreResult<Vec<u8>> {
                self.get(name)
            }
            fn blob_opt(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
                self.get(name)
            }
        }
    };
}
pub(crate) use columns_through_get;

pub(crate) fn manager(r: &impl Columns) -> StoreResult<Manager> {
    let url = r.text_opt("authorizer_discovery_url")?;
    let enc = r.text_opt("authorizer_encoded")?;
    Ok(Manager {
        account_id: r.text("account_id")?,
        id: r.text("id")?,
        name: r.text("name")?,
        description: r.text_opt("description")?,
        authorizer_type: parse(
            "authorizer_type",
            &r.text("authorizer_type")?,
            AuthorizerType::parse,
        )?,
        authorizer: match (url, enc) {
            (Some(discovery_url), Some(encoded)) => Some(AuthorizerConfig {
                discovery_url,
                encoded,
            }),
            _ => None,
        },
        role_arn: r.text("role_arn")?,
        kms_key_arn: r.text_opt("kms_key_arn")?,
        tags: tags_from_text(&r.text("tags")?)?,
        status: parse("status", &r.text("status")?, ResourceStatus::parse)?,
        created_at: time(r.int("created_at")?),
        updated_at: time(r.int("updated_at")?),
        transition_at: r.int_opt("transition_at")?.map(time),
    })
}

pub(crate) fn session(r: &impl Columns) -> StoreResult<Session> {
    Ok(Session {
        account_id: r.text("account_id")?,
        id: r.text("id")?,
        manager_id: r.text("manager_id")?,
        user_id: r.text("user_id")?,
        expiry_minutes: r.int32("expiry_minutes")?,
        expires_at: time(r.int("expires_at")?),
        cap: r.int_opt("cap")?,
        spent: r.int("spent")?,
        created_at: time(r.int("created_at")?),
        updated_at: time(r.int("updated_at")?),
    })
}

pub(crate) fn instrument(r: &impl Columns) -> StoreResult<Instrument> {
    Ok(Instrument {
        account_id: r.text("account_id")?,
        id: r.text("id")?,
        manager_id: r.text("manager_id")?,
        connector_id: r.text("connector_id")?,
        user_id: r.text("user_id")?,
        network: parse("network", &r.text("network")?, Network::parse)?,
        wallet_address: r.text("wallet_address")?,
        linked_accounts: LinkedAccounts {
            masked: r.text("linked_masked")?,
            sealed: r.blob("linked_sealed")?,
        },
        sealed_key: r.blob("sealed_key")?,
        holder: holder_from_text(r.text_opt("holder")?)?,
        status: parse("status", &r.text("status")?, InstrumentStatus::parse)?,
        version: r.int("version")?,
        created_at: time(r.int("created_at")?),
        updated_at: time(r.int("updated_at")?),
    })
}

pub(crate) fn payment(r: &impl Columns) -> StoreResult<Payment> {
    Ok(Payment {
        account_id: r.text("account_id")?,
        id: r.text("id")?,
        session_id: r.text("session_id")?,
        instrument_id: r.text("instrument_id")?,
        manager_id: r.text("manager_id")?,
        user_id: r.text("user_id")?,
        client_token: r.text_opt("client_token")?,
        fingerprint: r
            .blob_opt("fingerprint")?
            .map(|f| {
                f.try_into()
                    .map_err(|_| StoreError::Backend("bad fingerprint column".into()))
            })
            .transpose()?,
        payment_type: r.text("payment_type")?,
        version: r.text("version")?,
        scheme: r.text("scheme")?,
        network: r.text("network")?,
        payer: r.text("payer")?,
        payee: r.text("payee")?,
        asset: r.text("asset")?,
        amount: r.text("amount")?,
        debited: r.int("debited")?,
        value: r.int("usd_value")?,
        agent_name: r.text_opt("agent_name")?,
        output: r.text("output")?,
        created_at: time(r.int("created_at")?),
    })
}

/// What one row of `PAYMENT_CONTEXT_SQL` holds, given the columns of each of its tables
/// (a LEFT JOIN that found nothing leaves that table's columns NULL).
pub(crate) fn payment_context(
    m: &impl Columns,
    s: &impl Columns,
    i: &impl Columns,
    p: &impl Columns,
    pm: &impl Columns,
    pu: &impl Columns,
) -> StoreResult<purser_core::store::PaymentContext> {
    Ok(purser_core::store::PaymentContext {
        manager: Some(manager(m)?),
        session: present(s)?.then(|| session(s)).transpose()?,
        instrument: present(i)?.then(|| instrument(i)).transpose()?,
        replay: present(p)?.then(|| payment(p)).transpose()?,
        manager_policy: pm
            .text_opt("manager_id")?
            .is_some()
            .then(|| policy(pm))
            .transpose()?,
        user_policy: pu
            .text_opt("manager_id")?
            .is_some()
            .then(|| policy(pu))
            .transpose()?,
    })
}

fn list(r: &impl Columns, name: &str) -> StoreResult<Option<Vec<String>>> {
    r.text_opt(name)?
        .map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| StoreError::Backend(format!("bad {name} column: {e}")))
        })
        .transpose()
}

pub(crate) fn policy(r: &impl Columns) -> StoreResult<SpendingPolicy> {
    Ok(SpendingPolicy {
        daily_cap: r.int_opt("daily_cap")?,
        monthly_cap: r.int_opt("monthly_cap")?,
        max_per_payment: r.int_opt("max_per_payment")?,
        payee_allow: list(r, "payee_allow")?,
        payee_deny: list(r, "payee_deny")?,
    })
}

pub(crate) fn stored_policy(r: &impl Columns) -> StoreResult<StoredPolicy> {
    let user = r.text("user_id")?;
    Ok(StoredPolicy {
        account_id: r.text("account_id")?,
        manager_id: r.text("manager_id")?,
        user_id: (!user.is_empty()).then_some(user),
        policy: policy(r)?,
        updated_at: time(r.int("updated_at")?),
    })
}

pub(crate) fn refusal(r: &impl Columns) -> StoreResult<Refusal> {
    Ok(Refusal {
        account_id: r.text("account_id")?,
        id: r.text("id")?,
        manager_id: r.text("manager_id")?,
        user_id: r.text("user_id")?,
        agent_name: r.text_opt("agent_name")?,
        session_id: r.text("session_id")?,
        instrument_id: r.text("instrument_id")?,
        reason: parse("reason", &r.text("reason")?, RefusalReason::parse)?,
        policy: r.text_opt("policy")?,
        payment_type: r.text("payment_type")?,
        scheme: r.text("scheme")?,
        network: r.text("network")?,
        payee: r.text("payee")?,
        amount: r.text("amount")?,
        value: r.int("usd_value")?,
        message: r.text("message")?,
        created_at: time(r.int("created_at")?),
    })
}

fn present(r: &impl Columns) -> StoreResult<bool> {
    Ok(r.text_opt("id")?.is_some())
}

/// The `holder` column: NULL for self-custody, `<user id> <wallet id>` for a vendor's
/// wallet (vendor ids carry no spaces).
pub(crate) fn holder_to_text(h: &WalletHolder) -> Option<String> {
    match h {
        WalletHolder::SelfCustody => None,
        WalletHolder::Vendor { user_id, wallet_id } => Some(format!("{user_id} {wallet_id}")),
    }
}

fn holder_from_text(t: Option<String>) -> StoreResult<WalletHolder> {
    match t {
        None => Ok(WalletHolder::SelfCustody),
        Some(t) => match t.split_once(' ') {
            Some((u, w)) if !u.is_empty() && !w.is_empty() => Ok(WalletHolder::Vendor {
                user_id: u.to_string(),
                wallet_id: w.to_string(),
            }),
            _ => Err(StoreError::Backend(
                "a stored wallet holder is malformed".into(),
            )),
        },
    }
}
