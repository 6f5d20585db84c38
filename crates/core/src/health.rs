//! Readiness: does the database answer, and does each configured chain RPC? Every check
//! runs at once, each under its own timeout, outside any database transaction.
use std::time::{Duration, Instant};

use purser_chain::{Chain, ChainErrorKind};

use crate::instruments::DataPlane;

/// One dependency's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// None when it answered; else a short reason that names no endpoint.
    pub error: Option<&'static str>,
    pub millis: u64,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// The database and every chain whose RPC URL was configured (chains left at their
/// public default endpoint are not probed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub database: Check,
    pub chains: Vec<(Chain, Check)>,
}

impl Readiness {
    pub fn ok(&self) -> bool {
        self.database.ok() && self.chains.iter().all(|(_, c)| c.ok())
    }
}

async fn timed<F>(timeout: Duration, f: F) -> Check
where
    F: std::future::Future<Output = Result<(), &'static str>>,
{
    let started = Instant::now();
    let error = match tokio::time::timeout(timeout, f).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some("timeout"),
    };
    Check {
        error,
        millis: started.elapsed().as_millis() as u64,
    }
}

fn chain_reason(kind: &ChainErrorKind) -> &'static str {
    match kind {
        ChainErrorKind::Timeout { .. } => "timeout",
        ChainErrorKind::ConnectionRefused => "connection refused",
        ChainErrorKind::Unreachable { .. } => "unreachable",
        ChainErrorKind::HttpStatus { .. } => "HTTP error",
        ChainErrorKind::JsonRpc { .. } => "JSON-RPC error",
        _ => "malformed answer",
    }
}

impl DataPlane {
    /// Probe the database (a trivial query) and each configured chain (EVM:
    /// `eth_chainId` must match; Solana: `getLatestBlockhash`), concurrently.
    pub async fn readiness(&self, timeout: Duration) -> Readiness {
        let database = timed(timeout, async {
            self.store().ping().await.map_err(|_| "database error")
        });
        let chains = self.chains().config().configured_chains();
        let probes = chains.iter().map(|c| {
            timed(timeout, async move {
                self.chains()
                    .probe(*c)
                    .await
                    .map_err(|e| chain_reason(e.kind()))
            })
        });
        let (database, checks) = tokio::join!(database, futures_util::future::join_all(probes));
        Readiness {
            database,
            chains: chains.into_iter().zip(checks).collect(),
        }
    }
}

impl DataPlane {
    /// The database pool now (for metrics).
    pub fn pool_stats(&self) -> crate::store::PoolStats {
        self.store().pool_stats()
    }
}
