-- What the target calls a pushed item (an accounting system's invoice id),
-- and any difference it showed from ours (a total rounded another way).
ALTER TABLE outbox ADD COLUMN remote_id TEXT;
ALTER TABLE outbox ADD COLUMN remote_note TEXT;
