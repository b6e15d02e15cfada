-- History for collateral at a past block (design §10): prices by block, and the balances
-- a migration backfill wrote at its high-water mark. The log index these reads need,
-- balance_updates_user (user_address, asset, block_number), costs ingest, so it is not
-- created here: PostgresStore::create_history_indexes builds it CONCURRENTLY.

-- Every accepted price, by carrying block; its status is the block's (joined from
-- blocks, like the log). A block that comes back keeps its rows (same hash).
CREATE TABLE price_log (
    block_hash   BYTEA         NOT NULL,
    block_number BIGINT        NOT NULL,
    asset        BYTEA         NOT NULL,
    answer       NUMERIC(78,0) NOT NULL,
    decimals     SMALLINT      NOT NULL,
    round_id     NUMERIC(78,0) NOT NULL,
    updated_at   BIGINT        NOT NULL,
    PRIMARY KEY (block_hash, asset)
);
CREATE INDEX price_log_asset ON price_log (asset, block_number);

-- A store upgraded with finalized blocks knows prices by block only from its finalized
-- height on: the confirmed row and the pending rows are seeded here; older heights are
-- refused (NULL: the history is complete).
CREATE TABLE history_start (
    id          BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    prices_from BIGINT
);
INSERT INTO history_start (prices_from)
SELECT (SELECT b.number FROM checkpoint c JOIN blocks b ON b.hash = c.finalized_hash);

INSERT INTO price_log (block_hash, block_number, asset, answer, decimals, round_id, updated_at)
SELECT b.hash, p.block_number, p.asset, p.answer, p.decimals, p.round_id, p.updated_at
FROM oracle_prices p
JOIN blocks b ON b.number = p.block_number
             AND ((p.block_status = 1 AND b.status = 1) OR (p.block_status = 0 AND b.status = 0))
ON CONFLICT DO NOTHING;

-- The balances a finished migration backfill merged at its high-water mark (the fold of
-- the legacy history at or below it): the base a past block above the high-water is
-- folded from. Blocks below the high-water are not in the log and are refused.
CREATE TABLE history_base (
    user_address BYTEA         NOT NULL,
    asset        BYTEA         NOT NULL,
    balance      NUMERIC(78,0) NOT NULL,
    PRIMARY KEY (user_address, asset)
);
