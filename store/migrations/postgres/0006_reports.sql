-- The work report of each closed period, rendered at the close beside the
-- draft: the HTML page, and its PDF when a Chromium was configured.
CREATE TABLE reports (
    customer   TEXT NOT NULL,
    period     TEXT NOT NULL,
    revision   BIGINT NOT NULL,
    language   TEXT NOT NULL,
    html       TEXT NOT NULL,
    pdf        BYTEA,
    created_at TEXT NOT NULL,
    PRIMARY KEY (customer, period, revision)
);
