-- PostgreSQL flavour of migrations/sqlite/0002_instruments.sql.
-- Payment instruments (embedded wallets). Soft-deleted rows stay for audit.
CREATE TABLE instruments (
    account_id      TEXT COLLATE "C"    NOT NULL,
    id              TEXT COLLATE "C"    NOT NULL,
    manager_id      TEXT COLLATE "C"    NOT NULL,
    connector_id    TEXT COLLATE "C"    NOT NULL,
    user_id         TEXT COLLATE "C"    NOT NULL,
    network         TEXT    NOT NULL,
    wallet_address  TEXT    NOT NULL,
    linked_masked   TEXT    NOT NULL,
    linked_sealed   BYTEA    NOT NULL,
    sealed_key      BYTEA    NOT NULL,
    status          TEXT    NOT NULL,
    version         BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
-- Keyset pages of one owner's live instruments, with and without the connector filter.
CREATE INDEX instruments_owner ON instruments (account_id, manager_id, user_id, id)
    WHERE status <> 'DELETED';
CREATE INDEX instruments_owner_connector ON instruments (account_id, manager_id, user_id, connector_id, id)
    WHERE status <> 'DELETED';
