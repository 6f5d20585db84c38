//! The emulator's state: one SQLite file in its directory, so a developer's end users,
//! users and wallets survive a restart. Wallet private keys are sealed with
//! `purser_wallet::Vault` under the emulator's OWN master key (`emulator.key` beside the
//! database, mode 0600) — never Purser's key, never Purser's database.
use std::path::Path;
use std::sync::Mutex;

use purser_wallet::{KeyKind, MasterKey, Vault};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::error::ApiError;

pub const DB_FILE: &str = "vendor-emulator.db";
pub const KEY_FILE: &str = "emulator.key";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS cdp_settings (
    project_id TEXT PRIMARY KEY,
    delegated_signing_enabled INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cdp_end_users (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    auth_methods TEXT NOT NULL,
    created_at TEXT NOT NULL,
    delegation_expires_at INTEGER,
    delegation_revoked INTEGER NOT NULL DEFAULT 0,
    UNIQUE (project_id, user_id)
);
CREATE TABLE IF NOT EXISTS cdp_auth_methods (
    project_id TEXT NOT NULL,
    method_key TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (project_id, method_key)
);
CREATE TABLE IF NOT EXISTS privy_users (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id TEXT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    linked TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS privy_linked (
    app_id TEXT NOT NULL,
    link_key TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (app_id, link_key)
);
CREATE TABLE IF NOT EXISTS privy_key_quorums (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    public_key TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS wallets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    vendor TEXT NOT NULL,
    scope TEXT NOT NULL,
    owner_user TEXT,
    owner_quorum TEXT,
    signers TEXT NOT NULL DEFAULT '[]',
    chain TEXT NOT NULL,
    address TEXT NOT NULL,
    sealed_key BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    policy_deny INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS wallets_owner ON wallets (vendor, scope, owner_user);
CREATE INDEX IF NOT EXISTS wallets_address ON wallets (vendor, scope, address);
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
"#;

/// How long an idempotency key is remembered (both vendors document 24 hours).
pub const IDEMPOTENCY_SECONDS: i64 = 24 * 3600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    Evm,
    Solana,
}

impl Chain {
    pub fn as_str(self) -> &'static str {
        match self {
            Chain::Evm => "evm",
            Chain::Solana => "solana",
        }
    }
    fn parse(s: &str) -> Chain {
        if s == "solana" {
            Chain::Solana
        } else {
            Chain::Evm
        }
    }
}

/// A wallet (a CDP end-user account or a Privy wallet).
#[derive(Clone, Debug)]
pub struct Wallet {
    pub id: String,
    pub owner_user: Option<String>,
    pub owner_quorum: Option<String>,
    pub signers: Value,
    pub chain: Chain,
    pub address: String,
    pub sealed_key: Vec<u8>,
    pub created_at_ms: i64,
    pub policy_deny: bool,
}

pub struct Store {
    conn: Mutex<Connection>,
    vault: Vault,
}

/// A stored reply to replay.
pub struct Replay {
    pub status: u16,
    pub body: Value,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, String> {
        let (master, _) = MasterKey::load_or_create(&dir.join(KEY_FILE))
            .map_err(|e| format!("the emulator key in {}: {e}", dir.display()))?;
        let path = dir.join(DB_FILE);
        let conn =
            Connection::open(&path).map_err(|e| format!("opening the emulator database: {e}"))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("restricting the emulator database: {e}"))?;
        }
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;")
            .and_then(|_| conn.execute_batch(SCHEMA))
            .map_err(|e| format!("preparing the emulator database: {e}"))?;
        Ok(Store {
            conn: Mutex::new(conn),
            vault: Vault::new(master),
        })
    }

    /// Runs `f` in one transaction.
    pub fn tx<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    fn aad(id: &str) -> Vec<u8> {
        format!("purser-vendor-emu:wallet:{id}").into_bytes()
    }

    /// A new key for wallet `id`: its address and sealed key.
    pub fn new_key(&self, id: &str, chain: Chain) -> (String, Vec<u8>) {
        let kind = match chain {
            Chain::Evm => KeyKind::Secp256k1,
            Chain::Solana => KeyKind::Ed25519,
        };
        let w = self.vault.create_wallet(kind, &Self::aad(id));
        (w.address, w.sealed_key.clone())
    }

    pub fn sign_digest(&self, w: &Wallet, digest: &[u8; 32]) -> Result<[u8; 65], ApiError> {
        self.vault
            .sign_secp256k1_digest(&Self::aad(&w.id), &w.sealed_key, digest)
            .map_err(|_| ApiError::internal("The wallet's key could not be opened."))
    }

    pub fn sign_ed25519(&self, w: &Wallet, message: &[u8]) -> Result<[u8; 64], ApiError> {
        self.vault
            .sign_ed25519(&Self::aad(&w.id), &w.sealed_key, message)
            .map_err(|_| ApiError::internal("The wallet's key could not be opened."))
    }
}

pub fn insert_wallet(
    tx: &rusqlite::Transaction<'_>,
    vendor: &str,
    scope: &str,
    w: &Wallet,
) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO wallets (id, vendor, scope, owner_user, owner_quorum, signers, chain, address, sealed_key, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            w.id,
            vendor,
            scope,
            w.owner_user,
            w.owner_quorum,
            w.signers.to_string(),
            w.chain.as_str(),
            w.address,
            w.sealed_key,
            w.created_at_ms
        ],
    )?;
    Ok(())
}

const WALLET_COLUMNS: &str =
    "id, owner_user, owner_quorum, signers, chain, address, sealed_key, created_at_ms, policy_deny";

fn wallet_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Wallet> {
    let signers: String = r.get(3)?;
    let chain: String = r.get(4)?;
    Ok(Wallet {
        id: r.get(0)?,
        owner_user: r.get(1)?,
        owner_quorum: r.get(2)?,
        signers: serde_json::from_str(&signers).unwrap_or(Value::Array(vec![])),
        chain: Chain::parse(&chain),
        address: r.get(5)?,
        sealed_key: r.get(6)?,
        created_at_ms: r.get(7)?,
        policy_deny: r.get::<_, i64>(8)? != 0,
    })
}

pub fn wallet_by_id(
    tx: &rusqlite::Transaction<'_>,
    vendor: &str,
    scope: &str,
    id: &str,
) -> Result<Option<Wallet>, ApiError> {
    Ok(tx
        .query_row(
            &format!(
                "SELECT {WALLET_COLUMNS} FROM wallets WHERE vendor = ?1 AND scope = ?2 AND id = ?3"
            ),
            params![vendor, scope, id],
            wallet_row,
        )
        .optional()?)
}

pub fn wallets_of(
    tx: &rusqlite::Transaction<'_>,
    vendor: &str,
    scope: &str,
    owner: &str,
) -> Result<Vec<Wallet>, ApiError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {WALLET_COLUMNS} FROM wallets WHERE vendor = ?1 AND scope = ?2 AND owner_user = ?3 ORDER BY seq"
    ))?;
    let rows = stmt.query_map(params![vendor, scope, owner], wallet_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn all_wallets(
    tx: &rusqlite::Transaction<'_>,
    vendor: &str,
    scope: &str,
) -> Result<Vec<Wallet>, ApiError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {WALLET_COLUMNS} FROM wallets WHERE vendor = ?1 AND scope = ?2 ORDER BY seq"
    ))?;
    let rows = stmt.query_map(params![vendor, scope], wallet_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn set_policy_deny(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    deny: bool,
) -> Result<bool, ApiError> {
    Ok(tx.execute(
        "UPDATE wallets SET policy_deny = ?2 WHERE vendor = 'privy' AND id = ?1",
        params![id, deny as i64],
    )? == 1)
}

/// The stored reply for (scope, key): `Ok(Some)` to replay, `Err` when the key was used
/// for another request.
pub fn idempotent_lookup(
    tx: &rusqlite::Transaction<'_>,
    scope: &str,
    key: &str,
    fingerprint: &str,
    now: i64,
    conflict: ApiError,
) -> Result<Option<Replay>, ApiError> {
    tx.execute(
        "DELETE FROM idempotency WHERE created_at < ?1",
        params![now - IDEMPOTENCY_SECONDS],
    )?;
    let row: Option<(String, u16, String)> = tx
        .query_row(
            "SELECT fingerprint, status, body FROM idempotency WHERE scope = ?1 AND key = ?2",
            params![scope, key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    match row {
        None => Ok(None),
        Some((f, _, _)) if f != fingerprint => Err(conflict),
        Some((_, status, body)) => Ok(Some(Replay {
            status,
            body: serde_json::from_str(&body).unwrap_or(Value::Null),
        })),
    }
}

pub fn idempotent_record(
    tx: &rusqlite::Transaction<'_>,
    scope: &str,
    key: &str,
    fingerprint: &str,
    status: u16,
    body: &Value,
    now: i64,
) -> Result<(), ApiError> {
    tx.execute(
        "INSERT OR IGNORE INTO idempotency (scope, key, fingerprint, status, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![scope, key, fingerprint, status, body.to_string(), now],
    )?;
    Ok(())
}
