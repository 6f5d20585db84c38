//! A minimal migration runner: numbered SQL files embedded in the binary, applied in order
//! inside one transaction each, recorded in `purser_migrations`.

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($engine:literal, $version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!(
                "../migrations/",
                $engine,
                "/000",
                $version,
                "_",
                $name,
                ".sql"
            )),
        }
    };
}

pub(crate) const SQLITE: &[Migration] = &[
    migration!("sqlite", 1, "control_plane"),
    migration!("sqlite", 2, "instruments"),
    migration!("sqlite", 3, "sessions_payments"),
    migration!("sqlite", 4, "meta"),
    migration!("sqlite", 5, "instrument_list_covering"),
    migration!("sqlite", 6, "instrument_holder"),
    migration!("sqlite", 7, "history_policies"),
];

pub(crate) const POSTGRES: &[Migration] = &[
    migration!("postgres", 1, "control_plane"),
    migration!("postgres", 2, "instruments"),
    migration!("postgres", 3, "sessions_payments"),
    migration!("postgres", 4, "meta"),
    migration!("postgres", 5, "instrument_list_covering"),
    migration!("postgres", 6, "instrument_holder"),
    migration!("postgres", 7, "history_policies"),
];
