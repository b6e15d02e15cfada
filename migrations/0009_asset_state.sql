-- Quarantines (#19 item 1): each asset's fold state besides balances and prices, block-scoped
-- like oracle_prices: one pending row per block that changed it (reverted with the block),
-- and at most one confirmed row per asset (replaced on finalization). An asset without a row
-- is active. `state`: 0 active (a resume), 1 quarantined. The faulting log: since_number /
-- since_hash (its block), tx_hash / log_index; `reason`: 1 underflow, 2 overflow,
-- 3 undecodable, with the holder, balance and amount, or the decoder's `detail`.
-- The chain re-key (#20) adds `chain` to this table like to the others.
CREATE TABLE asset_state (
    asset        BYTEA         NOT NULL CHECK (length(asset) = 20),
    block_number BIGINT        NOT NULL,
    block_status SMALLINT      NOT NULL CHECK (block_status IN (0, 1)),
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
    PRIMARY KEY (asset, block_status, block_number),
    CHECK (state = 0 OR (since_number IS NOT NULL AND since_hash IS NOT NULL
                         AND tx_hash IS NOT NULL AND log_index IS NOT NULL AND reason IS NOT NULL))
);
CREATE UNIQUE INDEX asset_state_one_confirmed ON asset_state (asset) WHERE block_status = 1;
