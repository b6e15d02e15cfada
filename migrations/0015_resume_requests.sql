-- Resumes of quarantined assets asked for by an operator (`reorg-collateral quarantine
-- resume`, #19) for the running watcher, the store's single writer, to write: it takes
-- (deletes) them at its next sync and writes each resume at the end of the first block at or
-- above `at_block` it applies (NULL: the next block). One request per asset (a new one
-- replaces it).
CREATE TABLE resume_request (
    asset        BYTEA       PRIMARY KEY CHECK (length(asset) = 20),
    at_block     BIGINT      CHECK (at_block IS NULL OR at_block >= 0),
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
