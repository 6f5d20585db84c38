//! The one place that touches key material.
//!
//! * [`Secret`]: a string secret (vendor API secrets, wallet keys in encoded form) with a
//!   masked `Debug`, zeroized on drop.
//! * [`MasterKey`]: the 32-byte root key, from `PURSER_MASTER_KEY` (base64) or generated into
//!   the data directory with mode 0600.
//! * [`Vault`]: envelope encryption. Every sealed value gets a fresh 256-bit data key; the
//!   value is encrypted with AES-256-GCM under the data key and the data key is encrypted
//!   under the master key, both bound to caller-supplied associated data (the identity of
//!   the record that owns the value), so a ciphertext copied onto another record does not
//!   open.
//! * [`vendor`]: short-lived vendor credentials minted from a credential provider's
//!   secrets (Coinbase CDP JWTs, Privy basic auth and authorization signatures).

mod keys;
mod secret;
mod vault;
pub mod vendor;

pub use keys::{KeyKind, NewWallet, eip55, evm_address};
pub use secret::Secret;
pub use vault::{MasterKey, Vault, VaultError, write_private};
