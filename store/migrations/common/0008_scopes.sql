-- The OAuth scopes each target's newest token grants, as its token answer
-- said (Xero's `scope`): `status` shows them beside those asked for.
CREATE TABLE granted_scopes (
    target     TEXT PRIMARY KEY,
    scopes     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
