//! Storage implementations of [`purser_core::store::Store`].
//!
//! * [`sqlite::SqliteStore`]: the embedded default (a file in the data directory, WAL,
//!   `synchronous=FULL`).
//!
//! Architecture invariant: all SQL of the project lives in this crate. Schema changes are
//! numbered migrations under `migrations/<engine>/`, applied at start by [`migrate`].

mod codec;
mod migrate;
pub mod sqlite;

pub use sqlite::SqliteStore;
