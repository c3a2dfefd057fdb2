-- How complete each source is: the instant up to which every change it
-- holds is known stored (its watermark), set only by a fully successful
-- pass; and how its last pass ended. A period closes for a customer only
-- when every source feeding the customer is complete past the period's end.
CREATE TABLE source_health (
    source           TEXT PRIMARY KEY,
    complete_through TEXT,
    last_success_at  TEXT,
    last_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    failing_since    TEXT,
    tickets_synced   BIGINT NOT NULL DEFAULT 0
);

-- A customer's period that was due to close but waits for its sources.
CREATE TABLE held_periods (
    customer   TEXT NOT NULL,
    period     TEXT NOT NULL,
    sources    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    held_since TEXT NOT NULL,
    checked_at TEXT NOT NULL,
    PRIMARY KEY (customer, period)
);
