//! SQLite's payment hot path on plain SQLite connections (rusqlite) instead of sqlx.
//!
//! sqlx runs every SQLite connection on a thread of its own and hands each statement to it
//! and back, which under load cost hundreds of µs of wake-ups per statement (BENCHMARKS.md,
//! "Where the time goes"). The two steps every payment takes run here instead:
//!
//! * ProcessPayment's read (`PAYMENT_CONTEXT_SQL`) runs on the calling thread, on a
//!   connection from a small pool of readers: a WAL read never waits for a lock and takes
//!   tens of µs.
//! * The ledger's transaction runs on the one writer connection, synchronously on the
//!   calling thread, `BEGIN IMMEDIATE` to `COMMIT` (the fsync) included: the core's
//!   ledger calls it from a thread of its own (see `spawn_ledger`), so nothing waits for
//!   a hand-off between statements and no request worker ever blocks on it.
//!
//! Same SQL text as the sqlx stores (sql.rs), same row mapping (rows.rs), same contract
//! tests. Parameters are bound by name (`$1`, `$2`, ...): SQLite numbers named
//! parameters in order of first appearance, which is not always their number.
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use purser_core::domain::Payment;
use purser_core::store::{PaymentContext, PaymentTx, Reserve, StoreError, StoreResult};
use rusqlite::types::FromSql;
use rusqlite::{Connection, OpenFlags, OptionalExtension, named_params};
use time::OffsetDateTime;

use crate::codec::ms;
use crate::sql::{
    INSTRUMENT_COLUMNS, LOCK_USER_SQL, MANAGER_COLUMNS, PAYMENT_COLUMNS, PAYMENT_CONTEXT_SQL,
    PAYMENT_INSERT, POLICY_COLUMNS, RELEASE_SQL, RESERVE_SQL, SESSION_BUDGET_SQL, SESSION_COLUMNS,
    USER_SPENT_SQL,
};

/// Idle reader connections kept open (readers beyond these are opened and closed).
const KEEP_READERS: usize = 8;

/// One payment row: `PAYMENT_INSERT` with `$1`..`$22`; a used clientToken inserts nothing.
static INSERT_PAYMENT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let values = (1..=PAYMENT_COLUMNS.len())
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>();
    format!(
        "{}VALUES ({}) ON CONFLICT DO NOTHING",
        PAYMENT_INSERT.as_str(),
        values.join(", ")
    )
});

fn lite(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The direct connections of one SQLite database file.
pub(crate) struct Direct {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    /// The writer connection while no transaction holds it (None before the first one,
    /// or after a failure dropped it: the next transaction opens a new one).
    writer: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct").field("path", &self.path).finish()
    }
}

impl Direct {
    /// `path`: the database file, already created and migrated (and in WAL mode, which
    /// belongs to the file) by the sqlx side of the store.
    pub(crate) fn new(path: PathBuf) -> Self {
        Direct {
            path,
            readers: Mutex::default(),
            writer: Mutex::default(),
        }
    }

    /// A connection with the same settings as the store's sqlx connections.
    fn open(&self) -> StoreResult<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(lite)?;
        conn.busy_timeout(super::BUSY_TIMEOUT).map_err(lite)?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = {};",
            super::WAL_AUTOCHECKPOINT_PAGES
        ))
        .map_err(lite)?;
        Ok(conn)
    }

    pub(crate) fn payment_context(
        &self,
        account_id: &str,
        manager_id: &str,
        session_id: &str,
        instrument_id: &str,
        client_token: Option<&str>,
    ) -> StoreResult<PaymentContext> {
        let popped = self.readers.lock().map_err(poisoned)?.pop();
        let conn = match popped {
            Some(c) => c,
            None => self.open()?,
        };
        let found = read_context(
            &conn,
            account_id,
            manager_id,
            session_id,
            instrument_id,
            client_token,
        );
        let mut readers = self.readers.lock().map_err(poisoned)?;
        if readers.len() < KEEP_READERS {
            readers.push(conn);
        }
        found
    }

    /// Open the ledger's write transaction; `turn` is this process's writer turn, held
    /// until the transaction ends. Blocks while another process writes (busy timeout).
    pub(crate) fn begin(
        self: &Arc<Self>,
        turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> StoreResult<DirectTx> {
        let idle = self.writer.lock().map_err(poisoned)?.take();
        let conn = match idle {
            Some(c) => c,
            None => self.open()?,
        };
        conn.execute_batch("BEGIN IMMEDIATE").map_err(lite)?;
        Ok(DirectTx {
            conn: Some(conn),
            direct: Arc::clone(self),
            _turn: turn,
        })
    }

    fn put_writer(&self, conn: Connection) {
        if let Ok(mut slot) = self.writer.lock() {
            *slot = Some(conn);
        }
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> StoreError {
    StoreError::Backend("a SQLite connection pool lock was poisoned".into())
}

fn read_context(
    conn: &Connection,
    account_id: &str,
    manager_id: &str,
    session_id: &str,
    instrument_id: &str,
    client_token: Option<&str>,
) -> StoreResult<PaymentContext> {
    let mut st = conn
        .prepare_cached(PAYMENT_CONTEXT_SQL.as_str())
        .map_err(lite)?;
    let mut rows = st
        .query(named_params! {
            "$1": account_id,
            "$2": manager_id,
            "$3": session_id,
            "$4": instrument_id,
            "$5": client_token,
        })
        .map_err(lite)?;
    let Some(row) = rows.next().map_err(lite)? else {
        return Ok(PaymentContext::default());
    };
    // The statement selects the manager's, the session's, the instrument's and the
    // payment's columns, in the order of these lists (sql.rs).
    let table = |columns, offset| Cols {
        row,
        columns,
        offset,
    };
    let s_at = MANAGER_COLUMNS.len();
    let i_at = s_at + SESSION_COLUMNS.len();
    let p_at = i_at + INSTRUMENT_COLUMNS.len();
    let pm_at = p_at + PAYMENT_COLUMNS.len();
    let pu_at = pm_at + POLICY_COLUMNS.len();
    crate::rows::payment_context(
        &table(MANAGER_COLUMNS, 0),
        &table(SESSION_COLUMNS, s_at),
        &table(INSTRUMENT_COLUMNS, i_at),
        &table(PAYMENT_COLUMNS, p_at),
        &table(POLICY_COLUMNS, pm_at),
        &table(POLICY_COLUMNS, pu_at),
    )
}

/// One table's columns within a row: `columns` in order from index `offset`.
struct Cols<'a> {
    row: &'a rusqlite::Row<'a>,
    columns: &'static [&'static str],
    offset: usize,
}

impl Cols<'_> {
    fn get<T: FromSql>(&self, name: &str) -> StoreResult<T> {
        let at = self
            .columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| StoreError::Backend(format!("no column {name}")))?;
        self.row.get(self.offset + at).map_err(lite)
    }
}

crate::rows::columns_through_get!(Cols<'_>);

/// The ledger's write transaction on the writer connection. Dropping it without
/// `commit` rolls back.
pub(crate) struct DirectTx {
    conn: Option<Connection>,
    direct: Arc<Direct>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl DirectTx {
    fn conn(&self) -> StoreResult<&Connection> {
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the write transaction has ended".into()))
    }
}

impl Drop for DirectTx {
    fn drop(&mut self) {
        // Runs before `_turn` is released: the next writer finds the connection idle.
        if let Some(conn) = self.conn.take() {
            if !conn.is_autocommit()
                && let Err(e) = conn.execute_batch("ROLLBACK")
            {
                tracing::error!(error = %e, "rolling back the payment transaction failed");
                return; // drop the connection; the next transaction opens a new one
            }
            self.direct.put_writer(conn);
        }
    }
}

#[async_trait]
impl PaymentTx for DirectTx {
    async fn reserve(
        &mut self,
        account_id: &str,
        session_id: &str,
        amount: i64,
        now: OffsetDateTime,
    ) -> StoreResult<Reserve> {
        let now = ms(now);
        let conn = self.conn()?;
        let remaining: Option<Option<i64>> = conn
            .prepare_cached(RESERVE_SQL)
            .map_err(lite)?
            .query_row(
                named_params! { "$1": amount, "$2": now, "$3": account_id, "$4": session_id },
                |r| r.get(0),
            )
            .optional()
            .map_err(lite)?;
        if let Some(remaining) = remaining {
            return Ok(Reserve::Reserved { remaining });
        }
        let budget = conn
            .prepare_cached(SESSION_BUDGET_SQL)
            .map_err(lite)?
            .query_row(named_params! { "$1": account_id, "$2": session_id }, |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(lite)?;
        Ok(crate::sql::refused(budget, now))
    }

    async fn release(
        &mut self,
        account_id: &str,
        session_id: &str,
        amount: i64,
    ) -> StoreResult<()> {
        self.conn()?
            .prepare_cached(RELEASE_SQL)
            .map_err(lite)?
            .execute(named_params! { "$1": amount, "$2": account_id, "$3": session_id })
            .map_err(lite)?;
        Ok(())
    }

    async fn record_all(&mut self, payments: &[Payment]) -> StoreResult<Vec<bool>> {
        let mut st = self
            .conn()?
            .prepare_cached(INSERT_PAYMENT_SQL.as_str())
            .map_err(lite)?;
        payments
            .iter()
            .map(|p| {
                let inserted = st.execute(named_params! {
                    "$1": p.account_id,
                    "$2": p.id,
                    "$3": p.session_id,
                    "$4": p.instrument_id,
                    "$5": p.manager_id,
                    "$6": p.user_id,
                    "$7": p.client_token,
                    "$8": p.fingerprint.as_ref().map(|f| &f[..]),
                    "$9": p.payment_type,
                    "$10": p.version,
                    "$11": p.scheme,
                    "$12": p.network,
                    "$13": p.payer,
                    "$14": p.payee,
                    "$15": p.asset,
                    "$16": p.amount,
                    "$17": p.debited,
                    "$18": p.output,
                    "$19": ms(p.created_at),
                    "$20": p.value,
                    "$21": p.agent_name,
                    "$22": purser_core::policies::payee_key(&p.payee),
                });
                Ok(inserted.map_err(lite)? == 1)
            })
            .collect()
    }

    async fn lock_user_spent(
        &mut self,
        account_id: &str,
        manager_id: &str,
        user_id: &str,
        now: OffsetDateTime,
        after_day: OffsetDateTime,
        after_month: OffsetDateTime,
    ) -> StoreResult<(i64, i64)> {
        let conn = self.conn()?;
        conn.prepare_cached(LOCK_USER_SQL)
            .map_err(lite)?
            .execute(named_params! {
                "$1": account_id, "$2": manager_id, "$3": user_id, "$4": ms(now)
            })
            .map_err(lite)?;
        conn.prepare_cached(USER_SPENT_SQL)
            .map_err(lite)?
            .query_row(
                named_params! {
                    "$1": account_id,
                    "$2": manager_id,
                    "$3": user_id,
                    "$4": ms(after_day),
                    "$5": ms(after_month),
                },
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(lite)
    }

    /// Blocks for the fsync (the ledger calls it from its own thread).
    async fn commit(self: Box<Self>) -> StoreResult<()> {
        let conn = self.conn()?;
        let done = conn.execute_batch("COMMIT");
        if done.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        done.map_err(lite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hot path's connections must be as durable and as strict as sqlx's: a payment
    /// commit that is not `synchronous=FULL` could be lost on power failure.
    #[tokio::test]
    async fn connections_are_durable_and_check_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let _store = crate::SqliteStore::open(&url).await.unwrap();
        let direct = Direct::new(dir.path().join("p.db"));
        let conn = direct.open().unwrap();
        let pragma = |name: &str| -> String {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| format!("{v:?}"))
            .unwrap()
        };
        // FULL, and foreign keys on: the bundled SQLite's compiled defaults too, so these
        // two guard a build with other defaults; the busy timeout is ours alone
        assert_eq!(pragma("synchronous"), "Integer(2)");
        assert_eq!(pragma("journal_mode"), "Text(\"wal\")");
        assert_eq!(pragma("foreign_keys"), "Integer(1)");
        assert_eq!(pragma("busy_timeout"), "Integer(10000)");
    }
}
