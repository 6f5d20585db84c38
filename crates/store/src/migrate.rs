//! A minimal migration runner: numbered SQL files embedded in the binary, applied in order
//! inside one transaction each, recorded in `purser_migrations`.

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "control_plane",
        sql: include_str!("../migrations/sqlite/0001_control_plane.sql"),
    },
    Migration {
        version: 2,
        name: "instruments",
        sql: include_str!("../migrations/sqlite/0002_instruments.sql"),
    },
];
