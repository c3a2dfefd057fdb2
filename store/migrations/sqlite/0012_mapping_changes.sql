-- Mapping changes: a valid edit of the mapping files that would move money
-- in a closed period is held here (not applied) until someone accepts it;
-- every mapping that came into force is kept here too, with its files, so
-- that a restarted daemon compares the next edit with what was in force.
--   status:  held (waiting), accepted (to apply at the next reload check),
--            applied (came into force), superseded (a newer edit replaced it
--            while held)
--   files:   JSON array of [file name, content] of the mapping files
--   summary: JSON: the what-if diff's totals and changed lines per customer
--            and period (what the review page shows)
CREATE TABLE mapping_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    path        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    status      TEXT NOT NULL,
    files       TEXT NOT NULL,
    summary     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    decided_at  TEXT,
    decided_by  TEXT
);
CREATE INDEX mapping_changes_status ON mapping_changes (status, id);
CREATE INDEX mapping_changes_hash ON mapping_changes (hash, id);
