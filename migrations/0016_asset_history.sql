-- History of the asset state besides prices, for collateral at a past block (issue #19
-- item 5): vault rates, rebases and quarantines by block. `rates`, `indexes` and
-- `asset_state` keep one confirmed row per asset (the latest); these logs keep every
-- block's rows, keyed by block hash, their status the block's (joined from blocks, like
-- price_log). Written in the changeset's transaction; a block that comes back keeps its
-- rows (same hash).

-- Every accepted vault rate, by carrying block.
CREATE TABLE rate_log (
    block_hash   BYTEA         NOT NULL,
    block_number BIGINT        NOT NULL,
    asset        BYTEA         NOT NULL CHECK (length(asset) = 20),
    rate         NUMERIC(78,0) NOT NULL CHECK (rate > 0),
    PRIMARY KEY (block_hash, asset)
);
CREATE INDEX rate_log_asset ON rate_log (asset, block_number);

-- Every rebase the engine applied, at its log: the index in force at a log row is the
-- latest rebase before it (by block, log index, event part), so a rebasing asset's rows
-- (token amounts) fold to shares (amount × den ÷ num, floored) as the engine folded them.
CREATE TABLE rebase_log (
    block_hash   BYTEA         NOT NULL,
    block_number BIGINT        NOT NULL,
    log_index    BIGINT        NOT NULL,
    part         SMALLINT      NOT NULL,
    asset        BYTEA         NOT NULL CHECK (length(asset) = 20),
    num          NUMERIC(78,0) NOT NULL CHECK (num > 0),
    den          NUMERIC(78,0) NOT NULL CHECK (den > 0),
    PRIMARY KEY (block_hash, log_index, part, asset)
);
CREATE INDEX rebase_log_asset ON rebase_log (asset, block_number, log_index, part);

-- Every asset state change (quarantine, resume), by block; columns as in asset_state.
CREATE TABLE asset_state_log (
    block_hash   BYTEA         NOT NULL,
    block_number BIGINT        NOT NULL,
    asset        BYTEA         NOT NULL CHECK (length(asset) = 20),
    state        SMALLINT      NOT NULL CHECK (state IN (0, 1)),
    since_number BIGINT,
    since_hash   BYTEA,
    tx_hash      BYTEA,
    log_index    BIGINT,
    reason       SMALLINT,
    user_address BYTEA,
    balance      NUMERIC(78,0),
    amount       NUMERIC(78,0),
    detail       TEXT,
    PRIMARY KEY (block_hash, asset)
);
CREATE INDEX asset_state_log_asset ON asset_state_log (asset, block_number);

-- A store upgraded with finalized blocks and rates or quarantines knows them by block
-- only from its finalized height on (NULL: the history is complete); its current rows are
-- seeded below. Rebasing assets indexed before the upgrade have no rebase positions:
-- they are listed in history_unindexed and refused at every block.
ALTER TABLE history_start ADD COLUMN state_from BIGINT;
UPDATE history_start SET state_from = (SELECT b.number FROM checkpoint c JOIN blocks b ON b.hash = c.finalized_hash)
WHERE EXISTS (SELECT 1 FROM rates) OR EXISTS (SELECT 1 FROM asset_state);

CREATE TABLE history_unindexed (
    asset BYTEA PRIMARY KEY
);
INSERT INTO history_unindexed (asset) SELECT DISTINCT asset FROM indexes;

INSERT INTO rate_log (block_hash, block_number, asset, rate)
SELECT b.hash, r.block_number, r.asset, r.rate
FROM rates r
JOIN blocks b ON b.number = r.block_number
             AND ((r.block_status = 1 AND b.status = 1) OR (r.block_status = 0 AND b.status = 0))
ON CONFLICT DO NOTHING;

INSERT INTO asset_state_log (block_hash, block_number, asset, state, since_number, since_hash,
                             tx_hash, log_index, reason, user_address, balance, amount, detail)
SELECT b.hash, s.block_number, s.asset, s.state, s.since_number, s.since_hash, s.tx_hash,
       s.log_index, s.reason, s.user_address, s.balance, s.amount, s.detail
FROM asset_state s
JOIN blocks b ON b.number = s.block_number
             AND ((s.block_status = 1 AND b.status = 1) OR (s.block_status = 0 AND b.status = 0))
ON CONFLICT DO NOTHING;
