-- PostgreSQL flavour of migrations/sqlite/0007_history_policies.sql.
-- Payment history and audit, refusals, spending policies (issue 14).
--
-- payments: who asked (the agent name header, observability only) and what the payment is
-- worth in micro-USD whatever its session (`debited` is 0 for an uncapped session). Rows
-- written before this migration count their `debited` (0 when their session had no cap).
ALTER TABLE payments ADD COLUMN agent_name TEXT;
ALTER TABLE payments ADD COLUMN usd_value BIGINT NOT NULL DEFAULT 0;
-- The payee as the history's filter and the policies compare it: EVM addresses (0x + 40
-- hex digits) lower-case, anything else as sent.
ALTER TABLE payments ADD COLUMN payee_match TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE payments SET usd_value = debited,
    payee_match = CASE WHEN length(payee) = 42 AND substr(payee, 1, 2) IN ('0x', '0X') THEN lower(payee) ELSE payee END;
-- The history is read newest first, by keyset (created_at, id), under one filter: these
-- keep a page one index range whatever the table's size. payments_user_time also holds
-- usd_value: a user's rolling spend (spending policies) is an index-only range sum.
CREATE INDEX payments_time ON payments (account_id, created_at, id);
CREATE INDEX payments_manager_time ON payments (account_id, manager_id, created_at, id);
CREATE INDEX payments_user_time ON payments (account_id, manager_id, user_id, created_at, id, usd_value);
CREATE INDEX payments_payee_time ON payments (account_id, payee_match, created_at, id);

-- Payments Purser refused that an operator cares about (session budget, session expired,
-- spending policy). Never a secret or a linked-account detail: ids, amounts, the message
-- the client got.
CREATE TABLE refusals (
    account_id    TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    manager_id    TEXT COLLATE "C" NOT NULL,
    user_id       TEXT COLLATE "C" NOT NULL,
    agent_name    TEXT,
    session_id    TEXT COLLATE "C" NOT NULL,
    instrument_id TEXT COLLATE "C" NOT NULL,
    reason        TEXT    NOT NULL,
    policy        TEXT,
    payment_type  TEXT    NOT NULL,
    scheme        TEXT    NOT NULL,
    network       TEXT    NOT NULL,
    payee         TEXT COLLATE "C"    NOT NULL,
    amount        TEXT    NOT NULL,
    usd_value     BIGINT NOT NULL,
    message       TEXT    NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX refusals_time ON refusals (account_id, created_at, id);
CREATE INDEX refusals_manager_time ON refusals (account_id, manager_id, created_at, id);
CREATE INDEX refusals_user_time ON refusals (account_id, manager_id, user_id, created_at, id);

-- Spending policies: one per manager (user_id = '') and optionally one per (manager,
-- user); a user's members override the manager's. Amounts in micro-USD; payee lists as
-- JSON arrays of strings; NULL = not set.
CREATE TABLE spending_policies (
    account_id      TEXT COLLATE "C" NOT NULL,
    manager_id      TEXT COLLATE "C" NOT NULL,
    user_id         TEXT COLLATE "C" NOT NULL,
    daily_cap       BIGINT,
    monthly_cap     BIGINT,
    max_per_payment BIGINT,
    payee_allow     TEXT,
    payee_deny      TEXT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, manager_id, user_id)
);

-- One row per (manager, user) whose rolling caps were checked: the ledger's transaction
-- upserts it before summing the user's spend, so on PostgreSQL two nodes checking the
-- same user take turns (a row lock held to the commit). SQLite's one writer already
-- serializes; the same statement runs there.
CREATE TABLE spending_locks (
    account_id TEXT COLLATE "C" NOT NULL,
    manager_id TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    checked_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, manager_id, user_id)
);
