-- The newest refresh token of each target whose system rotates them
-- (QuickBooks): every refresh returns a new one, stored before use.
CREATE TABLE oauth_tokens (
    target        TEXT PRIMARY KEY,
    refresh_token TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
