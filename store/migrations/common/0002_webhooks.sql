-- Signed webhook deliveries seen inside the replay window: a second request
-- with the same signature is a replay and is refused.
CREATE TABLE webhook_deliveries (
    source      TEXT NOT NULL,
    signature   TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (source, signature)
);
