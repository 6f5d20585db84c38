-- PostgreSQL flavour of migrations/sqlite/0001_control_plane.sql.
-- Control plane: credential providers, payment managers, payment connectors, and the
-- clientToken records of idempotent operations. Times are milliseconds since the epoch.
CREATE TABLE idempotency (
    account_id  TEXT COLLATE "C"    NOT NULL,
    operation   TEXT COLLATE "C"    NOT NULL,
    token       TEXT COLLATE "C"    NOT NULL,
    fingerprint BYTEA    NOT NULL,
    resource_id TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, operation, token)
);

CREATE TABLE credential_providers (
    account_id       TEXT COLLATE "C"    NOT NULL,
    name             TEXT COLLATE "C"    NOT NULL,
    vendor           TEXT    NOT NULL,
    key_id           TEXT    NOT NULL,
    authorization_id TEXT,
    secret_fields    TEXT    NOT NULL,
    sealed_secrets   BYTEA    NOT NULL,
    tags             TEXT    NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);

CREATE TABLE managers (
    account_id               TEXT COLLATE "C"    NOT NULL,
    id                       TEXT COLLATE "C"    NOT NULL,
    name                     TEXT COLLATE "C"    NOT NULL,
    description              TEXT,
    authorizer_type          TEXT    NOT NULL,
    authorizer_discovery_url TEXT,
    authorizer_encoded       TEXT,
    role_arn                 TEXT    NOT NULL,
    kms_key_arn              TEXT,
    tags                     TEXT    NOT NULL,
    status                   TEXT    NOT NULL,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    transition_at            BIGINT,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, name)
);
CREATE INDEX managers_transition ON managers (transition_at) WHERE transition_at IS NOT NULL;

CREATE TABLE connectors (
    account_id          TEXT COLLATE "C"    NOT NULL,
    manager_id          TEXT COLLATE "C"    NOT NULL,
    id                  TEXT COLLATE "C"    NOT NULL,
    name                TEXT COLLATE "C"    NOT NULL,
    description         TEXT,
    connector_type      TEXT    NOT NULL,
    provision_mode      TEXT,
    credential_vendor   TEXT,
    credential_arn      TEXT,
    credential_provider TEXT,
    status              TEXT    NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    transition_at       BIGINT,
    credentials_updated_at BIGINT,
    PRIMARY KEY (account_id, manager_id, id),
    UNIQUE (account_id, manager_id, name)
);
CREATE INDEX connectors_transition ON connectors (transition_at) WHERE transition_at IS NOT NULL;
CREATE INDEX connectors_provider ON connectors (account_id, credential_provider);
