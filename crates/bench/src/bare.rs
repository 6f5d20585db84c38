//! Bare costs, measured by the same binary in the same run: the pieces one payment is made
//! of (a SigV4 signature on the client, the EIP-712 digest, the secp256k1 signature with
//! and without unsealing the key, an fdatasync, a durable SQLite commit, and with
//! `--database-url` a durable PostgreSQL commit).
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use k256::ecdsa::SigningKey;
use purser_chain::payment::{self, BuildContext, BuildError, PayerSigner, Signature, ToSign};
use purser_chain::{BalanceReader, Chain, RpcConfig, x402};
use purser_wallet::{KeyKind, MasterKey, Vault};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Postgres, Sqlite};

use crate::client::{Signer, USER_HEADER};
use crate::kinds::PayKind;
use crate::setup;

/// One measured operation.
pub struct Measure {
    pub name: String,
    pub note: String,
    pub ops: u64,
    pub elapsed: Duration,
    /// CPU time the whole bench process used meanwhile (all its threads, including
    /// sqlx's connection thread); robust to other processes sharing the machine.
    pub cpu: Duration,
    /// CPU time of the database server's processes meanwhile (PostgreSQL only).
    pub db_cpu: Option<Duration>,
    /// Per-op samples in nanoseconds, when taken (for percentiles).
    pub samples_ns: Vec<u64>,
    /// Threads the operation ran on (ops/s is their sum).
    pub threads: usize,
}

impl Measure {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Mean wall time of one op on one thread, microseconds.
    pub fn us_per_op(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e6 * self.threads as f64 / self.ops.max(1) as f64
    }

    /// Mean CPU time of the database server's processes per op, microseconds.
    pub fn db_cpu_us_per_op(&self) -> Option<f64> {
        self.db_cpu
            .map(|c| c.as_secs_f64() * 1e6 / self.ops.max(1) as f64)
    }

    /// Mean CPU time of one op, microseconds.
    pub fn cpu_us_per_op(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ops.max(1) as f64
    }

    /// Nearest-rank percentile of the samples, microseconds.
    pub fn pct_us(&self, q: f64) -> Option<f64> {
        if self.samples_ns.is_empty() {
            return None;
        }
        let mut s = self.samples_ns.clone();
        s.sort_unstable();
        let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
        Some(s[rank - 1] as f64 / 1000.0)
    }
}

/// CPU time used so far by this process (all threads).
pub fn process_cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe {
        libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts);
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Run `f` until `budget` has passed or `max` ops were done.
fn time_loop(budget: Duration, max: u64, mut f: impl FnMut(u64)) -> (u64, Duration) {
    let start = Instant::now();
    let mut n = 0;
    while n < max && start.elapsed() < budget {
        // Batches of 16 keep the clock out of the measurement of sub-µs ops.
        for _ in 0..16 {
            f(n);
            n += 1;
        }
    }
    (n, start.elapsed())
}

fn measure(name: &str, note: &str, budget: Duration, max: u64, f: impl FnMut(u64)) -> Measure {
    let cpu0 = process_cpu_now();
    let (ops, elapsed) = time_loop(budget, max, f);
    Measure {
        name: name.into(),
        note: note.into(),
        ops,
        elapsed,
        cpu: process_cpu_now().saturating_sub(cpu0),
        db_cpu: None,
        samples_ns: Vec::new(),
        threads: 1,
    }
}

pub struct Bare {
    pub cpu: Vec<Measure>,
    pub disk: Vec<Measure>,
}

/// Every bare cost; the PostgreSQL rows too when `pg_url` (a scratch database) is given;
/// the rows of the payment `kind` (its build reading the Solana RPC at `rpc_url`).
pub async fn run(
    dir: &Path,
    budget: Duration,
    pg_url: Option<&str>,
    kind: PayKind,
    rpc_url: Option<&str>,
) -> anyhow::Result<Bare> {
    let mut cpu = tokio::task::spawn_blocking(move || cpu_costs(budget, kind)).await??;
    let handle = tokio::runtime::Handle::current();
    let rpc_url = rpc_url.map(str::to_string);
    cpu.extend(
        tokio::task::spawn_blocking(move || kind_costs(&handle, budget, kind, rpc_url.as_deref()))
            .await??,
    );
    let disk = disk_costs(dir, budget, pg_url).await?;
    Ok(Bare { cpu, disk })
}

fn cpu_costs(budget: Duration, kind: PayKind) -> anyhow::Result<Vec<Measure>> {
    let mut out = Vec::new();

    // The client's share: SigV4 over one ProcessPayment request.
    let signer = Signer::new(
        crate::server::ACCESS_KEY_ID,
        crate::server::SECRET_ACCESS_KEY,
        crate::server::REGION,
    );
    let agent = setup::Agent {
        session_id: "payment-session-0123456789abcdef".into(),
        instrument_id: "payment-instrument-0123456789abcdef".into(),
    };
    let arn = "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/pm-0123456789";
    let body = Bytes::from(setup::payment_body(arn, &agent, kind).to_string());
    let mut failed = None;
    out.push(measure(
        "SigV4-sign one ProcessPayment request (client, aws-sigv4)",
        "canonical request, SHA-256 of the body, key derivation, HMAC",
        budget,
        u64::MAX,
        |_| {
            let mut req = http::Request::builder()
                .method("POST")
                .uri("/payments/processPayment")
                .header(http::header::HOST, "127.0.0.1:8402")
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::CONTENT_LENGTH, body.len())
                .header(USER_HEADER, setup::USER)
                .body(Full::new(body.clone()))
                .expect("a valid request");
            if let Err(e) = signer.sign(
                &mut req,
                "http://127.0.0.1:8402/payments/processPayment",
                &body,
            ) {
                failed = Some(e);
            }
        },
    ));
    if let Some(e) = failed {
        return Err(e);
    }

    // The server's signing job: EIP-712 digest, unseal the wallet key, sign.
    let req = x402::parse_exact_evm("2", &setup::requirement(), None)
        .map_err(|e| anyhow::anyhow!("x402 requirement: {e}"))?;
    let vault = Vault::new(MasterKey::generate());
    let aad = b"123456789012/payment-instrument-0123456789abcdef";
    let wallet = vault.create_wallet(KeyKind::Secp256k1, aad);
    let from = [0x11u8; 20];
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let auth_of = |n: u64| {
        let mut nonce = [0u8; 32];
        nonce[..8].copy_from_slice(&n.to_be_bytes());
        x402::authorization_for(&req, from, now, nonce)
    };
    let digests: Vec<[u8; 32]> = (0..1024)
        .map(|n| x402::transfer_with_authorization_digest(&req, &auth_of(n)))
        .collect();
    let mut sink = 0u8;
    out.push(measure(
        "EIP-712 digest of TransferWithAuthorization",
        "purser_chain::x402::transfer_with_authorization_digest (4 keccak-256)",
        budget,
        u64::MAX,
        |n| sink ^= x402::transfer_with_authorization_digest(&req, &auth_of(n))[0],
    ));
    let key = SigningKey::from_slice(&[0x42u8; 32]).context("a fixed test key")?;
    out.push(measure(
        "secp256k1 sign, raw (k256 sign_prehash_recoverable)",
        "RFC 6979 nonce, one scalar multiplication, recovery id",
        budget,
        u64::MAX,
        |n| {
            let (sig, recid) = key
                .sign_prehash_recoverable(&digests[(n % 1024) as usize])
                .expect("signing a digest");
            sink ^= sig.to_bytes()[0] ^ recid.to_byte();
        },
    ));
    out.push(measure(
        "unseal a wallet key (Vault::open)",
        "2 AES-256-GCM opens: the data key, then the key",
        budget,
        u64::MAX,
        |_| sink ^= vault.open(aad, &wallet.sealed_key).expect("unsealing")[0],
    ));
    let secret = vault.open(aad, &wallet.sealed_key).expect("unsealing");
    out.push(measure(
        "parse a key (k256 SigningKey::from_slice)",
        "derives the public key (a variable-base scalar multiplication); not on the server's signing path",
        budget,
        u64::MAX,
        |_| {
            let k = SigningKey::from_slice(&secret).expect("a valid key");
            sink ^= k.verifying_key().to_encoded_point(true).as_bytes()[1];
        },
    ));
    drop(secret);
    out.push(measure(
        "secp256k1 sign through the Vault (unseal + sign)",
        "Vault::sign_secp256k1_digest, the server's path: unseal, sign from the secret scalar",
        budget,
        u64::MAX,
        |n| {
            let sig = vault
                .sign_secp256k1_digest(aad, &wallet.sealed_key, &digests[(n % 1024) as usize])
                .expect("vault signing");
            sink ^= sig[64];
        },
    ));
    out.push(measure(
        "server signing job: digest + Vault sign + x402 payload JSON",
        "what the ledger does per payment between reserve and record",
        budget,
        u64::MAX,
        |n| {
            let auth = auth_of(n);
            let d = x402::transfer_with_authorization_digest(&req, &auth);
            let sig = vault
                .sign_secp256k1_digest(aad, &wallet.sealed_key, &d)
                .expect("vault signing");
            sink ^= x402::exact_evm_payload(&auth, &sig).to_string().len() as u8;
        },
    ));
    // The same job on every core at once (the ledger signs a batch in parallel).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu0 = process_cpu_now();
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let vault = &vault;
                let wallet = &wallet;
                let digests = &digests;
                s.spawn(move || {
                    let mut x = 0u8;
                    let (n, _) = time_loop(budget, u64::MAX, |n| {
                        let d = &digests[((n + t as u64 * 512) % 1024) as usize];
                        x ^= vault
                            .sign_secp256k1_digest(aad, &wallet.sealed_key, d)
                            .expect("vault signing")[0];
                    });
                    std::hint::black_box(x);
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    out.push(Measure {
        name: format!("Vault sign on {threads} threads at once"),
        note: "aggregate of all cores".into(),
        ops: total,
        elapsed: start.elapsed(),
        cpu: process_cpu_now().saturating_sub(cpu0),
        db_cpu: None,
        samples_ns: Vec::new(),
        threads,
    });
    std::hint::black_box(sink);
    Ok(out)
}

/// The self-custody signer of the server (purser-core's `VaultSigner`): the sealed key
/// opened for each signature, secp256k1 over a digest or ed25519 over a Solana message.
struct VaultSigner<'a> {
    vault: &'a Vault,
    aad: &'a [u8],
    sealed_key: &'a [u8],
}

#[async_trait::async_trait]
impl PayerSigner for VaultSigner<'_> {
    async fn sign(&self, what: &ToSign) -> Result<Signature, BuildError> {
        self.sign_now(what)
    }
}

impl VaultSigner<'_> {
    /// What the ledger does for a self-custody payment (synchronous, on its own thread).
    fn sign_now(&self, what: &ToSign) -> Result<Signature, BuildError> {
        match what {
            ToSign::TypedData { digest, .. } | ToSign::EvmTransaction { digest, .. } => self
                .vault
                .sign_secp256k1_digest(self.aad, self.sealed_key, digest)
                .map(Signature::Secp256k1),
            ToSign::SolanaMessage { message } => self
                .vault
                .sign_ed25519(self.aad, self.sealed_key, message)
                .map(Signature::Ed25519),
        }
        .map_err(|_| BuildError::Signing)
    }
}

/// The payment kind's own costs, through purser-chain's public payment API as the server
/// calls it: read the input (`payment::parse`), build what the payer signs
/// (`Kind::build`), sign it through the Vault and turn the signature into the reply
/// (`Unsigned::finish`), and the whole signing job (build + sign + finish).
fn kind_costs(
    handle: &tokio::runtime::Handle,
    budget: Duration,
    kind: PayKind,
    rpc_url: Option<&str>,
) -> anyhow::Result<Vec<Measure>> {
    let mut out = Vec::new();
    let k = kind.name();
    let input = kind.chain_input();
    let mut sink = 0usize;
    let mut bad = None;
    out.push(measure(
        &format!("{k}: read the input (payment::parse)"),
        if matches!(kind, PayKind::MppEvm | PayKind::MppSolana) {
            "challenge auth-params, base64url + JSON of the request, every check"
        } else {
            "the PaymentRequirements checks of the kind"
        },
        budget,
        u64::MAX,
        |_| match payment::parse(&input) {
            Ok(r) => sink ^= r.amount as usize,
            Err(e) => bad = Some(e.message),
        },
    ));
    if let Some(e) = bad {
        anyhow::bail!("{k}: the bench's input is refused: {e}");
    }
    let req = payment::parse(&input).map_err(|e| anyhow::anyhow!("{k}: {}", e.message))?;

    let vault = Vault::new(MasterKey::generate());
    let aad = b"123456789012/payment-instrument-0123456789abcdef";
    let wallet = vault.create_wallet(
        if kind.is_solana() {
            KeyKind::Ed25519
        } else {
            KeyKind::Secp256k1
        },
        aad,
    );
    let mut config = RpcConfig::default();
    if let Some(url) = rpc_url {
        config = config
            .with_url(Chain::SolanaDevnet, url)
            .and_then(|c| c.with_url(Chain::TempoModerato, url))
            .context("the RPC stand-in's URL")?;
    }
    let chains = BalanceReader::new(config).context("an RPC client")?;
    let signer = VaultSigner {
        vault: &vault,
        aad,
        sealed_key: &wallet.sealed_key,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let ctx = BuildContext {
        payer: &wallet.address,
        now,
        chains: &chains,
        signer: &signer,
    };
    let build = || {
        handle
            .block_on(req.kind.build(&ctx))
            .map_err(|e| anyhow::anyhow!("{k}: build: {e:?}"))
    };
    let unsigned = build()?;
    let what = unsigned.to_sign();
    let (build_note, sign_note) = match (&what, kind) {
        (_, PayKind::ExactSvm) => (
            "payer's ATA (PDA search), v0 message of 4 instructions; includes the getLatestBlockhash round trip to the bench's loopback RPC",
            "Vault::sign_ed25519 (unseal + ed25519) + wire transaction, base64, payload JSON",
        ),
        (ToSign::SolanaMessage { .. }, _) => (
            "payer's and recipient's ATAs (PDA searches), v0 message; blockhash from the challenge",
            "Vault::sign_ed25519 (unseal + ed25519) + wire transaction, base64, credential",
        ),
        (_, PayKind::MppEvm) => (
            "EIP-3009 authorization + EIP-712 digest (keccak-256)",
            "Vault::sign_secp256k1_digest (unseal + secp256k1) + credential (JSON, base64url)",
        ),
        (_, PayKind::ExactEvm) => (
            "EIP-3009 authorization + EIP-712 digest (keccak-256)",
            "Vault::sign_secp256k1_digest (unseal + secp256k1) + x402 payload JSON",
        ),
        _ => (
            "Permit2 witness authorization + EIP-712 digest (keccak-256)",
            "Vault::sign_secp256k1_digest (unseal + secp256k1) + x402 payload JSON",
        ),
    };
    let mut failed = None;
    out.push(measure(
        &format!("{k}: build what the payer signs (Kind::build + to_sign)"),
        build_note,
        budget,
        u64::MAX,
        |_| match build() {
            Ok(u) => sink ^= std::hint::black_box(u).to_sign_len(),
            Err(e) => failed = Some(e),
        },
    ));
    if let Some(e) = failed.take() {
        return Err(e);
    }
    out.push(measure(
        &format!("{k}: sign through the Vault + finish the reply"),
        sign_note,
        budget,
        u64::MAX,
        |_| match signer.sign_now(&what) {
            Ok(sig) => sink ^= unsigned.finish(&sig).map_or(0, |v| v.to_string().len()),
            Err(_) => failed = Some(anyhow::anyhow!("{k}: Vault signing failed")),
        },
    ));
    if let Some(e) = failed.take() {
        return Err(e);
    }
    out.push(measure(
        &format!("{k}: server signing job (build + Vault sign + finish)"),
        "what ProcessPayment does per payment of this kind around the ledger",
        budget,
        u64::MAX,
        |_| {
            let r = build().and_then(|u| {
                let sig = signer
                    .sign_now(&u.to_sign())
                    .map_err(|_| anyhow::anyhow!("{k}: Vault signing failed"))?;
                Ok(u.finish(&sig).map_or(0, |v| v.to_string().len()))
            });
            match r {
                Ok(n) => sink ^= n,
                Err(e) => failed = Some(e),
            }
        },
    ));
    if let Some(e) = failed.take() {
        return Err(e);
    }
    std::hint::black_box(sink);
    Ok(out)
}

/// A cheap use of a built message, so that the build is not optimised away.
trait ToSignLen {
    fn to_sign_len(&self) -> usize;
}

impl ToSignLen for Box<dyn payment::Unsigned> {
    fn to_sign_len(&self) -> usize {
        match self.to_sign() {
            ToSign::TypedData { digest, .. } | ToSign::EvmTransaction { digest, .. } => {
                digest[0] as usize
            }
            ToSign::SolanaMessage { message } => message.len(),
        }
    }
}

async fn disk_costs(
    dir: &Path,
    budget: Duration,
    pg_url: Option<&str>,
) -> anyhow::Result<Vec<Measure>> {
    let mut out = Vec::new();
    let max_ops = 20_000;

    // fdatasync rate of the disk under the data directory.
    for (name, append) in [
        ("write 4 KiB in place + fdatasync", false),
        ("append 4 KiB + fdatasync", true),
    ] {
        let path = dir.join(if append {
            "fsync-append.bin"
        } else {
            "fsync-inplace.bin"
        });
        let dir = dir.to_path_buf();
        let m = tokio::task::spawn_blocking(move || -> anyhow::Result<Measure> {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(&path)?;
            let block = [0xA5u8; 4096];
            f.write_all(&block)?;
            f.sync_all()?;
            std::fs::File::open(&dir)?.sync_all()?;
            let mut samples = Vec::new();
            let cpu0 = process_cpu_now();
            let start = Instant::now();
            let mut n = 0u64;
            while n < max_ops && start.elapsed() < budget {
                let t = Instant::now();
                if append {
                    f.write_all(&block)?;
                } else {
                    f.write_all_at(&block, 0)?;
                }
                f.sync_data()?;
                samples.push(t.elapsed().as_nanos() as u64);
                n += 1;
            }
            let elapsed = start.elapsed();
            let cpu = process_cpu_now().saturating_sub(cpu0);
            drop(f);
            let _ = std::fs::remove_file(&path);
            Ok(Measure {
                name: name.into(),
                note: "std File::sync_data (fdatasync)".into(),
                ops: n,
                elapsed,
                cpu,
                db_cpu: None,
                samples_ns: samples,
                threads: 1,
            })
        })
        .await??;
        out.push(m);
    }

    // SQLite with the server's settings: WAL, synchronous=FULL, through sqlx.
    let db = dir.join("commit-bench.db");
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10));
    let mut conn = opts
        .connect()
        .await
        .context("opening the commit-bench database")?;
    sqlx::query(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, session TEXT NOT NULL, payload TEXT NOT NULL)",
    )
    .execute(&mut conn)
    .await?;
    out.extend(
        commit_costs::<Sqlite>(
            &mut conn,
            &SqlLabels {
                engine: "SQLite",
                commit_note: "sqlx, WAL, synchronous=FULL, one connection, one after another",
                batch_note: "same settings; a group commit of 64 payments' rows",
                statement_note: "no commit: the cost of one statement round trip through sqlx",
            },
            budget,
            || None,
        )
        .await?,
    );
    conn.close().await?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }

    // PostgreSQL with its own settings (shown in the report), in a scratch database.
    if let Some(url) = pg_url {
        let mut conn = PgConnection::connect(url)
            .await
            .context("connecting to the scratch PostgreSQL database")?;
        sqlx::query(
            "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, session TEXT NOT NULL, payload TEXT NOT NULL)",
        )
        .execute(&mut conn)
        .await?;
        out.extend(
            commit_costs::<Postgres>(
                &mut conn,
                &SqlLabels {
                    engine: "PostgreSQL",
                    commit_note: "sqlx over loopback TCP, the server's synchronous_commit, one connection, one after another",
                    batch_note: "same; 64 INSERT statements then one commit",
                    statement_note: "no commit: one statement round trip (sqlx, loopback TCP, backend)",
                },
                budget,
                crate::server::postgres_cpu,
            )
            .await?,
        );
        conn.close().await?;
    }
    Ok(out)
}

/// Names and notes of the rows of one SQL engine.
struct SqlLabels {
    engine: &'static str,
    commit_note: &'static str,
    batch_note: &'static str,
    statement_note: &'static str,
}

/// Durable commits (1 row, 64 rows) and one statement round trip on `conn`, which holds
/// an empty table `t (id, session, payload)`; `db_cpu` reads the database server's CPU
/// time (for an engine in its own processes).
async fn commit_costs<DB>(
    conn: &mut DB::Connection,
    labels: &SqlLabels,
    budget: Duration,
    db_cpu: impl Fn() -> Option<Duration>,
) -> anyhow::Result<Vec<Measure>>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'t> &'t str: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let max_ops = 20_000;
    let engine = labels.engine;
    let mut out = Vec::new();
    let db_used = |before: Option<Duration>| match (before, db_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    // A payment row is ~0.6 KiB (ids, addresses, the x402 payload JSON).
    let payload = "x".repeat(600);
    let insert = "INSERT INTO t (session, payload) VALUES ($1, $2)";

    let mut samples = Vec::new();
    let db0 = db_cpu();
    let cpu0 = process_cpu_now();
    let start = Instant::now();
    let mut n = 0u64;
    while n < max_ops && start.elapsed() < budget {
        let t = Instant::now();
        let mut tx = conn.begin().await?;
        sqlx::query(insert)
            .bind("payment-session-0123456789abcdef")
            .bind(payload.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        samples.push(t.elapsed().as_nanos() as u64);
        n += 1;
    }
    out.push(Measure {
        name: format!("{engine} durable commit: 1-row INSERT transaction"),
        note: labels.commit_note.into(),
        ops: n,
        elapsed: start.elapsed(),
        cpu: process_cpu_now().saturating_sub(cpu0),
        db_cpu: db_used(db0),
        samples_ns: samples,
        threads: 1,
    });

    const ROWS: u64 = 64;
    let mut samples = Vec::new();
    let db0 = db_cpu();
    let cpu0 = process_cpu_now();
    let start = Instant::now();
    let mut n = 0u64;
    while n < max_ops / ROWS && start.elapsed() < budget {
        let t = Instant::now();
        let mut tx = conn.begin().await?;
        for _ in 0..ROWS {
            sqlx::query(insert)
                .bind("payment-session-0123456789abcdef")
                .bind(payload.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        samples.push(t.elapsed().as_nanos() as u64);
        n += 1;
    }
    out.push(Measure {
        name: format!("{engine} durable commit: {ROWS}-row INSERT transaction"),
        note: labels.batch_note.into(),
        ops: n,
        elapsed: start.elapsed(),
        cpu: process_cpu_now().saturating_sub(cpu0),
        db_cpu: db_used(db0),
        samples_ns: samples,
        threads: 1,
    });

    // One statement inside an open transaction: the per-statement cost (sqlx hands each
    // SQLite statement to its connection worker thread and waits for the answer; a
    // PostgreSQL statement is one round trip to the backend).
    let mut tx = conn.begin().await?;
    let db0 = db_cpu();
    let cpu0 = process_cpu_now();
    let start = Instant::now();
    let mut n = 0u64;
    while n < 200_000 && start.elapsed() < budget {
        sqlx::query("UPDATE t SET session = $1 WHERE id = $2")
            .bind("payment-session-0123456789abcdef")
            .bind((n % 64 + 1) as i64)
            .execute(&mut *tx)
            .await?;
        n += 1;
    }
    let elapsed = start.elapsed();
    let cpu = process_cpu_now().saturating_sub(cpu0);
    let db = db_used(db0);
    tx.rollback().await?;
    out.push(Measure {
        name: format!("{engine} one UPDATE by primary key in an open transaction"),
        note: labels.statement_note.into(),
        ops: n,
        elapsed,
        cpu,
        db_cpu: db,
        samples_ns: Vec::new(),
        threads: 1,
    });
    Ok(out)
}
