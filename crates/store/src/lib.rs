//! Storage implementations of [`purser_core::store::Store`].
//!
//! * [`sqlite::SqliteStore`]: the embedded default (a file in the data directory, WAL,
//!   `synchronous=FULL`).
//! * [`postgres::PgStore`]: PostgreSQL, for several nodes sharing one database.
//!
//! Both are instantiated from the same SQL (`sql.rs`).
//!
//! Architecture invariant: all SQL of the project lives in this crate. Schema changes are
//! numbered migrations under `migrations/<engine>/`, applied at start by [`migrate`].

mod codec;
mod migrate;
pub mod postgres;
mod rows;
mod sql;
pub mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;
