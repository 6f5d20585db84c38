//! The embedded SQLite store.
use std::str::FromStr;
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

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if missing) the database at `url` (`sqlite://path` or `sqlite::memory:`)
    /// and apply pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(backend)?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS purser_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        for m in crate::migrate::SQLITE {
            let mut tx = self.pool.begin().await.map_err(backend)?;
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

crate::sql::sql_store!(SqliteStore, Sqlite, SqliteRow, SqlitePaymentTx);
