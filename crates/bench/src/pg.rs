//! PostgreSQL administration for a run: through the admin URL given with
//! `--database-url`, create fresh databases `purser_bench_<pid>_<n>` and drop them at the
//! end (also when the run fails; best effort).
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};

pub struct Admin {
    url: String,
    opts: PgConnectOptions,
    next: AtomicUsize,
    /// Databases created and not dropped yet.
    live: Mutex<Vec<String>>,
}

/// A fresh database of this run.
pub struct Database {
    pub name: String,
    /// The URL the nodes (and the bench) connect with.
    pub url: String,
}

/// Facts about the server, for the report.
pub struct Settings {
    pub version: String,
    /// `name=value` of the settings that decide commit cost and capacity.
    pub settings: Vec<String>,
    pub max_connections: Option<u32>,
}

/// `url` with its database (path) replaced by `db`, query string kept.
fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = base
        .find("://")
        .map(|i| i + 3)
        .context("the database URL has no scheme")?;
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{db}", &base[..path]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

impl Admin {
    /// Check the URL (PostgreSQL, loopback or a local socket only) and connect once.
    pub async fn connect(url: &str) -> anyhow::Result<Admin> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            bail!("--database-url must be a postgres://USER@HOST:PORT/DB URL");
        }
        let opts = PgConnectOptions::from_str(url).context("parsing --database-url")?;
        let host = opts.get_host();
        let local = host.starts_with('/')
            || host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !local {
            bail!("--database-url host {host:?} is not loopback: the bench runs on 127.0.0.1 only");
        }
        let admin = Admin {
            url: url.to_string(),
            opts,
            next: AtomicUsize::new(0),
            live: Mutex::new(Vec::new()),
        };
        admin
            .conn()
            .await
            .context("connecting to PostgreSQL with --database-url")?
            .close()
            .await?;
        Ok(admin)
    }

    async fn conn(&self) -> anyhow::Result<PgConnection> {
        Ok(self.opts.connect().await?)
    }

    pub async fn settings(&self) -> anyhow::Result<Settings> {
        let mut c = self.conn().await?;
        let version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut c)
            .await?;
        let rows = sqlx::query(
            "SELECT name, setting, unit FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'shared_buffers', 'max_connections', 'commit_delay') ORDER BY name",
        )
        .fetch_all(&mut c)
        .await?;
        let mut settings = Vec::new();
        let mut max_connections = None;
        for r in rows {
            let name: String = r.try_get("name")?;
            let value: String = r.try_get("setting")?;
            let unit: Option<String> = r.try_get("unit")?;
            if name == "max_connections" {
                max_connections = value.parse().ok();
            }
            settings.push(format!("{name}={value}{}", unit.unwrap_or_default()));
        }
        c.close().await?;
        Ok(Settings {
            version,
            settings,
            max_connections,
        })
    }

    /// Create a fresh, empty database (remembered, to be dropped by [`Admin::drop_all`]).
    pub async fn create(&self) -> anyhow::Result<Database> {
        let name = format!(
            "purser_bench_{}_{}",
            std::process::id(),
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let mut c = self.conn().await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut c)
        .await?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut c)
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        c.close().await?;
        if let Ok(mut live) = self.live.lock() {
            live.push(name.clone());
        }
        Ok(Database {
            url: with_database(&self.url, &name)?,
            name,
        })
    }

    /// Drop one database of this run (its connections are closed by force).
    pub async fn drop_db(&self, name: &str) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut c)
        .await
        .with_context(|| format!("DROP DATABASE {name}"))?;
        c.close().await?;
        if let Ok(mut live) = self.live.lock() {
            live.retain(|n| n != name);
        }
        Ok(())
    }

    /// Drop every database this run created and has not dropped yet; errors are printed.
    pub async fn drop_all(&self) {
        let names = self.live.lock().map(|l| l.clone()).unwrap_or_default();
        for name in names {
            match self.drop_db(&name).await {
                Ok(()) => eprintln!("dropped database {name}"),
                Err(e) => eprintln!("could not drop database {name}: {e:#}"),
            }
        }
    }
}
