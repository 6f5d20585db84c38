-- Payment instruments (embedded wallets). Soft-deleted rows stay for audit.
CREATE TABLE instruments (
    account_id      TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    manager_id      TEXT    NOT NULL,
    connector_id    TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    network         TEXT    NOT NULL,
    wallet_address  TEXT    NOT NULL,
    linked_masked   TEXT    NOT NULL,
    linked_sealed   BLOB    NOT NULL,
    sealed_key      BLOB    NOT NULL,
    status          TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
);
-- Keyset pages of one owner's live instruments, with and without the connector filter.
CREATE INDEX instruments_owner ON instruments (account_id, manager_id, user_id, id)
    WHERE status <> 'DELETED';
CREATE INDEX instruments_owner_connector ON instruments (account_id, manager_id, user_id, connector_id, id)
    WHERE status <> 'DELETED';
