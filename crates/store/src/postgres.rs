//! The PostgreSQL store, for several Purser nodes sharing one database.
//!
//! Same SQL as SQLite (see `sql.rs`); this file only connects, sizes the pool and applies
//! the PostgreSQL migrations under an advisory lock, so several nodes may start at once.
use std::time::Duration;

use async_trait::async_trait;
use purser_core::domain::*;
use purser_core::store::*;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use time::OffsetDateTime;

use crate::codec::*;

/// Key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x7075_7273_6572; // "purser"

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Always None: PostgreSQL writers lock rows, not the database.
    write_lock: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
}

impl PgStore {
    /// Connect to `url` (`postgres://user@host/db`) with a pool of `max_connections` and
    /// apply pending migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(backend)?;
        let store = PgStore {
            pool,
            write_lock: None,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        let result = async {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS purser_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
            for m in crate::migrate::POSTGRES {
                let done: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM purser_migrations WHERE version = $1",
                )
                .bind(m.version)
                .fetch_one(&mut *conn)
                .await
                .map_err(backend)?;
                if done > 0 {
                    continue;
                }
                let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(backend)?;
                sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(backend)?;
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
            Ok::<(), StoreError>(())
        }
        .await;
        let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(backend);
        result.and(unlock.map(|_| ()))
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

crate::sql::sql_store!(PgStore, Postgres, PgRow, PgPaymentTx);
