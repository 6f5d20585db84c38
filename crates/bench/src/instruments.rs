//! The instruments-at-scale mode: for each scale S, a fresh store and fresh nodes; one
//! real instrument created through the API, S - 1 copies of its row bulk-inserted straight
//! into the `instruments` table, ANALYZE (PostgreSQL: VACUUM ANALYZE), the nodes restarted; then ListPaymentInstruments
//! (first page; pages deep in the listing, following nextToken) and
//! CreatePaymentInstrument measured through the API at each concurrency.
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng;
use serde_json::json;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

use crate::client::{Conn, Signer};
use crate::load::{self, LevelResult, Workload};
use crate::server::{self, ACCOUNT_ID, Cluster, NodeSpec, Store};
use crate::setup;

/// maxResults of every ListPaymentInstruments request (the server's largest page).
pub const PAGE: u32 = 100;
/// Ids per INSERT statement of the bulk load.
const BATCH: usize = 50_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    ListFirst,
    ListDeep,
    Create,
}

impl Op {
    pub const ALL: [Op; 3] = [Op::ListFirst, Op::ListDeep, Op::Create];

    pub fn label(self) -> &'static str {
        match self {
            Op::ListFirst => "ListPaymentInstruments, first page",
            Op::ListDeep => "ListPaymentInstruments, walking pages by nextToken",
            Op::Create => "CreatePaymentInstrument (Ethereum wallet)",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Op::ListFirst | Op::ListDeep => "pages",
            Op::Create => "creates",
        }
    }
}

/// How long each step of a scale's setup took.
pub struct SetupTimes {
    /// Node start, CreatePaymentManager, CreatePaymentConnector, one CreatePaymentInstrument.
    pub api: Duration,
    pub bulk: Duration,
    pub analyze: Duration,
    /// Stopping the nodes before the bulk load and starting them again after it.
    pub restart: Duration,
}

impl SetupTimes {
    pub fn total(&self) -> Duration {
        self.api + self.bulk + self.analyze + self.restart
    }
}

pub struct ScaleResult {
    pub scale: u64,
    /// Rows in `instruments` after the bulk load (before any CreatePaymentInstrument).
    pub rows: u64,
    pub setup: SetupTimes,
    pub results: Vec<(Op, LevelResult)>,
}

/// Everything a scale needs besides its store.
pub struct Params<'a> {
    pub nodes: usize,
    pub signer: &'a Signer,
    pub concurrency: &'a [usize],
    pub warmup: Duration,
    pub duration: Duration,
    pub max_requests: u64,
}

/// One scale on a fresh store (`spec.store`), nodes started and stopped here.
pub async fn run_scale(spec: &NodeSpec, p: &Params<'_>, scale: u64) -> anyhow::Result<ScaleResult> {
    let t = Instant::now();
    let mut cluster = Cluster::start(spec, p.nodes).await?;
    let mut conn = Conn::connect(cluster.first()).await?;
    let ctl = setup::control(&mut conn, p.signer)
        .await
        .with_context(|| format!("setup; node logs:\n{}", cluster.log_tail()))?;
    let (real_id, status) = setup::create_instrument(&mut conn, p.signer, &ctl, "ETHEREUM")
        .await
        .with_context(|| format!("setup; node logs:\n{}", cluster.log_tail()))?;
    if status != "ACTIVE" {
        bail!("the new instrument {real_id} is {status}, not ACTIVE");
    }
    drop(conn);
    let api = t.elapsed();

    let t = Instant::now();
    cluster.stop();
    drop(cluster);
    let mut restart = t.elapsed();

    eprintln!("bulk-inserting {} instrument rows...", scale - 1);
    let (rows, bulk, analyze) = match &spec.store {
        Store::Sqlite { data_dir } => {
            bulk_sqlite(&data_dir.join(server::SQLITE_FILE), &real_id, scale - 1).await?
        }
        Store::Postgres { url } => bulk_postgres(url, &real_id, scale - 1).await?,
    };
    eprintln!(
        "  {rows} rows: insert {:.1} s, (VACUUM) ANALYZE {:.1} s",
        bulk.as_secs_f64(),
        analyze.as_secs_f64()
    );

    let t = Instant::now();
    let cluster = Cluster::start(spec, p.nodes).await?;
    restart += t.elapsed();

    let list = json!({"paymentManagerArn": ctl.manager_arn, "maxResults": PAGE});
    let mut results = Vec::new();
    for op in Op::ALL {
        let workload = match op {
            Op::ListFirst => Workload::Repeat {
                path: setup::LIST_INSTRUMENTS,
                body: list.clone(),
            },
            Op::ListDeep => Workload::WalkPages {
                path: setup::LIST_INSTRUMENTS,
                body: list.clone(),
            },
            Op::Create => Workload::Repeat {
                path: setup::CREATE_INSTRUMENT,
                body: setup::instrument_body(&ctl, "ETHEREUM"),
            },
        };
        for &clients in p.concurrency {
            let cfg = load::LevelConfig {
                clients,
                warmup: p.warmup,
                duration: p.duration,
                max_requests: p.max_requests,
                rate: None,
                db_cpu: spec.store.is_postgres(),
            };
            let r = load::run_level(&cluster, p.signer, &workload, &cfg).await?;
            eprintln!(
                "  S={scale} {} x{clients}: {:.0} {}/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                op.label(),
                r.throughput(),
                op.unit(),
                r.quantile_ms(0.5),
                r.quantile_ms(0.99),
                r.errors
            );
            if let Some(e) = &r.first_error {
                eprintln!("  first error: {e}");
            }
            results.push((op, r));
        }
    }
    drop(cluster);
    Ok(ScaleResult {
        scale,
        rows,
        setup: SetupTimes {
            api,
            bulk,
            analyze,
            restart,
        },
        results,
    })
}

/// `n` fresh instrument ids in the server's format (`payment-instrument-` + 15 of
/// `[0-9A-Za-z]`).
fn new_ids(n: usize) -> Vec<String> {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| {
            let mut id = String::with_capacity(34);
            id.push_str("payment-instrument-");
            id.extend((0..15).map(|_| ALNUM[rng.gen_range(0..ALNUM.len())] as char));
            id
        })
        .collect()
}

/// `INSERT … SELECT` copying every column of the real row but its id (taken from
/// `id_expr`) and its status (ACTIVE).
fn copy_statement(columns: &[String], ids_from: &str, id_expr: &str, sqlite: bool) -> String {
    let cols = columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let select = columns
        .iter()
        .map(|c| match c.as_str() {
            "id" => id_expr.to_string(),
            "status" => "'ACTIVE'".to_string(),
            _ => format!("r.\"{c}\""),
        })
        .collect::<Vec<_>>()
        .join(", ");
    // A duplicate of a random id is skipped (the row count tells).
    let (or_ignore, on_conflict) = if sqlite {
        (" OR IGNORE", "")
    } else {
        ("", " ON CONFLICT DO NOTHING")
    };
    format!(
        "INSERT{or_ignore} INTO instruments ({cols}) SELECT {select} FROM instruments r, {ids_from} WHERE r.account_id = $2 AND r.id = $3{on_conflict}"
    )
}

fn check_columns(columns: &[String]) -> anyhow::Result<()> {
    for c in columns {
        if !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            bail!("unexpected column name {c:?} in instruments");
        }
    }
    for need in ["account_id", "id", "status"] {
        if !columns.iter().any(|c| c == need) {
            bail!("the instruments table has no {need} column");
        }
    }
    Ok(())
}

fn progress(done: usize, total: usize) {
    if total >= 200_000 {
        eprintln!("  {done} / {total}");
    }
}

/// Copies of `real_id` into the SQLite file of stopped nodes: one transaction of
/// multi-row `INSERT … SELECT` statements (ids from `json_each`), then ANALYZE.
async fn bulk_sqlite(
    file: &Path,
    real_id: &str,
    copies: u64,
) -> anyhow::Result<(u64, Duration, Duration)> {
    let mut conn = SqliteConnectOptions::from_str(&format!("sqlite://{}", file.display()))?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .connect()
        .await
        .with_context(|| format!("opening {}", file.display()))?;
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('instruments') ORDER BY cid")
            .fetch_all(&mut conn)
            .await?;
    check_columns(&columns)?;
    let sql = copy_statement(&columns, "json_each($1) AS n", "n.value", true);
    let t = Instant::now();
    let total = copies as usize;
    let mut tx = conn.begin().await?;
    let mut done = 0;
    while done < total {
        let n = BATCH.min(total - done);
        let ids = serde_json::to_string(&new_ids(n))?;
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(ids)
            .bind(ACCOUNT_ID)
            .bind(real_id)
            .execute(&mut *tx)
            .await
            .context("bulk INSERT into instruments")?;
        done += n;
        progress(done, total);
    }
    tx.commit().await?;
    let bulk = t.elapsed();
    let t = Instant::now();
    sqlx::query("ANALYZE").execute(&mut conn).await?;
    let analyze = t.elapsed();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM instruments")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok((rows as u64, bulk, analyze))
}

/// Copies of `real_id` into the PostgreSQL database of stopped nodes: one transaction of
/// multi-row `INSERT … SELECT` statements (ids from `UNNEST` of a text array), then
/// VACUUM ANALYZE: the table as autovacuum leaves it after a bulk load (visibility map and
/// hint bits set), so that the measured pages neither pay for the first visit of each row
/// nor share the machine with autovacuum.
async fn bulk_postgres(
    url: &str,
    real_id: &str,
    copies: u64,
) -> anyhow::Result<(u64, Duration, Duration)> {
    let mut conn = PgConnection::connect(url)
        .await
        .context("connecting to the run's database")?;
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'instruments' ORDER BY ordinal_position",
    )
    .fetch_all(&mut conn)
    .await?;
    check_columns(&columns)?;
    let sql = copy_statement(&columns, "UNNEST($1::text[]) AS n(id)", "n.id", false);
    let t = Instant::now();
    let total = copies as usize;
    let mut tx = conn.begin().await?;
    let mut done = 0;
    while done < total {
        let n = BATCH.min(total - done);
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(new_ids(n))
            .bind(ACCOUNT_ID)
            .bind(real_id)
            .execute(&mut *tx)
            .await
            .context("bulk INSERT into instruments")?;
        done += n;
        progress(done, total);
    }
    tx.commit().await?;
    let bulk = t.elapsed();
    let t = Instant::now();
    sqlx::query("VACUUM ANALYZE instruments")
        .execute(&mut conn)
        .await?;
    let analyze = t.elapsed();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM instruments")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok((rows as u64, bulk, analyze))
}
