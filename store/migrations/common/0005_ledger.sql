-- What became of each pushed draft in its accounting system, as last seen
-- (draft, submitted, approved, paid, voided, deleted), and when we asked.
ALTER TABLE outbox ADD COLUMN remote_status TEXT;
ALTER TABLE outbox ADD COLUMN status_checked_at TEXT;

-- Every status a pushed draft was seen in, once each, with when.
CREATE TABLE remote_status_changes (
    target      TEXT NOT NULL,
    key         TEXT NOT NULL,
    status      TEXT NOT NULL,
    seen_at     TEXT NOT NULL,
    PRIMARY KEY (target, key, status)
);

-- Punch cards and hour banks sold as invoice lines in an accounting
-- system: one row per card or bank, keyed on where it was sold (a line of
-- quantity 2 sells two, `unit` 1 and 2), so a sale seen again adds nothing.
CREATE TABLE prepaid_sales (
    target      TEXT NOT NULL,
    invoice     TEXT NOT NULL,
    line        TEXT NOT NULL,
    unit        INTEGER NOT NULL,
    customer    TEXT NOT NULL,
    item        TEXT NOT NULL,
    -- `card` (size in punches) or `bank` (size in minutes)
    kind        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    bought      TEXT NOT NULL,
    price       TEXT NOT NULL,
    currency    TEXT,
    discount    TEXT,
    valid_until TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (target, invoice, line, unit)
);
