//! The embedded SQLite store: WAL mode, `synchronous=FULL`, checkpoints in the background.
//! Everything goes through sqlx except the payment hot path (`direct`).
mod direct;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use purser_core::domain::*;
use purser_core::store::*;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use time::OffsetDateTime;

use crate::codec::*;

/// WAL pages after which a committing connection checkpoints by itself: only a backstop,
/// the background checkpointer keeps the WAL far below it.
const WAL_AUTOCHECKPOINT_PAGES: &str = "10000";
/// How often the background checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// How long a connection waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// ProcessPayment's read and the ledger's transaction, on plain SQLite connections.
    direct: Arc<direct::Direct>,
    /// Writers of this process take turns (see `begin_write` in sql.rs).
    write_lock: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Stops the background checkpointer when the last clone of the store is dropped.
    _checkpointer: Arc<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Checkpoint the WAL from a connection of its own (PASSIVE: never blocks readers or the
/// writer), so that no payment commit has to copy the WAL into the database file and
/// fsync it on its own time, as SQLite's automatic checkpoint would.
fn spawn_checkpointer(pool: SqlitePool) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
    }))
}

/// The database file holds sealed keys and every payment: create it 0600 (like the
/// master key) before SQLite does, and tighten an existing one and its WAL and
/// shared-memory files. SQLite creates `-wal` and `-shm` with the mode of the database
/// file, so they follow.
fn make_private(file: &std::path::Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = file.as_os_str();
    let io = |e: std::io::Error| StoreError::Backend(format!("{}: {e}", file.display()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(file)
        .map_err(io)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = name.to_owned();
        path.push(suffix);
        match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Open (creating if missing) the database file at `url` (`sqlite://path`) and apply
    /// pending migrations. An in-memory database is refused: payments must outlive the
    /// process.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES);
        // What sqlx takes for an in-memory database (refused below, after SQLite has
        // said so itself): `:memory:`, or `mode=memory`.
        let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
        let (database, query) = rest.split_once('?').unwrap_or((rest, ""));
        let in_memory = database == ":memory:" || query.split('&').any(|p| p == "mode=memory");
        if !in_memory {
            make_private(opts.get_filename())?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts.clone())
            .await
            .map_err(backend)?;
        // The file as SQLite itself resolved it ("" for an in-memory database).
        let file: String =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_one(&pool)
                .await
                .map_err(backend)?;
        if file.is_empty() {
            return Err(StoreError::Backend(
                "the SQLite store needs a database file (sqlite://PATH), not an in-memory database"
                    .into(),
            ));
        }
        Self::migrate(&pool).await?;
        // Serve from fresh connections: one that read the schema before a migration changed
        // a table would prepare statements against the old schema (SQLite checks the schema
        // cookie only when a statement runs, and sqlx keeps the columns it saw when it
        // prepared: a `SELECT *` then returns more values than sqlx has columns for).
        pool.close().await;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(backend)?;
        Ok(SqliteStore {
            direct: Arc::new(direct::Direct::new(file.into())),
            write_lock: Some(Arc::default()),
            _checkpointer: Arc::new(spawn_checkpointer(pool.clone())),
            pool,
        })
    }

    async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS purser_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )
        .execute(pool)
        .await
        .map_err(backend)?;
        for m in crate::migrate::SQLITE {
            let mut tx = pool.begin().await.map_err(backend)?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM purser_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
            if done.is_some() {
                continue;
            }
            sqlx::raw_sql(m.sql)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            sqlx::query(
                "INSERT INTO purser_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(ms(OffsetDateTime::now_utc()))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
        }
        Ok(())
    }

    /// The underlying pool, for tests that inspect the raw file.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

crate::sql::sql_store!(SqliteStore, Sqlite, SqliteRow);

/// The payment hot path (see `direct`).
impl SqliteStore {
    async fn payment_context_impl(
        &self,
        account_id: &str,
        manager_id: &str,
        session_id: &str,
        instrument_id: &str,
        client_token: Option<&str>,
    ) -> StoreResult<PaymentContext> {
        self.direct.payment_context(
            account_id,
            manager_id,
            session_id,
            instrument_id,
            client_token,
        )
    }

    async fn begin_payments_impl(&self) -> StoreResult<Box<dyn PaymentTx>> {
        let turn = self.write_turn().await;
        Ok(Box::new(self.direct.begin(turn)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    /// The plan SQLite picks for a query, one detail line per step.
    async fn plan(conn: &mut sqlx::SqliteConnection, sql: &str) -> String {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
            .fetch_all(conn)
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The database, its WAL and its shared-memory file are 0600 whatever the umask, and
    /// a database created 0644 by an earlier version is tightened when opened.
    #[tokio::test]
    async fn database_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        let url = format!("sqlite://{}", db.display());
        let store = SqliteStore::open(&url).await.unwrap();
        let files = ["p.db", "p.db-wal", "p.db-shm"].map(|f| dir.path().join(f));
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        drop(store);
        for f in &files {
            if f.exists() {
                std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
        let _store = SqliteStore::open(&url).await.unwrap();
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
    }

    #[tokio::test]
    async fn an_in_memory_database_is_refused() {
        let err = SqliteStore::open("sqlite::memory:").await.unwrap_err();
        assert!(err.to_string().contains("needs a database file"), "{err}");
        // ... and leaves no file behind (sqlx names it `file:sqlx-in-memory-N`).
        let cwd: Vec<_> = std::fs::read_dir(".")
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("in-memory"))
            .collect();
        assert!(cwd.is_empty(), "{cwd:?}");
    }

    /// A list page must stay one range of a covering index however large the table: no
    /// lookup of table rows (which made a page at 1,000,000 instruments cost 2x one at
    /// 1,000, BENCHMARKS.md) and no sort.
    #[tokio::test]
    async fn hot_statements_use_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        drop(store);
        // A fresh connection: EXPLAIN does not check the schema cookie, so a pooled
        // connection opened before the last migration would show its stale plan.
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for (sql, index) in [
            (crate::sql::INSTRUMENT_LIST_SQL, "instruments_owner_list"),
            (
                crate::sql::INSTRUMENT_LIST_BY_CONNECTOR_SQL,
                "instruments_owner_connector_list",
            ),
        ] {
            let plan = plan(&mut conn, sql).await;
            assert!(
                plan.contains(&format!("USING COVERING INDEX {index}")),
                "{plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
        // ProcessPayment's read: four key lookups (the replay through the partial index of
        // clientTokens), never a scan.
        let plan = plan(&mut conn, crate::sql::PAYMENT_CONTEXT_SQL.as_str()).await;
        assert_eq!(plan.matches("SEARCH").count(), 4, "{plan}");
        assert!(plan.contains("USING INDEX payments_token"), "{plan}");
        assert!(!plan.contains("SCAN"), "{plan}");
    }
}
