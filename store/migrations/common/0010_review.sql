-- Drafts finance reviews before they are pushed (mapping `review:`). The
-- draft's outbox item waits in state `awaiting_review` (claim takes only
-- `pending`) until it is approved (→ pending) or rejected (→ rejected).
--   state:       awaiting, held, approved, rejected
--   policy:      the mapping's policy that made it wait (`required`, `above: 1000.00`)
--   fingerprint: sha256 of the draft's inputs (mapping version, the period's
--                invoice and report rows): a rejected period is billed again
--                only once this differs
CREATE TABLE reviews (
    customer    TEXT NOT NULL,
    period      TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    target      TEXT NOT NULL,
    key         TEXT NOT NULL,
    state       TEXT NOT NULL,
    policy      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    reason      TEXT,
    decided_by  TEXT,
    decided_at  TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (customer, period)
);
CREATE INDEX reviews_state ON reviews (state);
