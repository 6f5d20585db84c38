//! Where each chain's JSON-RPC endpoint is, and how long to wait for it.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use reqwest::Url;

use crate::chain::Chain;

/// The default per-request timeout (10 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Environment variable with the per-request timeout in whole seconds (1..=300).
pub const TIMEOUT_ENV_VAR: &str = "PURSER_RPC_TIMEOUT_SECS";

const MAX_TIMEOUT_SECS: u64 = 300;

/// A bad RPC setting. Messages never repeat the offending URL (it may hold an
/// API key); they name the setting instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A URL that is not an absolute `http`/`https` URL with a host.
    #[error("the RPC URL for {chain} from {origin} is not usable: {reason}")]
    InvalidUrl {
        /// The chain the URL was given for.
        chain: Chain,
        /// Where it came from: the environment variable's name or `"configuration"`.
        origin: String,
        /// Why it was rejected (never the URL itself).
        reason: String,
    },
    /// A timeout that is not a whole number of seconds in 1..=300.
    #[error("{origin} must be a whole number of seconds between 1 and {MAX_TIMEOUT_SECS}")]
    InvalidTimeout {
        /// Where it came from (the environment variable's name).
        origin: String,
    },
    /// The HTTP client could not be built (TLS set-up failed).
    #[error("the HTTP client for chain RPCs could not be built: {0}")]
    Client(String),
}

/// Per-chain JSON-RPC URLs and the request timeout: one per [`Chain::EVERY`] (the
/// AgentCore chains and the Tempo chains of MPP `tempo`, `PURSER_RPC_TEMPO_<chain id>`).
///
/// [`RpcConfig::default`] uses each chain's [`Chain::default_rpc_url`] and
/// [`DEFAULT_TIMEOUT`]. `Debug` shows only redacted URLs.
#[derive(Clone)]
pub struct RpcConfig {
    urls: [Url; 7],
    timeout: Duration,
}

impl Default for RpcConfig {
    fn default() -> RpcConfig {
        RpcConfig {
            urls: Chain::EVERY.map(|c| {
                Url::parse(c.default_rpc_url()).expect("built-in default RPC URLs are valid")
            }),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl RpcConfig {
    /// The defaults, overridden by the environment as read through `get`
    /// (pass `&|k| std::env::var(k).ok()` for the process environment):
    /// each chain's [`Chain::rpc_env_var`] and [`TIMEOUT_ENV_VAR`]. Empty
    /// values count as unset.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<RpcConfig, ConfigError> {
        let mut config = RpcConfig::default();
        config.apply_env(get)?;
        Ok(config)
    }

    /// Overrides URLs and the timeout from the environment (see [`RpcConfig::from_env`]).
    /// Apply a configuration file's map first and the environment last to let
    /// the environment win.
    pub fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for chain in Chain::EVERY {
            let var = chain.rpc_env_var();
            if let Some(value) = get(var).filter(|v| !v.trim().is_empty()) {
                self.urls[chain.index()] = parse_url(chain, var, value.trim())?;
            }
        }
        if let Some(value) = get(TIMEOUT_ENV_VAR).filter(|v| !v.trim().is_empty()) {
            let secs = value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=MAX_TIMEOUT_SECS).contains(s))
                .ok_or_else(|| ConfigError::InvalidTimeout {
                    origin: TIMEOUT_ENV_VAR.to_string(),
                })?;
            self.timeout = Duration::from_secs(secs);
        }
        Ok(())
    }

    /// Overrides the URLs of the chains in `urls` (e.g. a configuration file's
    /// `[rpc]` table keyed by wire name). Nothing changes if any URL is invalid.
    pub fn apply_urls(&mut self, urls: &HashMap<Chain, String>) -> Result<(), ConfigError> {
        let mut next = self.urls.clone();
        for (chain, url) in urls {
            next[chain.index()] = parse_url(*chain, "configuration", url.trim())?;
        }
        self.urls = next;
        Ok(())
    }

    /// [`RpcConfig::apply_urls`], by value.
    pub fn with_urls(mut self, urls: &HashMap<Chain, String>) -> Result<RpcConfig, ConfigError> {
        self.apply_urls(urls)?;
        Ok(self)
    }

    /// Sets one chain's URL.
    pub fn set_url(&mut self, chain: Chain, url: &str) -> Result<(), ConfigError> {
        self.urls[chain.index()] = parse_url(chain, "configuration", url.trim())?;
        Ok(())
    }

    /// [`RpcConfig::set_url`], by value.
    pub fn with_url(mut self, chain: Chain, url: &str) -> Result<RpcConfig, ConfigError> {
        self.set_url(chain, url)?;
        Ok(self)
    }

    /// Sets the per-request timeout (connect, send and read the whole answer).
    /// A zero duration is raised to 1 ms.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout.max(Duration::from_millis(1));
    }

    /// [`RpcConfig::set_timeout`], by value.
    pub fn with_timeout(mut self, timeout: Duration) -> RpcConfig {
        self.set_timeout(timeout);
        self
    }

    /// The full URL configured for `chain`. It may contain an API key: do not
    /// log it; use [`RpcConfig::redacted_url`].
    pub fn url(&self, chain: Chain) -> &str {
        self.urls[chain.index()].as_str()
    }

    /// The URL for `chain` reduced to `scheme://host[:port]`, safe to show.
    pub fn redacted_url(&self, chain: Chain) -> String {
        redact(&self.urls[chain.index()])
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn parsed_url(&self, chain: Chain) -> &Url {
        &self.urls[chain.index()]
    }
}

impl fmt::Debug for RpcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for chain in Chain::EVERY {
            map.entry(&chain.as_str(), &self.redacted_url(chain));
        }
        map.entry(&"timeout", &self.timeout);
        map.finish()
    }
}

fn parse_url(chain: Chain, origin: &str, value: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidUrl {
        chain,
        origin: origin.to_string(),
        reason,
    };
    // url::ParseError's message does not repeat the input.
    let url = Url::parse(value).map_err(|e| invalid(e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid("the scheme must be http or https".to_string()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host".to_string()));
    }
    if url.fragment().is_some() {
        return Err(invalid("it must not have a #fragment".to_string()));
    }
    Ok(url)
}

/// `scheme://host[:port]` of `url`: no user info, path or query, which is where
/// RPC providers put API keys.
pub(crate) fn redact(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{}:{}", url.scheme(), host, port),
        None => format!("{}://{}", url.scheme(), host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults() {
        let c = RpcConfig::default();
        for chain in Chain::EVERY {
            assert_eq!(c.url(chain).trim_end_matches('/'), chain.default_rpc_url());
        }
        assert_eq!(c.timeout(), Duration::from_secs(10));
    }

    #[test]
    fn env_overrides_and_empty_is_unset() {
        let c = RpcConfig::from_env(&env(&[
            ("PURSER_RPC_BASE_SEPOLIA", "http://127.0.0.1:8545"),
            ("PURSER_RPC_SOLANA", ""),
            ("PURSER_RPC_TEMPO_42431", "http://127.0.0.1:9545"),
            ("PURSER_RPC_TIMEOUT_SECS", "3"),
        ]))
        .unwrap();
        assert_eq!(c.url(Chain::TempoModerato), "http://127.0.0.1:9545/");
        assert_eq!(
            c.url(Chain::Tempo).trim_end_matches('/'),
            "https://rpc.tempo.xyz"
        );
        assert_eq!(c.url(Chain::BaseSepolia), "http://127.0.0.1:8545/");
        assert_eq!(
            c.url(Chain::Solana).trim_end_matches('/'),
            Chain::Solana.default_rpc_url()
        );
        assert_eq!(c.timeout(), Duration::from_secs(3));
    }

    #[test]
    fn bad_values_are_rejected_without_echoing_them() {
        let err = RpcConfig::from_env(&env(&[("PURSER_RPC_BASE", "ftp://secret-key@host/x")]))
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("BASE") && msg.contains("PURSER_RPC_BASE"),
            "{msg}"
        );
        assert!(!msg.contains("secret-key"), "{msg}");

        let err =
            RpcConfig::from_env(&env(&[("PURSER_RPC_ETHEREUM", "not a url SECRET")])).unwrap_err();
        assert!(!err.to_string().contains("SECRET"), "{err}");

        for bad in ["0", "301", "1.5", "ten"] {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(Box::new([("PURSER_RPC_TIMEOUT_SECS", bad)]));
            assert!(matches!(
                RpcConfig::from_env(&env(pairs)),
                Err(ConfigError::InvalidTimeout { .. })
            ));
        }
    }

    #[test]
    fn file_map_then_env() {
        let mut map = HashMap::new();
        map.insert(Chain::Ethereum, "https://eth.example/v2/KEY".to_string());
        map.insert(Chain::Base, "https://base.example/".to_string());
        let mut c = RpcConfig::default().with_urls(&map).unwrap();
        c.apply_env(&env(&[("PURSER_RPC_BASE", "http://127.0.0.1:9/")]))
            .unwrap();
        assert_eq!(c.url(Chain::Ethereum), "https://eth.example/v2/KEY");
        assert_eq!(c.url(Chain::Base), "http://127.0.0.1:9/");

        map.insert(Chain::Solana, "nope".to_string());
        let before = c.url(Chain::Ethereum).to_string();
        map.insert(Chain::Ethereum, "https://other.example/".to_string());
        assert!(c.apply_urls(&map).is_err());
        assert_eq!(
            c.url(Chain::Ethereum),
            before,
            "a failed apply changes nothing"
        );
    }

    #[test]
    fn redaction_and_debug() {
        let c = RpcConfig::default()
            .with_url(
                Chain::Base,
                "https://user:pw@base-mainnet.example.com:8443/v2/SECRETKEY?apikey=SECRET2",
            )
            .unwrap()
            .with_url(Chain::Solana, "http://[::1]:8899/")
            .unwrap();
        assert_eq!(
            c.redacted_url(Chain::Base),
            "https://base-mainnet.example.com:8443"
        );
        assert_eq!(c.redacted_url(Chain::Solana), "http://[::1]:8899");
        assert_eq!(
            c.redacted_url(Chain::Ethereum),
            "https://ethereum-rpc.publicnode.com"
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("SECRET") && !dbg.contains("pw"), "{dbg}");
    }
}
