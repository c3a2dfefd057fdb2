-- Canonical ticket snapshots (the offline-format ticket object, as JSON).
CREATE TABLE tickets (
    source      TEXT NOT NULL,
    id          TEXT NOT NULL,
    customer    TEXT NOT NULL,
    snapshot    TEXT NOT NULL,
    synced_at   TEXT NOT NULL,
    PRIMARY KEY (source, id)
);

-- Where each source's sync got to.
CREATE TABLE cursors (
    source      TEXT PRIMARY KEY,
    cursor      TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Mapping versions that were in force.
CREATE TABLE mapping_versions (
    hash        TEXT PRIMARY KEY,
    first_used  TEXT NOT NULL
);

-- A closed (customer, period): the draft it produced, if the customer owed anything.
CREATE TABLE periods (
    customer    TEXT NOT NULL,
    period      TEXT NOT NULL,
    revision    BIGINT NOT NULL,
    total_net   TEXT,
    currency    TEXT,
    document    TEXT NOT NULL,
    closed_at   TEXT NOT NULL,
    PRIMARY KEY (customer, period)
);

-- Everything pushed to an external system, written before the push.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    target          TEXT NOT NULL,
    key             TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (target, key)
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
