-- State of the zero-downtime migration toolkit (`src/migration`): one backfill at a time.
-- The backfill owns every history row at or below `high_water`; the live watcher owns the
-- blocks above it (see the README's migration runbook).
CREATE TABLE migration_state (
    id           BOOLEAN  PRIMARY KEY DEFAULT TRUE CHECK (id),
    source       TEXT     NOT NULL,            -- the history folded, as described by the toolkit
    high_water   BIGINT   NOT NULL,            -- the backfill owns history rows at or below it
    cursor_block BIGINT   NOT NULL,            -- history folded into migration_backfill up to here
    rows_total   BIGINT   NOT NULL,            -- history rows at or below high_water, counted at start
    rows_folded  BIGINT   NOT NULL DEFAULT 0,
    merge_user   BYTEA,                        -- keyset cursor of the merge into user_current_balances
    merge_asset  BYTEA,
    keys_merged  BIGINT   NOT NULL DEFAULT 0,
    phase        SMALLINT NOT NULL DEFAULT 0,  -- 0 folding, 1 merging, 2 done
    read_path    SMALLINT NOT NULL DEFAULT 0,  -- 0 the log query (legacy), 1 user_current_balances
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ
);

-- The backfill's running fold of the history, per (user, asset). Unbounded NUMERIC: a chunk's
-- net change may be negative; the merge refuses any final value outside 0..2^256.
CREATE TABLE migration_backfill (
    user_address BYTEA   NOT NULL,
    asset        BYTEA   NOT NULL,
    balance      NUMERIC NOT NULL,
    reset        BOOLEAN NOT NULL DEFAULT FALSE,  -- scratch: this chunk set the balance absolutely
    PRIMARY KEY (user_address, asset)
);
