//! `purser admin`: key care and backups, run by an operator next to (or instead of) the
//! service, with the same configuration as `purser serve`.
//!
//! Where the master key lives decides how a rotation hands over the new one:
//! * in the key file `<data dir>/master.key` (the default): the new key is first written
//!   durably to `master.key.next` (0600), then the database is re-sealed in ONE
//!   transaction, then `master.key.next` is renamed over `master.key`. A kill before the
//!   commit leaves the database under the old key (`master.key`); a kill between the
//!   commit and the rename leaves it under the key in `master.key.next`, and whichever
//!   command opens the database next (`serve`, `admin check`, `admin rotate-master-key`)
//!   sees that the canary opens with `master.key.next` and finishes the rename.
//! * in `PURSER_MASTER_KEY` or the config file's `master_key`: the operator gives the new
//!   key in `PURSER_NEW_MASTER_KEY` (or `--new-key-file`) and, once the command says it is
//!   done, configures it everywhere. Killed, the database is under one of the two keys and
//!   `admin check` (or a rerun) names which by key id.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use purser_core::keycare::{self, Rotated, Sealing};
use purser_core::store::Store;
use purser_wallet::{MasterKey, Vault};

use crate::config::{Config, ServeArgs};

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Re-seal every data key (wallet keys, credential-provider secrets, linked accounts)
    /// under a new master key, in one transaction. Stop every `purser serve` node first.
    ///
    /// With the key in <data dir>/master.key, the new key is generated (or read from
    /// --new-key-file) into master.key.next and renamed over master.key once the
    /// database is re-sealed. With PURSER_MASTER_KEY (or `master_key` in the config file),
    /// give the new key in PURSER_NEW_MASTER_KEY or --new-key-file, then configure it on
    /// every node. Keys are never printed; key ids are.
    RotateMasterKey {
        #[command(flatten)]
        args: ServeArgs,
        /// File holding the new master key (base64 of 32 bytes)
        /// [env: PURSER_NEW_MASTER_KEY holds the key itself]
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
    /// Copy the SQLite database, consistently, while `purser serve` runs (the copy is
    /// mode 0600; for PostgreSQL use pg_dump).
    Backup {
        #[command(flatten)]
        args: ServeArgs,
        /// The new file to write (refused if it exists)
        #[arg(long)]
        to: PathBuf,
    },
    /// Open the database with the configured master key and check that every sealed value
    /// opens (and every wallet key gives its stored address). Exits non-zero on any
    /// failure, naming the failing records (never a secret).
    Check {
        #[command(flatten)]
        args: ServeArgs,
    },
}

pub async fn run(cmd: AdminCommand, env: crate::config::Env<'_>) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::RotateMasterKey { args, new_key_file } => {
            let cfg = crate::config::resolve(&args, env)?;
            let new_key = match new_key_file {
                Some(path) => Some(read_key_file(&path)?),
                None => env("PURSER_NEW_MASTER_KEY")
                    .map(|k| MasterKey::from_base64(&k).context("PURSER_NEW_MASTER_KEY"))
                    .transpose()?,
            };
            rotate(&cfg, new_key).await
        }
        AdminCommand::Backup { args, to } => {
            backup(&crate::config::resolve(&args, env)?, &to).await
        }
        AdminCommand::Check { args } => check(&crate::config::resolve(&args, env)?).await,
    }
}

/// Where the master key comes from.
pub enum KeySource {
    /// `PURSER_MASTER_KEY` or the config file's `master_key`.
    Configured,
    /// The key file in the data directory.
    File(PathBuf),
}

/// The master key the configuration names. With `create`, a missing key file is
/// generated (the first start of `serve`); admin commands never create one.
pub fn load_master_key(cfg: &Config, create: bool) -> anyhow::Result<(MasterKey, KeySource)> {
    if let Some(k) = &cfg.master_key {
        let key = MasterKey::from_base64(k.expose()).context("PURSER_MASTER_KEY")?;
        return Ok((key, KeySource::Configured));
    }
    let path = cfg.data_dir.join("master.key");
    let key = if create {
        let (key, created) = MasterKey::load_or_create(&path)?;
        if created {
            tracing::info!(path = %path.display(), "generated a new master key");
        }
        key
    } else {
        read_key_file(&path).with_context(|| {
            "no master key: set PURSER_MASTER_KEY or run from the data directory of the database"
        })?
    };
    Ok((key, KeySource::File(path)))
}

fn read_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    MasterKey::from_base64(&text).with_context(|| format!("{}", path.display()))
}

/// `master.key` -> `master.key.next`.
fn next_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".next");
    path.with_file_name(name)
}

fn sync_dir(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// Finish a rotation killed between its commit and its rename: when the key file does
/// not open the database but `master.key.next` does, rename it over the key file.
pub async fn settle(
    store: &dyn Store,
    key: MasterKey,
    source: &KeySource,
) -> anyhow::Result<MasterKey> {
    let KeySource::File(path) = source else {
        return Ok(key);
    };
    if !matches!(
        keycare::sealing(store, &Vault::new(key.clone())).await?,
        Sealing::Other { .. }
    ) {
        return Ok(key);
    }
    let next = next_path(path);
    let Ok(next_key) = read_key_file(&next) else {
        return Ok(key);
    };
    if keycare::sealing(store, &Vault::new(next_key.clone())).await? != Sealing::Opens {
        return Ok(key);
    }
    std::fs::rename(&next, path)
        .with_context(|| format!("renaming {} to {}", next.display(), path.display()))?;
    sync_dir(path)?;
    tracing::warn!(
        key_id = %next_key.key_id(),
        "finished an interrupted master-key rotation: the database is sealed under the key of {}, now renamed to {}",
        next.display(),
        path.display()
    );
    Ok(next_key)
}

/// An admin command never creates a database: refuse an SQLite file that is missing.
fn require_existing(cfg: &Config) -> anyhow::Result<()> {
    if let Some(rest) = cfg.database_url.strip_prefix("sqlite:") {
        let rest = rest.trim_start_matches("//");
        let file = rest.split('?').next().unwrap_or(rest);
        if !Path::new(file).is_file() {
            bail!("no database at {file}");
        }
    }
    Ok(())
}

async fn open_existing(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    require_existing(cfg)?;
    crate::open_store(cfg).await
}

async fn rotate(cfg: &Config, new_key: Option<MasterKey>) -> anyhow::Result<()> {
    let (key, source) = load_master_key(cfg, false)?;
    let store = open_existing(cfg).await?;
    let key = settle(&*store, key, &source).await?;
    let old = Vault::new(key);
    let (new, next) = match &source {
        KeySource::Configured => {
            let Some(new) = new_key else {
                bail!(
                    "the master key comes from PURSER_MASTER_KEY (or the config file): give the new key in PURSER_NEW_MASTER_KEY or --new-key-file"
                );
            };
            (new, None)
        }
        KeySource::File(path) => {
            // The database opens under the key file now (or the check below says it
            // does not): a master.key.next is what a rotation left before committing.
            let next = next_path(path);
            let new = match new_key {
                Some(k) => {
                    remove_if_present(&next)?;
                    write_key(&next, &k)?;
                    k
                }
                None => match read_key_file(&next) {
                    Ok(k) => k,
                    Err(_) => {
                        remove_if_present(&next)?;
                        let k = MasterKey::generate();
                        write_key(&next, &k)?;
                        k
                    }
                },
            };
            (new, Some((next, path.clone())))
        }
    };
    let new_vault = Vault::new(new);
    let outcome = keycare::rotate(&*store, &old, &new_vault)
        .await
        .map_err(|e| match e {
            keycare::RotateError::Unreadable(failures) => {
                for f in &failures {
                    println!(
                        "FAILED {} {}/{}: {}",
                        f.kind.label(),
                        f.account_id,
                        f.id,
                        f.reason
                    );
                }
                anyhow::anyhow!(keycare::RotateError::Unreadable(failures))
            }
            e => anyhow::anyhow!(e),
        })?;
    if let Some((next, path)) = &next {
        std::fs::rename(next, path)
            .with_context(|| format!("renaming {} to {}", next.display(), path.display()))?;
        sync_dir(path)?;
    }
    match outcome {
        Rotated::Done(counts) => {
            let parts: Vec<String> = counts
                .iter()
                .map(|(k, n)| format!("{n} {}", k.label()))
                .collect();
            println!("re-sealed {} under the new master key", parts.join(", "));
        }
        Rotated::AlreadyUnderNewKey => {
            println!("the database was already sealed under the new master key");
        }
    }
    println!(
        "the database is sealed under master key {} (was {})",
        new_vault.key_id(),
        old.key_id()
    );
    match &next {
        Some((_, path)) => println!("the new key is in {}", path.display()),
        None => println!(
            "set PURSER_MASTER_KEY (or master_key in the config file) of every node to the new key before starting them"
        ),
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Write a key file durably (0600, file and directory fsynced) before anything is sealed
/// under it.
fn write_key(path: &Path, key: &MasterKey) -> anyhow::Result<()> {
    purser_wallet::write_private(path, key.to_base64().as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    sync_dir(path)
}

async fn backup(cfg: &Config, to: &Path) -> anyhow::Result<()> {
    if !cfg.database_url.starts_with("sqlite:") {
        bail!(
            "`purser admin backup` copies SQLite databases; back up PostgreSQL with pg_dump (see the README)"
        );
    }
    require_existing(cfg)?;
    let store = purser_store::SqliteStore::open(&cfg.database_url)
        .await
        .context("opening the database")?;
    store
        .backup_to(to)
        .await
        .with_context(|| format!("backing up to {}", to.display()))?;
    let key_id = store
        .meta_get("master-key-id")
        .await?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    println!("backed up the database to {}", to.display());
    if let Some(id) = key_id {
        println!("it is sealed under master key {id}: keep that key with the backup");
    }
    Ok(())
}

async fn check(cfg: &Config) -> anyhow::Result<()> {
    let (key, source) = load_master_key(cfg, false)?;
    let store = open_existing(cfg).await?;
    let key = settle(&*store, key, &source).await?;
    let vault = Vault::new(key);
    println!("configured master key: {}", vault.key_id());
    match keycare::sealing(&*store, &vault).await? {
        Sealing::Fresh => println!("the database has sealed nothing yet"),
        Sealing::Opens => println!("the database is sealed under it"),
        Sealing::Other { key_id } => {
            bail!(
                "check FAILED: the database is sealed under another master key{}",
                key_id.map(|id| format!(" ({id})")).unwrap_or_default()
            );
        }
    }
    if let KeySource::File(path) = &source {
        let next = next_path(path);
        if next.exists() {
            println!(
                "note: {} is left from a rotation that did not commit (the database is not sealed under it); `purser admin rotate-master-key` reuses it",
                next.display()
            );
        }
    }
    let report = keycare::check(&*store, &vault).await?;
    let mut total = 0;
    for (kind, n) in &report.counts {
        let failed = report.failures.iter().filter(|f| f.kind == *kind).count();
        println!("{}: {n} checked, {failed} failed", kind.label());
        total += n;
    }
    for f in &report.failures {
        println!(
            "FAILED {} {}/{}: {}",
            f.kind.label(),
            f.account_id,
            f.id,
            f.reason
        );
    }
    if !report.failures.is_empty() {
        bail!(
            "check FAILED: {} of {total} sealed values did not pass",
            report.failures.len()
        );
    }
    println!(
        "check passed: {total} sealed values open under master key {}",
        vault.key_id()
    );
    Ok(())
}
