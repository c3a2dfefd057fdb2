-- The audit trail: what happened to money-relevant state, by whom, when.
-- Append-only: rows are inserted, never updated or deleted.
--   actor:   the OS user, the review credential's name, or "daemon"
--   action:  mapping_loaded, mapping_held, mapping_applied, draft_created,
--            draft_approved, draft_held, draft_rejected, draft_pushed,
--            draft_corrected, ...
--   subject: what it is about (a mapping path, "CUSTOMER/PERIOD", a draft key)
--   detail:  JSON with the rest (hash, amounts, reason)
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
