//! Errors of reading balances from a chain.

use std::fmt;
use std::time::Duration;

use crate::chain::Chain;

/// What went wrong talking to a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainErrorKind {
    /// The owner is not an address of the chain's family. No request was sent.
    InvalidOwner {
        /// The rejected owner (at most 100 characters of it).
        owner: String,
    },
    /// No complete answer arrived within the configured timeout.
    Timeout {
        /// The timeout that expired.
        after: Duration,
    },
    /// Nothing listens at the endpoint (TCP connection refused).
    ConnectionRefused,
    /// Any other failure to reach the endpoint or to exchange HTTP with it
    /// (DNS, TLS, reset connection, ...).
    Unreachable {
        /// The transport's reason, without the URL.
        detail: String,
    },
    /// The endpoint answered with an HTTP status other than 200.
    HttpStatus {
        /// The status code (429 means the provider is rate limiting).
        status: u16,
    },
    /// The endpoint answered with a JSON-RPC error object.
    JsonRpc {
        /// The JSON-RPC error code.
        code: i64,
        /// The error message (at most 300 characters, control characters replaced).
        message: String,
    },
    /// The answer was not the JSON-RPC result the request asks for.
    Malformed {
        /// What was wrong with it.
        detail: String,
    },
}

/// An error of [`crate::BalanceReader`]. It names the chain and the endpoint
/// (reduced to `scheme://host[:port]`, so an API key in the URL never shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError {
    chain: Chain,
    endpoint: Option<String>,
    kind: ChainErrorKind,
}

impl ChainError {
    pub(crate) fn new(chain: Chain, endpoint: Option<String>, kind: ChainErrorKind) -> ChainError {
        ChainError {
            chain,
            endpoint,
            kind,
        }
    }

    /// The chain that was asked.
    pub fn chain(&self) -> Chain {
        self.chain
    }

    /// The redacted endpoint (`scheme://host[:port]`); `None` when no request
    /// was sent ([`ChainErrorKind::InvalidOwner`]).
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// What went wrong.
    pub fn kind(&self) -> &ChainErrorKind {
        &self.kind
    }

    /// Whether the caller's input was at fault (an invalid owner) rather than
    /// the chain or its RPC endpoint.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self.kind, ChainErrorKind::InvalidOwner { .. })
    }

    /// A one-line description naming the chain and the redacted endpoint, e.g.
    /// `BASE_SEPOLIA RPC at http://127.0.0.1:8545 did not answer within 10s`.
    pub fn message(&self) -> String {
        let chain = self.chain.as_str();
        let rpc = match &self.endpoint {
            Some(e) => format!("{chain} RPC at {e}"),
            None => format!("{chain} RPC"),
        };
        match &self.kind {
            ChainErrorKind::InvalidOwner { owner } => {
                let expected = match self.chain.family() {
                    crate::Family::Ethereum => "a 0x-prefixed 20-byte hex address",
                    crate::Family::Solana => "a base58-encoded 32-byte public key",
                };
                format!("{chain} owner address {owner:?} is not {expected}")
            }
            ChainErrorKind::Timeout { after } => {
                format!("{rpc} did not answer within {}", format_duration(*after))
            }
            ChainErrorKind::ConnectionRefused => format!("{rpc} refused the connection"),
            ChainErrorKind::Unreachable { detail } => {
                format!("{rpc} could not be reached: {detail}")
            }
            ChainErrorKind::HttpStatus { status } => {
                let reason = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                format!("{rpc} answered with HTTP status {status}{reason}")
            }
            ChainErrorKind::JsonRpc { code, message } => {
                format!("{rpc} answered with JSON-RPC error {code}: {message}")
            }
            ChainErrorKind::Malformed { detail } => {
                format!("{rpc} answered with a malformed result: {detail}")
            }
        }
    }
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ChainError {}

/// `10s`, `1.5s` or `250ms`.
fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        let fraction = format!("{:03}", ms % 1000);
        format!("{}.{}s", ms / 1000, fraction.trim_end_matches('0'))
    } else {
        format!("{ms}ms")
    }
}

/// Truncates untrusted text for an error message and replaces control characters.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn clipping() {
        assert_eq!(clip("a\nb", 10), "a b");
        assert_eq!(clip("abcdef", 3), "abc…");
    }
}
