//! Key care: which master key a database is sealed under, checking that every sealed
//! value opens, and re-sealing every data key under a new master key.
//!
//! The database says which master key it is sealed under in two `purser_meta` entries: a
//! canary value sealed under the key (`master-key-canary`) and the key's public id
//! (`master-key-id`, [`purser_wallet::MasterKey::key_id`]). A rotation replaces every
//! wrapped data key, the canary and the id in ONE transaction (`Store::reseal_all`), so
//! the database is, at every instant, wholly sealed under the old key or wholly under the
//! new one; where the new key lives meanwhile is the binary's business (crates/purser).
use crate::control::ControlPlane;
use crate::domain::Network;
use crate::instruments::{key_aad, linked_aad};
use crate::store::{SealedKind, SealedRow, Store, StoreError, StoreResult};
use purser_wallet::{KeyKind, Vault};

const CANARY_KEY: &str = "master-key-canary";
const CANARY_AAD: &[u8] = b"purser/master-key-canary";
const CANARY_VALUE: &[u8] = b"purser";
const KEY_ID: &str = "master-key-id";
/// Sealed values read per page by the check.
const PAGE: usize = 200;

/// The associated data a sealed value is bound to: the identity of its record.
pub fn aad(row: &SealedRow) -> Vec<u8> {
    match row.kind {
        SealedKind::ProviderSecrets => ControlPlane::provider_aad(&row.account_id, &row.id),
        SealedKind::WalletKey => key_aad(&row.account_id, &row.id),
        SealedKind::LinkedAccounts => linked_aad(&row.account_id, &row.id),
    }
}

/// Which key a database is sealed under, as far as a given vault can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sealing {
    /// No canary yet: a database never served from.
    Fresh,
    /// The vault's key opens the canary.
    Opens,
    /// It does not; the id recorded in the database, when there is one.
    Other { key_id: Option<String> },
}

/// Read (never write) which key the database is sealed under.
pub async fn sealing(store: &dyn Store, vault: &Vault) -> StoreResult<Sealing> {
    let Some(canary) = store.meta_get(CANARY_KEY).await? else {
        return Ok(Sealing::Fresh);
    };
    if opens_canary(vault, &canary) {
        return Ok(Sealing::Opens);
    }
    let key_id = store
        .meta_get(KEY_ID)
        .await?
        .and_then(|v| String::from_utf8(v).ok());
    Ok(Sealing::Other { key_id })
}

fn opens_canary(vault: &Vault, canary: &[u8]) -> bool {
    matches!(vault.open(CANARY_AAD, canary), Ok(v) if v.as_slice() == CANARY_VALUE)
}

/// Refuse to serve with a master key other than the one the database is sealed under:
/// the first start seals a canary under the master key (and records the key's id); every
/// start opens it.
pub async fn check_master_key(store: &dyn Store, vault: &Vault) -> Result<(), String> {
    let db = |e: StoreError| format!("reading the master-key check from the database: {e}");
    let stored = store
        .meta_put_if_absent(CANARY_KEY, &vault.seal(CANARY_AAD, CANARY_VALUE))
        .await
        .map_err(db)?;
    if opens_canary(vault, &stored) {
        // Databases created before key ids existed learn theirs here.
        store
            .meta_put_if_absent(KEY_ID, vault.key_id().as_bytes())
            .await
            .map_err(db)?;
        return Ok(());
    }
    let sealed_under = match store.meta_get(KEY_ID).await.map_err(db)? {
        Some(id) => format!(", sealed under {}", String::from_utf8_lossy(&id)),
        None => String::new(),
    };
    Err(format!(
        "the master key does not match the one this database is sealed under (configured key {}{sealed_under}): every node must use the same PURSER_MASTER_KEY (or master.key file)",
        vault.key_id()
    ))
}

/// One sealed value that did not pass the check. Names the record, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: SealedKind,
    pub account_id: String,
    pub id: String,
    pub reason: &'static str,
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    /// Values checked, per kind, in [`SealedKind::ALL`] order.
    pub counts: Vec<(SealedKind, u64)>,
    pub failures: Vec<Failure>,
}

/// Open every sealed value with `vault` (each opened value is dropped, zeroized, at
/// once); a wallet key must also give the address stored beside it.
pub async fn check(store: &dyn Store, vault: &Vault) -> StoreResult<CheckReport> {
    let mut report = CheckReport::default();
    for kind in SealedKind::ALL {
        let mut count = 0u64;
        let mut after: Option<(String, String)> = None;
        loop {
            let page = store
                .sealed_page(
                    kind,
                    after.as_ref().map(|(a, i)| (a.as_str(), i.as_str())),
                    PAGE,
                )
                .await?;
            for row in &page {
                count += 1;
                if let Err(reason) = check_one(vault, row) {
                    report.failures.push(Failure {
                        kind,
                        account_id: row.account_id.clone(),
                        id: row.id.clone(),
                        reason,
                    });
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => {
                    after = Some((last.account_id.clone(), last.id.clone()))
                }
                _ => break,
            }
        }
        report.counts.push((kind, count));
    }
    Ok(report)
}

fn check_one(vault: &Vault, row: &SealedRow) -> Result<(), &'static str> {
    let aad = aad(row);
    match &row.wallet {
        Some((network, address)) => {
            let kind = match network {
                Network::Ethereum => KeyKind::Secp256k1,
                Network::Solana => KeyKind::Ed25519,
            };
            match vault.wallet_address(kind, &aad, &row.value) {
                Ok(a) if &a == address => Ok(()),
                Ok(_) => Err("the key does not give the stored wallet address"),
                Err(_) => Err("does not open under this master key"),
            }
        }
        None => vault
            .open(&aad, &row.value)
            .map(drop)
            .map_err(|_| "does not open under this master key"),
    }
}

/// Why a rotation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(
        "the current master key (key id {configured}) does not open this database{}",
        sealed_under.as_ref().map(|id| format!(" (sealed under key id {id})")).unwrap_or_default()
    )]
    WrongKey {
        configured: String,
        sealed_under: Option<String>,
    },
    #[error("the new master key is the current one")]
    SameKey,
    #[error("{} sealed values do not open under the current master key (run `purser admin check`); nothing was changed", .0.len())]
    Unreadable(Vec<Failure>),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    /// Every value re-sealed (per kind, in [`SealedKind::ALL`] order).
    Done(Vec<(SealedKind, u64)>),
    /// The database was already sealed under the new key (an earlier run committed).
    AlreadyUnderNewKey,
}

/// Re-seal every data key (and the canary) under `new`, in one transaction. Checks
/// first that every value opens under `old`: a value that does not would be lost.
pub async fn rotate(store: &dyn Store, old: &Vault, new: &Vault) -> Result<Rotated, RotateError> {
    if old.key_id() == new.key_id() {
        return Err(RotateError::SameKey);
    }
    match sealing(store, old).await? {
        Sealing::Opens => {}
        Sealing::Fresh => {
            // Nothing sealed yet: seal the canary under the old key first, so that the
            // rotation below has the same shape as any other.
            check_master_key(store, old)
                .await
                .map_err(|e| StoreError::Backend(e.to_string()))?;
        }
        Sealing::Other { key_id } => {
            if sealing(store, new).await? == Sealing::Opens {
                return Ok(Rotated::AlreadyUnderNewKey);
            }
            return Err(RotateError::WrongKey {
                configured: old.key_id(),
                sealed_under: key_id,
            });
        }
    }
    let report = check(store, old).await?;
    if !report.failures.is_empty() {
        return Err(RotateError::Unreadable(report.failures));
    }
    let reseal = |row: &SealedRow| {
        old.rewrap(&aad(row), &row.value, new).map_err(|_| {
            format!(
                "{} {}/{} does not open under the current master key; nothing was changed",
                row.kind.label(),
                row.account_id,
                row.id
            )
        })
    };
    let meta = [
        (CANARY_KEY, new.seal(CANARY_AAD, CANARY_VALUE)),
        (KEY_ID, new.key_id().into_bytes()),
    ];
    store.reseal_all(&reseal, &meta).await?;
    Ok(Rotated::Done(report.counts))
}
