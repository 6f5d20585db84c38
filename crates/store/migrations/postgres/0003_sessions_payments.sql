-- PostgreSQL flavour of migrations/sqlite/0003_sessions_payments.sql.
-- Payment sessions (hard-deleted) and the payment ledger (never deleted: the audit trail).
-- Money: micro-dollars (= atomic USDC units) as integers.
CREATE TABLE sessions (
    account_id     TEXT COLLATE "C"    NOT NULL,
    id             TEXT COLLATE "C"    NOT NULL,
    manager_id     TEXT COLLATE "C"    NOT NULL,
    user_id        TEXT COLLATE "C"    NOT NULL,
    expiry_minutes INTEGER NOT NULL,
    expires_at     BIGINT NOT NULL,
    cap            BIGINT,
    spent          BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (account_id, id),
    CHECK (cap IS NULL OR spent <= cap),
    CHECK (spent >= 0)
);
CREATE INDEX sessions_owner ON sessions (account_id, manager_id, user_id, id);

CREATE TABLE payments (
    account_id    TEXT COLLATE "C"    NOT NULL,
    id            TEXT COLLATE "C"    NOT NULL,
    session_id    TEXT COLLATE "C"    NOT NULL,
    instrument_id TEXT    NOT NULL,
    manager_id    TEXT COLLATE "C"    NOT NULL,
    user_id       TEXT COLLATE "C"    NOT NULL,
    client_token  TEXT COLLATE "C",
    fingerprint   BYTEA,
    payment_type  TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    scheme        TEXT    NOT NULL,
    network       TEXT    NOT NULL,
    payer         TEXT    NOT NULL,
    payee         TEXT    NOT NULL,
    asset         TEXT    NOT NULL,
    amount        TEXT    NOT NULL,
    debited       BIGINT NOT NULL,
    output        TEXT    NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX payments_token ON payments (account_id, client_token) WHERE client_token IS NOT NULL;
CREATE INDEX payments_session ON payments (account_id, session_id, created_at);
