//! A fresh PostgreSQL database per test, dropped afterwards.
#![allow(dead_code)]

use sqlx::Connection;

pub struct FreshPgDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

pub fn admin_url() -> String {
    std::env::var("PURSER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

impl FreshPgDatabase {
    /// None (after saying so) when no PostgreSQL answers and `CI` is unset; panics in CI.
    pub async fn create() -> Option<FreshPgDatabase> {
        let admin_url = admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => {
                if std::env::var_os("CI").is_some() {
                    panic!("no PostgreSQL reachable at {admin_url} (needed in CI): {e}");
                }
                eprintln!("SKIPPED: no PostgreSQL reachable at {admin_url}: {e}");
                return None;
            }
        };
        let name = format!("purser_test_{}", rand_suffix());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        Some(FreshPgDatabase {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", std::process::id(), nanos)
}

impl Drop for FreshPgDatabase {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime we may block: use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join();
    }
}
