//! One implementation of the `Store` port for every SQL engine sqlx supports here: the
//! SQL is written once (portable: `$n` placeholders, `RETURNING`, standard types) and the
//! macro instantiates it for a concrete database, so SQLite and PostgreSQL cannot drift
//! apart. Engine-specific code (connecting, pragmas, migrations) lives beside each store,
//! and so does the payment hot path (`payment_context_impl`, `begin_payments_impl`): sqlx
//! on PostgreSQL, plain SQLite connections on SQLite. Both run the statements defined
//! here, and rows become records through `rows.rs` whichever way they were read.

/// Rows per multi-row INSERT of payments on PostgreSQL (22 parameters each: far below its
/// limit of 65535).
pub(crate) const RECORD_CHUNK: usize = 256;

pub(crate) const MANAGER_COLUMNS: &[&str] = &[
    "account_id",
    "id",
    "name",
    "description",
    "authorizer_type",
    "authorizer_discovery_url",
    "authorizer_encoded",
    "role_arn",
    "kms_key_arn",
    "tags",
    "status",
    "created_at",
    "updated_at",
    "transition_at",
];
pub(crate) const SESSION_COLUMNS: &[&str] = &[
    "account_id",
    "id",
    "manager_id",
    "user_id",
    "expiry_minutes",
    "expires_at",
    "cap",
    "spent",
    "created_at",
    "updated_at",
];
pub(crate) const INSTRUMENT_COLUMNS: &[&str] = &[
    "account_id",
    "id",
    "manager_id",
    "connector_id",
    "user_id",
    "network",
    "wallet_address",
    "linked_masked",
    "linked_sealed",
    "sealed_key",
    "holder",
    "status",
    "version",
    "created_at",
    "updated_at",
];
pub(crate) const PAYMENT_COLUMNS: &[&str] = &[
    "account_id",
    "id",
    "session_id",
    "instrument_id",
    "manager_id",
    "user_id",
    "client_token",
    "fingerprint",
    "payment_type",
    "version",
    "scheme",
    "network",
    "payer",
    "payee",
    "asset",
    "amount",
    "debited",
    "output",
    "created_at",
    "usd_value",
    "agent_name",
    "payee_match",
];
pub(crate) const POLICY_COLUMNS: &[&str] = &[
    "account_id",
    "manager_id",
    "user_id",
    "daily_cap",
    "monthly_cap",
    "max_per_payment",
    "payee_allow",
    "payee_deny",
    "updated_at",
];

/// One owner's page of live instruments: only the summary columns, all held by the
/// partial index `instruments_owner_list` (migration 0005), so a page is one index range.
pub(crate) const INSTRUMENT_LIST_SQL: &str = "SELECT account_id, id, manager_id, connector_id, user_id, status, created_at, updated_at FROM instruments WHERE account_id = $1 AND manager_id = $2 AND user_id = $3 AND status <> 'DELETED' AND id > $4 ORDER BY id LIMIT $5";
/// The same under one connector (index `instruments_owner_connector_list`).
pub(crate) const INSTRUMENT_LIST_BY_CONNECTOR_SQL: &str = "SELECT account_id, id, manager_id, connector_id, user_id, status, created_at, updated_at FROM instruments WHERE account_id = $1 AND manager_id = $2 AND user_id = $3 AND connector_id = $4 AND status <> 'DELETED' AND id > $5 ORDER BY id LIMIT $6";

/// ProcessPayment's reads as one statement: the manager, and beside it the session, the
/// instrument and the payment recorded under a clientToken, all of the same account (NULL
/// columns when absent; `$5` NULL matches no payment). $1 account, $2 manager, $3 session,
/// $4 instrument, $5 clientToken.
pub(crate) static PAYMENT_CONTEXT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(
    || {
        let select = [
            ("m", MANAGER_COLUMNS),
            ("s", SESSION_COLUMNS),
            ("i", INSTRUMENT_COLUMNS),
            ("p", PAYMENT_COLUMNS),
            ("pm", POLICY_COLUMNS),
            ("pu", POLICY_COLUMNS),
        ]
        .iter()
        .flat_map(|(t, cols)| cols.iter().map(move |c| format!("{t}.{c} AS {t}_{c}")))
        .collect::<Vec<_>>()
        .join(", ");
        format!(
            "SELECT {select} FROM managers m \
             LEFT JOIN sessions s ON s.account_id = m.account_id AND s.id = $3 \
             LEFT JOIN instruments i ON i.account_id = m.account_id AND i.id = $4 \
             LEFT JOIN payments p ON p.account_id = m.account_id AND p.client_token = $5 \
             LEFT JOIN spending_policies pm ON pm.account_id = m.account_id AND pm.manager_id = m.id AND pm.user_id = '' \
             LEFT JOIN spending_policies pu ON pu.account_id = m.account_id AND pu.manager_id = m.id AND pu.user_id = s.user_id \
             WHERE m.account_id = $1 AND m.id = $2"
        )
    },
);

/// The budget rule as ONE atomic statement (see `PaymentTx::reserve`): $1 amount, $2 now
/// (ms), $3 account, $4 session; returns the remaining budget when it debited.
pub(crate) const RESERVE_SQL: &str = "UPDATE sessions SET spent = spent + $1, updated_at = $2 WHERE account_id = $3 AND id = $4 AND expires_at > $2 AND (cap IS NULL OR spent + $1 <= cap) RETURNING cap - spent AS remaining";
/// Why a reservation was refused: $1 account, $2 session.
pub(crate) const SESSION_BUDGET_SQL: &str =
    "SELECT expires_at, cap - spent AS remaining FROM sessions WHERE account_id = $1 AND id = $2";
/// Give a reservation back: $1 amount, $2 account, $3 session.
pub(crate) const RELEASE_SQL: &str =
    "UPDATE sessions SET spent = spent - $1 WHERE account_id = $2 AND id = $3";
/// Spending policies' turn per user (see `PaymentTx::lock_user_spent`): an upsert, which
/// locks the row until the transaction ends on PostgreSQL. $1 account, $2 manager, $3
/// user, $4 now (ms).
pub(crate) const LOCK_USER_SQL: &str = "INSERT INTO spending_locks (account_id, manager_id, user_id, checked_at) VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, manager_id, user_id) DO UPDATE SET checked_at = $4";
/// A user's spend after each instant (index-only on `payments_user_time`): $1 account,
/// $2 manager, $3 user, $4 day start (ms, exclusive), $5 month start (ms, exclusive).
pub(crate) const USER_SPENT_SQL: &str = "SELECT CAST(COALESCE(SUM(CASE WHEN created_at > $4 THEN usd_value ELSE 0 END), 0) AS BIGINT) AS day, CAST(COALESCE(SUM(usd_value), 0) AS BIGINT) AS month FROM payments WHERE account_id = $1 AND manager_id = $2 AND user_id = $3 AND created_at > $5";
/// `INSERT INTO payments (...) `, the columns in `PAYMENT_COLUMNS` order.
pub(crate) static PAYMENT_INSERT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("INSERT INTO payments ({}) ", PAYMENT_COLUMNS.join(", ")));

/// Where each kind of sealed value lives: (page query, update statement). A page query
/// takes $1 account, $2 id (keyset, row-value order) and $3 limit, and returns
/// `account_id, id, value` (and, for wallet keys, `network, wallet_address`); an update
/// takes $1 value, $2 account, $3 id. Wallets held by a vendor (`holder` set) have no key
/// here.
pub(crate) fn sealed_sql(kind: purser_core::store::SealedKind) -> (&'static str, &'static str) {
    use purser_core::store::SealedKind;
    match kind {
        SealedKind::ProviderSecrets => (
            "SELECT account_id, name AS id, sealed_secrets AS value FROM credential_providers WHERE (account_id, name) > ($1, $2) ORDER BY account_id, name LIMIT $3",
            "UPDATE credential_providers SET sealed_secrets = $1 WHERE account_id = $2 AND name = $3",
        ),
        SealedKind::WalletKey => (
            "SELECT account_id, id, sealed_key AS value, network, wallet_address FROM instruments WHERE (account_id, id) > ($1, $2) AND holder IS NULL ORDER BY account_id, id LIMIT $3",
            "UPDATE instruments SET sealed_key = $1 WHERE account_id = $2 AND id = $3",
        ),
        SealedKind::LinkedAccounts => (
            "SELECT account_id, id, linked_sealed AS value FROM instruments WHERE (account_id, id) > ($1, $2) ORDER BY account_id, id LIMIT $3",
            "UPDATE instruments SET linked_sealed = $1 WHERE account_id = $2 AND id = $3",
        ),
    }
}

/// Sealed values re-sealed per page inside the rotation's transaction.
pub(crate) const RESEAL_PAGE: usize = 200;

/// A refused reservation's reason, from what `SESSION_BUDGET_SQL` found: (expires_at,
/// remaining) of the session, if it exists.
pub(crate) fn refused(
    budget: Option<(i64, Option<i64>)>,
    now_ms: i64,
) -> purser_core::store::Reserve {
    use purser_core::store::Reserve;
    match budget {
        None => Reserve::NotFound,
        Some((expires_at, _)) if expires_at <= now_ms => Reserve::Expired,
        Some((_, remaining)) => Reserve::Insufficient {
            remaining: remaining.unwrap_or(0),
        },
    }
}

/// A parameter of a statement built from filters.
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// A `WHERE` clause built from optional filters, with numbered parameters: the same text
/// on both engines, and only the conditions that are asked (so each filter's index serves).
pub(crate) struct Where {
    pub sql: String,
    pub args: Vec<Arg>,
}

impl Where {
    fn new(account_id: &str) -> Where {
        Where {
            sql: "account_id = $1".into(),
            args: vec![Arg::Text(account_id.into())],
        }
    }

    fn push(&mut self, cond: &str, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let n = self.args.len();
        self.sql.push_str(" AND ");
        self.sql.push_str(&cond.replace('?', &format!("${n}")));
        self
    }

    fn text(&mut self, col: &str, v: &Option<String>) -> &mut Self {
        if let Some(v) = v {
            self.push(&format!("{col} = ?"), Arg::Text(v.clone()));
        }
        self
    }

    fn range(
        &mut self,
        from: Option<time::OffsetDateTime>,
        to: Option<time::OffsetDateTime>,
    ) -> &mut Self {
        if let Some(t) = from {
            self.push("created_at >= ?", Arg::Int(crate::codec::ms(t)));
        }
        if let Some(t) = to {
            self.push("created_at < ?", Arg::Int(crate::codec::ms(t)));
        }
        self
    }

    /// Rows strictly before the keyset position, newest first.
    fn before(&mut self, k: Option<&purser_core::store::Keyset>) -> &mut Self {
        if let Some(k) = k {
            let t = crate::codec::ms(k.created_at);
            self.push("created_at <= ?", Arg::Int(t));
            let n = self.args.len();
            self.push(
                &format!("(created_at < ${n} OR id < ?)"),
                Arg::Text(k.id.clone()),
            );
        }
        self
    }

    fn payments(f: &purser_core::store::PaymentFilter, account_id: &str) -> Where {
        let mut w = Where::new(account_id);
        w.text("manager_id", &f.manager_id)
            .text("user_id", &f.user_id)
            .text("session_id", &f.session_id)
            .text("instrument_id", &f.instrument_id)
            .text(
                "payee_match",
                &f.payee.as_deref().map(purser_core::policies::payee_key),
            )
            .text("payment_type", &f.payment_type)
            .text("scheme", &f.scheme)
            .text("network", &f.network)
            .range(f.from, f.to);
        w
    }

    fn refusals(f: &purser_core::store::RefusalFilter, account_id: &str) -> Where {
        let mut w = Where::new(account_id);
        w.text("manager_id", &f.manager_id)
            .text("user_id", &f.user_id)
            .text("session_id", &f.session_id)
            .text("reason", &f.reason.map(|r| r.as_str().to_string()))
            .range(f.from, f.to);
        w
    }
}

/// A newest-first page of payments.
pub(crate) fn payment_list_sql(
    account_id: &str,
    f: &purser_core::store::PaymentFilter,
    before: Option<&purser_core::store::Keyset>,
    limit: usize,
) -> Where {
    let mut w = Where::payments(f, account_id);
    w.before(before);
    w.args.push(Arg::Int(limit as i64));
    w.sql = format!(
        "SELECT * FROM payments WHERE {} ORDER BY created_at DESC, id DESC LIMIT ${}",
        w.sql,
        w.args.len()
    );
    w
}

/// Payments per time bucket.
pub(crate) fn payment_buckets_sql(
    account_id: &str,
    f: &purser_core::store::PaymentFilter,
    bucket_ms: i64,
) -> Where {
    let mut w = Where::payments(f, account_id);
    w.args.push(Arg::Int(bucket_ms));
    let b = w.args.len();
    w.sql = format!(
        "SELECT (created_at / ${b}) * ${b} AS bucket, COUNT(*) AS n, CAST(SUM(usd_value) AS BIGINT) AS v FROM payments WHERE {} GROUP BY (created_at / ${b}) ORDER BY 1",
        w.sql
    );
    w
}

/// A newest-first page of refusals.
pub(crate) fn refusal_list_sql(
    account_id: &str,
    f: &purser_core::store::RefusalFilter,
    before: Option<&purser_core::store::Keyset>,
    limit: usize,
) -> Where {
    let mut w = Where::refusals(f, account_id);
    w.before(before);
    w.args.push(Arg::Int(limit as i64));
    w.sql = format!(
        "SELECT * FROM refusals WHERE {} ORDER BY created_at DESC, id DESC LIMIT ${}",
        w.sql,
        w.args.len()
    );
    w
}

pub(crate) fn list_to_text(l: &Option<Vec<String>>) -> Option<String> {
    l.as_ref()
        .map(|l| serde_json::to_string(l).unwrap_or_else(|_| "[]".into()))
}

macro_rules! sql_store {
    ($store:ident, $db:ty, $row:ty) => {
/// A write transaction. On SQLite it also holds this process's writer turn (see
/// `$store::begin_write`); it derefs to the connection like sqlx's `Transaction`.
struct WriteTx {
    tx: Transaction<'static, $db>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTx {
    type Target = <$db as sqlx::Database>::Connection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl WriteTx {
    async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl $store {
    /// Wait for this process's writer turn, when the engine needs one (SQLite: one
    /// writer at a time; a second writer would sleep in SQLite's busy handler, in steps of
    /// up to 100 ms, instead of queueing). None on PostgreSQL, which locks rows.
    async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        }
    }

    async fn begin_write(&self) -> StoreResult<WriteTx> {
        let turn = self.write_turn().await;
        let tx = self.pool.begin().await.map_err(backend)?;
        Ok(WriteTx { tx, _turn: turn })
    }
}

async fn record_idempotency(
    tx: &mut WriteTx,
    account_id: &str,
    idem: Option<&IdempotencyWrite<'_>>,
) -> StoreResult<()> {
    let Some(i) = idem else { return Ok(()) };
    sqlx::query(
        "INSERT INTO idempotency (account_id, operation, token, fingerprint, resource_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(account_id)
    .bind(i.operation)
    .bind(i.token)
    .bind(&i.fingerprint[..])
    .bind(i.resource_id)
    .bind(ms(i.at))
    .execute(&mut **tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Duplicate(Unique::ClientToken)
        } else {
            backend(e)
        }
    })?;
    Ok(())
}

/// Take the manager's row lock (a no-op update) if it exists and is not deleting.
async fn lock_live_manager(
    tx: &mut WriteTx,
    account_id: &str,
    id: &str,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE managers SET status = status WHERE account_id = $1 AND id = $2 AND status <> 'DELETING'",
    )
    .bind(account_id)
    .bind(id)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(done.rows_affected() == 1)
}

fn provider_from_row(r: &$row) -> StoreResult<CredentialProvider> {
    let fields: String = r.try_get("secret_fields").map_err(backend)?;
    Ok(CredentialProvider {
        account_id: r.try_get("account_id").map_err(backend)?,
        name: r.try_get("name").map_err(backend)?,
        vendor: parse(
            "vendor",
            &r.try_get::<String, _>("vendor").map_err(backend)?,
            Vendor::parse,
        )?,
        key_id: r.try_get("key_id").map_err(backend)?,
        authorization_id: r.try_get("authorization_id").map_err(backend)?,
        secret_fields: fields
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        sealed_secrets: r.try_get("sealed_secrets").map_err(backend)?,
        tags: tags_from_text(&r.try_get::<String, _>("tags").map_err(backend)?)?,
        created_at: time(r.try_get("created_at").map_err(backend)?),
        updated_at: time(r.try_get("updated_at").map_err(backend)?),
    })
}

/// The columns of one table within a row; a joined query names them with a prefix
/// (`m_id`, `s_id`, ...) so that tables with the same column names can share one row.
struct Cols<'r> {
    row: &'r $row,
    prefix: &'static str,
}

impl Cols<'_> {
    fn get<'r, T>(&'r self, name: &str) -> StoreResult<T>
    where
        T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
    {
        if self.prefix.is_empty() {
            self.row.try_get(name)
        } else {
            self.row.try_get(format!("{}{name}", self.prefix).as_str())
        }
        .map_err(backend)
    }
}

crate::rows::columns_through_get!(Cols<'_>);

fn manager_from_row(r: &$row) -> StoreResult<Manager> {
    crate::rows::manager(&Cols { row: r, prefix: "" })
}

fn connector_from_row(r: &$row) -> StoreResult<Connector> {
    let vendor: Option<String> = r.try_get("credential_vendor").map_err(backend)?;
    let arn: Option<String> = r.try_get("credential_arn").map_err(backend)?;
    let mode: Option<String> = r.try_get("provision_mode").map_err(backend)?;
    Ok(Connector {
        account_id: r.try_get("account_id").map_err(backend)?,
        manager_id: r.try_get("manager_id").map_err(backend)?,
        id: r.try_get("id").map_err(backend)?,
        name: r.try_get("name").map_err(backend)?,
        description: r.try_get("description").map_err(backend)?,
        connector_type: parse(
            "connector_type",
            &r.try_get::<String, _>("connector_type").map_err(backend)?,
            ConnectorType::parse,
        )?,
        provision_mode: mode
            .map(|m| parse("provision_mode", &m, ProvisionMode::parse))
            .transpose()?,
        credential: match (vendor, arn) {
            (Some(v), Some(arn)) => Some(CredentialRef {
                vendor: parse("credential_vendor", &v, Vendor::parse)?,
                arn,
            }),
            _ => None,
        },
        credentials_updated_at: r
            .try_get::<Option<i64>, _>("credentials_updated_at")
            .map_err(backend)?
            .map(time),
        status: parse(
            "status",
            &r.try_get::<String, _>("status").map_err(backend)?,
            ResourceStatus::parse,
        )?,
        created_at: time(r.try_get("created_at").map_err(backend)?),
        updated_at: time(r.try_get("updated_at").map_err(backend)?),
        transition_at: r
            .try_get::<Option<i64>, _>("transition_at")
            .map_err(backend)?
            .map(time),
    })
}

fn name_conflict(e: sqlx::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Duplicate(Unique::Name)
    } else {
        backend(e)
    }
}

#[async_trait]
impl Store for $store {
    async fn idempotency_get(
        &self,
        account_id: &str,
        operation: &str,
        token: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let row = sqlx::query(
            "SELECT fingerprint, resource_id FROM idempotency WHERE account_id = $1 AND operation = $2 AND token = $3",
        )
        .bind(account_id)
        .bind(operation)
        .bind(token)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| {
            let fp: Vec<u8> = r.try_get("fingerprint").map_err(backend)?;
            Ok(IdempotencyRecord {
                fingerprint: fp
                    .try_into()
                    .map_err(|_| StoreError::Backend("bad fingerprint column".into()))?,
                resource_id: r.try_get("resource_id").map_err(backend)?,
            })
        })
        .transpose()
    }

    async fn provider_insert(&self, p: &CredentialProvider) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO credential_providers (account_id, name, vendor, key_id, authorization_id, secret_fields, sealed_secrets, tags, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&p.account_id)
        .bind(&p.name)
        .bind(p.vendor.as_str())
        .bind(&p.key_id)
        .bind(&p.authorization_id)
        .bind(p.secret_fields.join(","))
        .bind(&p.sealed_secrets)
        .bind(tags_to_text(&p.tags))
        .bind(ms(p.created_at))
        .bind(ms(p.updated_at))
        .execute(&self.pool)
        .await
        .map_err(name_conflict)?;
        Ok(())
    }

    async fn provider_get(
        &self,
        account_id: &str,
        name: &str,
    ) -> StoreResult<Option<CredentialProvider>> {
        sqlx::query("SELECT * FROM credential_providers WHERE account_id = $1 AND name = $2")
            .bind(account_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(provider_from_row)
            .transpose()
    }

    async fn provider_update(&self, p: &CredentialProvider) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE credential_providers SET key_id = $1, authorization_id = $2, secret_fields = $3, sealed_secrets = $4, tags = $5, updated_at = $6 WHERE account_id = $7 AND name = $8",
        )
        .bind(&p.key_id)
        .bind(&p.authorization_id)
        .bind(p.secret_fields.join(","))
        .bind(&p.sealed_secrets)
        .bind(tags_to_text(&p.tags))
        .bind(ms(p.updated_at))
        .bind(&p.account_id)
        .bind(&p.name)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn provider_delete(&self, account_id: &str, name: &str) -> StoreResult<ProviderDelete> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            // A connector that is being deleted no longer holds its provider (the SDK's
            // rollback deletes connector, manager and provider at once).
            "DELETE FROM credential_providers WHERE account_id = $1 AND name = $2 AND NOT EXISTS (SELECT 1 FROM connectors WHERE account_id = $1 AND credential_provider = $2 AND status <> 'DELETING')",
        )
        .bind(account_id)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let outcome = if done.rows_affected() == 1 {
            ProviderDelete::Deleted
        } else {
            let exists: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM credential_providers WHERE account_id = $1 AND name = $2",
            )
            .bind(account_id)
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
            if exists > 0 {
                ProviderDelete::InUse
            } else {
                ProviderDelete::NotFound
            }
        };
        tx.commit().await.map_err(backend)?;
        Ok(outcome)
    }

    async fn provider_list(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<CredentialProvider>> {
        sqlx::query(
            "SELECT * FROM credential_providers WHERE account_id = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(account_id)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(provider_from_row)
        .collect()
    }

    async fn manager_insert(
        &self,
        m: &Manager,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        record_idempotency(&mut tx, &m.account_id, idem).await?;
        sqlx::query(
            "INSERT INTO managers (account_id, id, name, description, authorizer_type, authorizer_discovery_url, authorizer_encoded, role_arn, kms_key_arn, tags, status, created_at, updated_at, transition_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&m.account_id)
        .bind(&m.id)
        .bind(&m.name)
        .bind(&m.description)
        .bind(m.authorizer_type.as_str())
        .bind(m.authorizer.as_ref().map(|a| a.discovery_url.as_str()))
        .bind(m.authorizer.as_ref().map(|a| a.encoded.as_str()))
        .bind(&m.role_arn)
        .bind(&m.kms_key_arn)
        .bind(tags_to_text(&m.tags))
        .bind(m.status.as_str())
        .bind(ms(m.created_at))
        .bind(ms(m.updated_at))
        .bind(ms_opt(m.transition_at))
        .execute(&mut *tx)
        .await
        .map_err(name_conflict)?;
        tx.commit().await.map_err(backend)
    }

    async fn manager_get(&self, account_id: &str, id: &str) -> StoreResult<Option<Manager>> {
        sqlx::query("SELECT * FROM managers WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(manager_from_row)
            .transpose()
    }

    async fn manager_update(
        &self,
        m: &Manager,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE managers SET description = $1, authorizer_type = $2, authorizer_discovery_url = $3, authorizer_encoded = $4, role_arn = $5, kms_key_arn = $6, tags = $7, status = $8, updated_at = $9, transition_at = $10 WHERE account_id = $11 AND id = $12 AND status <> 'DELETING'",
        )
        .bind(&m.description)
        .bind(m.authorizer_type.as_str())
        .bind(m.authorizer.as_ref().map(|a| a.discovery_url.as_str()))
        .bind(m.authorizer.as_ref().map(|a| a.encoded.as_str()))
        .bind(&m.role_arn)
        .bind(&m.kms_key_arn)
        .bind(tags_to_text(&m.tags))
        .bind(m.status.as_str())
        .bind(ms(m.updated_at))
        .bind(ms_opt(m.transition_at))
        .bind(&m.account_id)
        .bind(&m.id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        record_idempotency(&mut tx, &m.account_id, idem).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn manager_start_delete(
        &self,
        account_id: &str,
        id: &str,
        now: OffsetDateTime,
        transition_at: OffsetDateTime,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<ManagerDelete> {
        let mut tx = self.begin_write().await?;
        // Lock the manager row first, then look for connectors in a new statement: a
        // connector insert locks the same row, so the two cannot interleave.
        if !lock_live_manager(&mut tx, account_id, id).await? {
            return Ok(ManagerDelete::NotFound);
        }
        // A connector already being deleted does not block its manager's deletion; the
        // sweep removes the manager only once its connectors are gone.
        let connectors: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM connectors WHERE account_id = $1 AND manager_id = $2 AND status <> 'DELETING'",
        )
        .bind(account_id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        if connectors > 0 {
            return Ok(ManagerDelete::HasConnectors);
        }
        let row = sqlx::query(
            "UPDATE managers SET status = 'DELETING', updated_at = $1, transition_at = $2 WHERE account_id = $3 AND id = $4 RETURNING *",
        )
        .bind(ms(now))
        .bind(ms(transition_at))
        .bind(account_id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        let m = manager_from_row(&row)?;
        record_idempotency(&mut tx, account_id, idem).await?;
        tx.commit().await.map_err(backend)?;
        Ok(ManagerDelete::Started(Box::new(m)))
    }

    async fn manager_list(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Manager>> {
        sqlx::query("SELECT * FROM managers WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3")
            .bind(account_id)
            .bind(after.unwrap_or(""))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(manager_from_row)
            .collect()
    }

    async fn connector_insert(
        &self,
        c: &Connector,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if !lock_live_manager(&mut tx, &c.account_id, &c.manager_id).await? {
            return Ok(false);
        }
        let done = sqlx::query(
            "INSERT INTO connectors (account_id, manager_id, id, name, description, connector_type, provision_mode, credential_vendor, credential_arn, credential_provider, status, created_at, updated_at, transition_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&c.account_id)
        .bind(&c.manager_id)
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.description)
        .bind(c.connector_type.as_str())
        .bind(c.provision_mode.map(|m| m.as_str()))
        .bind(c.credential.as_ref().map(|r| r.vendor.as_str()))
        .bind(c.credential.as_ref().map(|r| r.arn.as_str()))
        .bind(c.credential.as_ref().map(|r| provider_name(&r.arn)))
        .bind(c.status.as_str())
        .bind(ms(c.created_at))
        .bind(ms(c.updated_at))
        .bind(ms_opt(c.transition_at))
        .execute(&mut *tx)
        .await
        .map_err(name_conflict)?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        record_idempotency(&mut tx, &c.account_id, idem).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn connector_get(
        &self,
        account_id: &str,
        manager_id: &str,
        id: &str,
    ) -> StoreResult<Option<Connector>> {
        sqlx::query(
            "SELECT * FROM connectors WHERE account_id = $1 AND manager_id = $2 AND id = $3",
        )
        .bind(account_id)
        .bind(manager_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(connector_from_row)
        .transpose()
    }

    async fn connector_update(
        &self,
        c: &Connector,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE connectors SET description = $1, connector_type = $2, credential_vendor = $3, credential_arn = $4, credential_provider = $5, status = $6, updated_at = $7, transition_at = $8, credentials_updated_at = $9 WHERE account_id = $10 AND manager_id = $11 AND id = $12 AND status <> 'DELETING'",
        )
        .bind(&c.description)
        .bind(c.connector_type.as_str())
        .bind(c.credential.as_ref().map(|r| r.vendor.as_str()))
        .bind(c.credential.as_ref().map(|r| r.arn.as_str()))
        .bind(c.credential.as_ref().map(|r| provider_name(&r.arn)))
        .bind(c.status.as_str())
        .bind(ms(c.updated_at))
        .bind(ms_opt(c.transition_at))
        .bind(ms_opt(c.credentials_updated_at))
        .bind(&c.account_id)
        .bind(&c.manager_id)
        .bind(&c.id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        record_idempotency(&mut tx, &c.account_id, idem).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn connector_start_delete(
        &self,
        account_id: &str,
        manager_id: &str,
        id: &str,
        now: OffsetDateTime,
        transition_at: OffsetDateTime,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<Option<Connector>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE connectors SET status = 'DELETING', updated_at = $1, transition_at = $2 WHERE account_id = $3 AND manager_id = $4 AND id = $5 AND status <> 'DELETING' RETURNING *",
        )
        .bind(ms(now))
        .bind(ms(transition_at))
        .bind(account_id)
        .bind(manager_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let c = connector_from_row(&row)?;
        record_idempotency(&mut tx, account_id, idem).await?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(c))
    }

    async fn connector_list(
        &self,
        account_id: &str,
        manager_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Connector>> {
        sqlx::query(
            "SELECT * FROM connectors WHERE account_id = $1 AND manager_id = $2 AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(account_id)
        .bind(manager_id)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(connector_from_row)
        .collect()
    }

    async fn complete_transitions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let now = ms(now);
        // Most ticks find nothing due: look first (a read through the transition
        // indexes), so that they do not queue for the writer turn behind payments.
        let due: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM connectors WHERE transition_at <= $1) OR EXISTS (SELECT 1 FROM managers WHERE transition_at <= $1)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        if !due {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let mut changed = 0;
        for sql in [
            "DELETE FROM connectors WHERE status = 'DELETING' AND transition_at <= $1",
            "DELETE FROM managers WHERE status = 'DELETING' AND transition_at <= $1 AND NOT EXISTS (SELECT 1 FROM connectors c WHERE c.account_id = managers.account_id AND c.manager_id = managers.id)",
            "UPDATE connectors SET status = 'READY', updated_at = transition_at, transition_at = NULL WHERE status IN ('CREATING', 'UPDATING') AND transition_at <= $1",
            "UPDATE managers SET status = 'READY', updated_at = transition_at, transition_at = NULL WHERE status IN ('CREATING', 'UPDATING') AND transition_at <= $1",
        ] {
            changed += sqlx::query(sql)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(backend)?
                .rows_affected();
        }
        tx.commit().await.map_err(backend)?;
        Ok(changed)
    }

    async fn instrument_insert(
        &self,
        i: &Instrument,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        record_idempotency(&mut tx, &i.account_id, idem).await?;
        sqlx::query(
            "INSERT INTO instruments (account_id, id, manager_id, connector_id, user_id, network, wallet_address, linked_masked, linked_sealed, sealed_key, status, version, created_at, updated_at, holder) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&i.account_id)
        .bind(&i.id)
        .bind(&i.manager_id)
        .bind(&i.connector_id)
        .bind(&i.user_id)
        .bind(i.network.as_str())
        .bind(&i.wallet_address)
        .bind(&i.linked_accounts.masked)
        .bind(&i.linked_accounts.sealed)
        .bind(&i.sealed_key)
        .bind(i.status.as_str())
        .bind(i.version)
        .bind(ms(i.created_at))
        .bind(ms(i.updated_at))
        .bind(crate::rows::holder_to_text(&i.holder))
        .execute(&mut *tx)
        .await
        .map_err(name_conflict)?;
        tx.commit().await.map_err(backend)
    }

    async fn instrument_get(&self, account_id: &str, id: &str) -> StoreResult<Option<Instrument>> {
        sqlx::query("SELECT * FROM instruments WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(instrument_from_row)
            .transpose()
    }

    async fn instrument_soft_delete(
        &self,
        account_id: &str,
        id: &str,
        expected_version: i64,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE instruments SET status = 'DELETED', version = version + 1, updated_at = $1 WHERE account_id = $2 AND id = $3 AND version = $4 AND status <> 'DELETED'",
        )
        .bind(ms(now))
        .bind(account_id)
        .bind(id)
        .bind(expected_version)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn instrument_list(
        &self,
        account_id: &str,
        manager_id: &str,
        user_id: &str,
        connector_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<InstrumentSummary>> {
        let rows = match connector_id {
            None => sqlx::query(
                crate::sql::INSTRUMENT_LIST_SQL,
            )
            .bind(account_id)
            .bind(manager_id)
            .bind(user_id)
            .bind(after.unwrap_or(""))
            .bind(limit as i64),
            Some(c) => sqlx::query(
                crate::sql::INSTRUMENT_LIST_BY_CONNECTOR_SQL,
            )
            .bind(account_id)
            .bind(manager_id)
            .bind(user_id)
            .bind(c)
            .bind(after.unwrap_or(""))
            .bind(limit as i64),
        }
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(instrument_summary_from_row).collect()
    }

    async fn session_insert(
        &self,
        x: &Session,
        idem: Option<&IdempotencyWrite<'_>>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        record_idempotency(&mut tx, &x.account_id, idem).await?;
        sqlx::query(
            "INSERT INTO sessions (account_id, id, manager_id, user_id, expiry_minutes, expires_at, cap, spent, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&x.account_id)
        .bind(&x.id)
        .bind(&x.manager_id)
        .bind(&x.user_id)
        .bind(x.expiry_minutes)
        .bind(ms(x.expires_at))
        .bind(x.cap)
        .bind(x.spent)
        .bind(ms(x.created_at))
        .bind(ms(x.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(name_conflict)?;
        tx.commit().await.map_err(backend)
    }

    async fn session_get(&self, account_id: &str, id: &str) -> StoreResult<Option<Session>> {
        sqlx::query("SELECT * FROM sessions WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(session_from_row)
            .transpose()
    }

    async fn session_delete(&self, account_id: &str, id: &str) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn session_list(
        &self,
        account_id: &str,
        manager_id: &str,
        user_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Session>> {
        sqlx::query(
            "SELECT * FROM sessions WHERE account_id = $1 AND manager_id = $2 AND user_id = $3 AND id > $4 ORDER BY id LIMIT $5",
        )
        .bind(account_id)
        .bind(manager_id)
        .bind(user_id)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(session_from_row)
        .collect()
    }

    async fn meta_put_if_absent(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        let _turn = self.write_turn().await;
        sqlx::query("INSERT INTO purser_meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        sqlx::query_scalar("SELECT value FROM purser_meta WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }

    fn pool_stats(&self) -> PoolStats {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX).min(size);
        PoolStats {
            in_use: size - idle,
            idle,
            max: self.pool.options().get_max_connections(),
        }
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM purser_meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn sealed_page(
        &self,
        kind: SealedKind,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> StoreResult<Vec<SealedRow>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        sealed_page_on(&mut conn, kind, after, limit).await
    }

    async fn reseal_all(
        &self,
        reseal: &(dyn for<'r> Fn(&'r SealedRow) -> Result<Vec<u8>, String> + Send + Sync),
        meta: &[(&str, Vec<u8>)],
    ) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        // The meta writes come first: on SQLite they take the write lock at once, so the
        // pages below read what no other writer can change before the commit.
        for (key, value) in meta {
            sqlx::query(
                "INSERT INTO purser_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(*key)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        let mut total = 0u64;
        for kind in SealedKind::ALL {
            let (_, update) = crate::sql::sealed_sql(kind);
            let mut after: Option<(String, String)> = None;
            loop {
                let page = sealed_page_on(
                    &mut tx,
                    kind,
                    after.as_ref().map(|(a, i)| (a.as_str(), i.as_str())),
                    crate::sql::RESEAL_PAGE,
                )
                .await?;
                for row in &page {
                    let value = reseal(row).map_err(StoreError::Backend)?;
                    sqlx::query(update)
                        .bind(value)
                        .bind(&row.account_id)
                        .bind(&row.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                    total += 1;
                }
                match page.last() {
                    Some(last) if page.len() == crate::sql::RESEAL_PAGE => {
                        after = Some((last.account_id.clone(), last.id.clone()))
                    }
                    _ => break,
                }
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(total)
    }

    async fn payment_by_token(
        &self,
        account_id: &str,
        token: &str,
    ) -> StoreResult<Option<Payment>> {
        sqlx::query("SELECT * FROM payments WHERE account_id = $1 AND client_token = $2")
            .bind(account_id)
            .bind(token)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(payment_from_row)
            .transpose()
    }

    async fn payments_of_session(
        &self,
        account_id: &str,
        session_id: &str,
    ) -> StoreResult<Vec<Payment>> {
        sqlx::query("SELECT * FROM payments WHERE account_id = $1 AND session_id = $2 ORDER BY created_at, id")
            .bind(account_id)
            .bind(session_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(payment_from_row)
            .collect()
    }

    async fn payment_context(
        &self,
        account_id: &str,
        manager_id: &str,
        session_id: &str,
        instrument_id: &str,
        client_token: Option<&str>,
    ) -> StoreResult<PaymentContext> {
        self.payment_context_impl(account_id, manager_id, session_id, instrument_id, client_token)
            .await
    }

    async fn begin_payments(&self) -> StoreResult<Box<dyn PaymentTx>> {
        self.begin_payments_impl().await
    }

    async fn payment_list(
        &self,
        account_id: &str,
        filter: &PaymentFilter,
        before: Option<&Keyset>,
        limit: usize,
    ) -> StoreResult<Vec<Payment>> {
        let w = crate::sql::payment_list_sql(account_id, filter, before, limit);
        bind_all(sqlx::query(sqlx::AssertSqlSafe(w.sql.as_str())), &w.args)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(payment_from_row)
            .collect()
    }

    async fn payment_buckets(
        &self,
        account_id: &str,
        filter: &PaymentFilter,
        bucket_ms: i64,
    ) -> StoreResult<Vec<SpendBucket>> {
        let w = crate::sql::payment_buckets_sql(account_id, filter, bucket_ms);
        bind_all(sqlx::query(sqlx::AssertSqlSafe(w.sql.as_str())), &w.args)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| {
                Ok(SpendBucket {
                    start: time(r.try_get("bucket").map_err(backend)?),
                    payments: r.try_get("n").map_err(backend)?,
                    value: r.try_get("v").map_err(backend)?,
                })
            })
            .collect()
    }

    async fn user_spent(
        &self,
        account_id: &str,
        manager_id: &str,
        user_id: &str,
        after_day: OffsetDateTime,
        after_month: OffsetDateTime,
    ) -> StoreResult<(i64, i64)> {
        let row = sqlx::query(crate::sql::USER_SPENT_SQL)
            .bind(account_id)
            .bind(manager_id)
            .bind(user_id)
            .bind(ms(after_day))
            .bind(ms(after_month))
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok((
            row.try_get("day").map_err(backend)?,
            row.try_get("month").map_err(backend)?,
        ))
    }

    async fn refusal_insert(&self, r: &Refusal) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO refusals (account_id, id, manager_id, user_id, agent_name, session_id, instrument_id, reason, policy, payment_type, scheme, network, payee, amount, usd_value, message, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(&r.account_id)
        .bind(&r.id)
        .bind(&r.manager_id)
        .bind(&r.user_id)
        .bind(&r.agent_name)
        .bind(&r.session_id)
        .bind(&r.instrument_id)
        .bind(r.reason.as_str())
        .bind(&r.policy)
        .bind(&r.payment_type)
        .bind(&r.scheme)
        .bind(&r.network)
        .bind(&r.payee)
        .bind(&r.amount)
        .bind(r.value)
        .bind(&r.message)
        .bind(ms(r.created_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn refusal_list(
        &self,
        account_id: &str,
        filter: &RefusalFilter,
        before: Option<&Keyset>,
        limit: usize,
    ) -> StoreResult<Vec<Refusal>> {
        let w = crate::sql::refusal_list_sql(account_id, filter, before, limit);
        bind_all(sqlx::query(sqlx::AssertSqlSafe(w.sql.as_str())), &w.args)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| crate::rows::refusal(&Cols { row: r, prefix: "" }))
            .collect()
    }

    async fn policy_get(
        &self,
        account_id: &str,
        manager_id: &str,
        user_id: Option<&str>,
    ) -> StoreResult<Option<StoredPolicy>> {
        sqlx::query(
            "SELECT * FROM spending_policies WHERE account_id = $1 AND manager_id = $2 AND user_id = $3",
        )
        .bind(account_id)
        .bind(manager_id)
        .bind(user_id.unwrap_or(""))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(|r| crate::rows::stored_policy(&Cols { row: r, prefix: "" }))
        .transpose()
    }

    async fn policy_put(&self, p: &StoredPolicy) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO spending_policies (account_id, manager_id, user_id, daily_cap, monthly_cap, max_per_payment, payee_allow, payee_deny, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (account_id, manager_id, user_id) DO UPDATE SET daily_cap = $4, monthly_cap = $5, max_per_payment = $6, payee_allow = $7, payee_deny = $8, updated_at = $9",
        )
        .bind(&p.account_id)
        .bind(&p.manager_id)
        .bind(p.user_id.as_deref().unwrap_or(""))
        .bind(p.policy.daily_cap)
        .bind(p.policy.monthly_cap)
        .bind(p.policy.max_per_payment)
        .bind(crate::sql::list_to_text(&p.policy.payee_allow))
        .bind(crate::sql::list_to_text(&p.policy.payee_deny))
        .bind(ms(p.updated_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn policy_delete(
        &self,
        account_id: &str,
        manager_id: &str,
        user_id: Option<&str>,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "DELETE FROM spending_policies WHERE account_id = $1 AND manager_id = $2 AND user_id = $3",
        )
        .bind(account_id)
        .bind(manager_id)
        .bind(user_id.unwrap_or(""))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn policy_list(
        &self,
        account_id: &str,
        manager_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<StoredPolicy>> {
        // (the manager's own policy has user_id '', first in the order; after it, "")
        let (op, key) = match after {
            None => (">=", ""),
            Some(a) => (">", a),
        };
        // (`op` is one of two constants; values are bound)
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM spending_policies WHERE account_id = $1 AND manager_id = $2 AND user_id {op} $3 ORDER BY user_id LIMIT $4"
        )))
        .bind(account_id)
        .bind(manager_id)
        .bind(key)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(|r| crate::rows::stored_policy(&Cols { row: r, prefix: "" }))
        .collect()
    }
}

/// Bind a filter's parameters in order. (The statements built from filters are made of
/// constant text and numbered placeholders only: every value is bound.)
fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
    args: &'q [crate::sql::Arg],
) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
    for a in args {
        q = match a {
            crate::sql::Arg::Text(t) => q.bind(t.as_str()),
            crate::sql::Arg::Int(i) => q.bind(*i),
        };
    }
    q
}

async fn sealed_page_on(
    conn: &mut <$db as sqlx::Database>::Connection,
    kind: SealedKind,
    after: Option<(&str, &str)>,
    limit: usize,
) -> StoreResult<Vec<SealedRow>> {
    let (page, _) = crate::sql::sealed_sql(kind);
    let (account, id) = after.unwrap_or(("", ""));
    let rows = sqlx::query(page)
        .bind(account)
        .bind(id)
        .bind(limit as i64)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|r| {
            let wallet = if kind == SealedKind::WalletKey {
                let network: String = r.try_get("network").map_err(backend)?;
                Some((
                    parse("network", &network, Network::parse)?,
                    r.try_get("wallet_address").map_err(backend)?,
                ))
            } else {
                None
            };
            Ok(SealedRow {
                kind,
                account_id: r.try_get("account_id").map_err(backend)?,
                id: r.try_get("id").map_err(backend)?,
                value: r.try_get("value").map_err(backend)?,
                wallet,
            })
        })
        .collect()
}

fn session_from_row(r: &$row) -> StoreResult<Session> {
    crate::rows::session(&Cols { row: r, prefix: "" })
}

fn payment_from_row(r: &$row) -> StoreResult<Payment> {
    crate::rows::payment(&Cols { row: r, prefix: "" })
}

fn instrument_summary_from_row(r: &$row) -> StoreResult<InstrumentSummary> {
    Ok(InstrumentSummary {
        account_id: r.try_get("account_id").map_err(backend)?,
        id: r.try_get("id").map_err(backend)?,
        manager_id: r.try_get("manager_id").map_err(backend)?,
        connector_id: r.try_get("connector_id").map_err(backend)?,
        user_id: r.try_get("user_id").map_err(backend)?,
        status: parse(
            "status",
            &r.try_get::<String, _>("status").map_err(backend)?,
            InstrumentStatus::parse,
        )?,
        created_at: time(r.try_get("created_at").map_err(backend)?),
        updated_at: time(r.try_get("updated_at").map_err(backend)?),
    })
}

fn instrument_from_row(r: &$row) -> StoreResult<Instrument> {
    crate::rows::instrument(&Cols { row: r, prefix: "" })
}

    };
}

pub(crate) use sql_store;
