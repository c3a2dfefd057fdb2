-- The OAuth grant of each target, from `contract-bridge connect` or from a
-- refresh token in the configuration: the newest refresh token sealed with
-- the store key (XChaCha20-Poly1305, bound to the target's name; never
-- plaintext), what the newest access token grants and until when, the
-- organisation / realm / site chosen, and why the grant stopped working.
-- Supersedes oauth_tokens (0004), whose plaintext rows are read once and
-- removed when the sealed token is first saved.
CREATE TABLE oauth_grants (
    target            TEXT PRIMARY KEY,
    refresh_sealed    TEXT NOT NULL,
    access_expires_at TEXT,
    scopes            TEXT,
    tenant_id         TEXT,
    tenant_name       TEXT,
    connected_at      TEXT,
    revoked           TEXT,
    -- PostgreSQL: the instance refreshing the token now, until when (a
    -- lease, so no connection is held across the token request; a dead
    -- holder's lease runs out).
    lease_owner       TEXT,
    lease_until       TEXT,
    updated_at        TEXT NOT NULL
);
