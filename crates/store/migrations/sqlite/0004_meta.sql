-- Facts about the deployment itself, e.g. a value sealed under the master key at first
-- start, so that a node started with another master key refuses to serve.
CREATE TABLE purser_meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
);
