-- The SLA tick's index (issue 19): per ticket, when its clocks next need a
-- look, so a tick reads only tickets that changed or whose next deadline
-- fell due instead of every stored ticket.
--   next_due: '' = changed since the last look (sorts before every instant,
--             so it is due at once); an instant (RFC 3339, UTC, micros) =
--             the first moment an evaluation may differ; NULL = nothing
--             will change until the ticket does.
--   stamp:    bumped at every change of the ticket; a tick writes its
--             result only if the stamp it read is still there, so a change
--             made during the tick is never lost.
CREATE TABLE sla_due (
    source   TEXT NOT NULL,
    id       TEXT NOT NULL,
    next_due TEXT,
    stamp    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (source, id)
);
CREATE INDEX sla_due_next ON sla_due (next_due);
INSERT INTO sla_due (source, id, next_due, stamp) SELECT source, id, '', 1 FROM tickets;

-- What the instants in sla_due were computed with (the mapping's hash and
-- the settings the notes depend on): another basis looks at every ticket.
CREATE TABLE sla_basis (
    id    INTEGER PRIMARY KEY,
    basis TEXT NOT NULL
);

-- A statement or a report reads one customer's tickets, not every ticket.
CREATE INDEX tickets_customer ON tickets (customer);
