-- PostgreSQL flavour of migrations/sqlite/0004_meta.sql.
-- Facts about the deployment itself, e.g. a value sealed under the master key at first
-- start, so that a node started with another master key refuses to serve.
CREATE TABLE purser_meta (
    key   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);
