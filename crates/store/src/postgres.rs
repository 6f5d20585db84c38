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

crate::sql::sql_store!(PgStore, Postgres, PgRow);

/// ProcessPayment's read and the ledger's transaction, through sqlx.
impl PgStore {
    async fn payment_context_impl(
        &self,
        account_id: &str,
        manager_id: &str,
        session_id: &str,
        instrument_id: &str,
        client_token: Option<&str>,
    ) -> StoreResult<PaymentContext> {
        let Some(row) = sqlx::query(crate::sql::PAYMENT_CONTEXT_SQL.as_str())
            .bind(account_id)
            .bind(manager_id)
            .bind(session_id)
            .bind(instrument_id)
            .bind(client_token)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
        else {
            return Ok(PaymentContext::default());
        };
        let cols = |prefix| Cols { row: &row, prefix };
        crate::rows::payment_context(
            &cols("m_"),
            &cols("s_"),
            &cols("i_"),
            &cols("p_"),
            &cols("pm_"),
            &cols("pu_"),
        )
    }

    async fn begin_payments_impl(&self) -> StoreResult<Box<dyn PaymentTx>> {
        let tx = self.begin_write().await?;
        Ok(Box::new(PgPaymentTx { tx }))
    }
}

struct PgPaymentTx {
    tx: WriteTx,
}

#[async_trait]
impl PaymentTx for PgPaymentTx {
    async fn reserve(
        &mut self,
        account_id: &str,
        session_id: &str,
        amount: i64,
        now: OffsetDateTime,
    ) -> StoreResult<Reserve> {
        let now = ms(now);
        let row = sqlx::query(crate::sql::RESERVE_SQL)
            .bind(amount)
            .bind(now)
            .bind(account_id)
            .bind(session_id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(backend)?;
        if let Some(row) = row {
            return Ok(Reserve::Reserved {
                remaining: row.try_get("remaining").map_err(backend)?,
            });
        }
        let row = sqlx::query(crate::sql::SESSION_BUDGET_SQL)
            .bind(account_id)
            .bind(session_id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(backend)?;
        let budget = match row {
            None => None,
            Some(r) => Some((
                r.try_get("expires_at").map_err(backend)?,
                r.try_get("remaining").map_err(backend)?,
            )),
        };
        Ok(crate::sql::refused(budget, now))
    }

    async fn release(
        &mut self,
        account_id: &str,
        session_id: &str,
        amount: i64,
    ) -> StoreResult<()> {
        sqlx::query(crate::sql::RELEASE_SQL)
            .bind(amount)
            .bind(account_id)
            .bind(session_id)
            .execute(&mut *self.tx)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn record_all(&mut self, payments: &[Payment]) -> StoreResult<Vec<bool>> {
        let mut inserted = std::collections::HashSet::<String>::with_capacity(payments.len());
        for chunk in payments.chunks(crate::sql::RECORD_CHUNK) {
            let mut q = sqlx::QueryBuilder::<Postgres>::new(crate::sql::PAYMENT_INSERT.as_str());
            q.push_values(chunk, |mut b, p| {
                b.push_bind(&p.account_id)
                    .push_bind(&p.id)
                    .push_bind(&p.session_id)
                    .push_bind(&p.instrument_id)
                    .push_bind(&p.manager_id)
                    .push_bind(&p.user_id)
                    .push_bind(&p.client_token)
                    .push_bind(p.fingerprint.as_ref().map(|f| f.to_vec()))
                    .push_bind(&p.payment_type)
                    .push_bind(&p.version)
                    .push_bind(&p.scheme)
                    .push_bind(&p.network)
                    .push_bind(&p.payer)
                    .push_bind(&p.payee)
                    .push_bind(&p.asset)
                    .push_bind(&p.amount)
                    .push_bind(p.debited)
                    .push_bind(&p.output)
                    .push_bind(ms(p.created_at))
                    .push_bind(p.value)
                    .push_bind(&p.agent_name)
                    .push_bind(purser_core::policies::payee_key(&p.payee));
            });
            // No error inside the transaction (PostgreSQL would abort the whole batch): a
            // row whose clientToken is already used is simply not inserted, and missing
            // from what RETURNING gives back.
            q.push(" ON CONFLICT DO NOTHING RETURNING id");
            for row in q.build().fetch_all(&mut *self.tx).await.map_err(backend)? {
                inserted.insert(row.try_get("id").map_err(backend)?);
            }
        }
        Ok(payments.iter().map(|p| inserted.contains(&p.id)).collect())
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
        sqlx::query(crate::sql::LOCK_USER_SQL)
            .bind(account_id)
            .bind(manager_id)
            .bind(user_id)
            .bind(ms(now))
            .execute(&mut *self.tx)
            .await
            .map_err(backend)?;
        let row = sqlx::query(crate::sql::USER_SPENT_SQL)
            .bind(account_id)
            .bind(manager_id)
            .bind(user_id)
            .bind(ms(after_day))
            .bind(ms(after_month))
            .fetch_one(&mut *self.tx)
            .await
            .map_err(backend)?;
        Ok((
            row.try_get("day").map_err(backend)?,
            row.try_get("month").map_err(backend)?,
        ))
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await.map_err(backend)
    }
}
