-- Schema of the Postgres BalanceStore / PriceFeed.
-- Addresses and hashes are BYTEA; token amounts and rounds are NUMERIC(78,0): exact for any U256.
-- Status codes: 0 = pending, 1 = confirmed, 2 = reverted.

CREATE TABLE assets (
    asset                 BYTEA PRIMARY KEY,
    symbol                TEXT     NOT NULL,
    decimals              SMALLINT NOT NULL,
    collateral_factor_bps INTEGER  NOT NULL CHECK (collateral_factor_bps BETWEEN 0 AND 10000)
);

-- Every applied block, one row each. Pending rows are the unconfirmed window; the
-- confirmed row at the checkpoint's finalized height is the finalized tip.
CREATE TABLE blocks (
    hash        BYTEA    PRIMARY KEY,
    number      BIGINT   NOT NULL,
    parent_hash BYTEA    NOT NULL,
    timestamp   BIGINT   NOT NULL,
    status      SMALLINT NOT NULL
);
CREATE INDEX blocks_pending ON blocks (number) WHERE status = 0;
CREATE UNIQUE INDEX blocks_one_canonical_per_height ON blocks (number) WHERE status < 2;

-- The append-only event log: one row per effect of an event on a balance.
-- Its status is the status of its block (joined from `blocks`), so finalizing or
-- reverting a block touches one row in `blocks`, not every event. No foreign key to
-- `blocks`: both are written in the same transaction, and a per-row RI trigger would
-- dominate ingest cost.
CREATE TABLE balance_updates (
    block_hash   BYTEA         NOT NULL,
    block_number BIGINT        NOT NULL,
    tx_hash      BYTEA         NOT NULL,
    log_index    BIGINT        NOT NULL,
    ordinal      SMALLINT      NOT NULL,
    user_address BYTEA         NOT NULL,
    asset        BYTEA         NOT NULL,
    kind         SMALLINT      NOT NULL, -- 0 credit, 1 debit, 2 set (absolute)
    amount       NUMERIC(78,0) NOT NULL,
    PRIMARY KEY (block_hash, log_index, ordinal)
);
CREATE INDEX balance_updates_block ON balance_updates (block_number);

-- Denormalized current state (the original design's table), extended so pending state is
-- kept per unconfirmed block: one confirmed row per (user, asset) and one pending row per
-- (user, asset, block) holding the balance after that block.
CREATE TABLE user_current_balances (
    user_address BYTEA         NOT NULL,
    asset        BYTEA         NOT NULL,
    balance      NUMERIC(78,0) NOT NULL,
    block_number BIGINT        NOT NULL,
    block_status SMALLINT      NOT NULL,
    PRIMARY KEY (user_address, asset, block_status, block_number)
);
CREATE UNIQUE INDEX ucb_one_confirmed ON user_current_balances (user_address, asset) WHERE block_status = 1;
CREATE INDEX ucb_pending_by_block ON user_current_balances (block_number) WHERE block_status = 0;
CREATE INDEX ucb_holders ON user_current_balances (asset, user_address);

-- Oracle prices, same dual-state layout.
CREATE TABLE oracle_prices (
    asset        BYTEA         NOT NULL,
    answer       NUMERIC(78,0) NOT NULL,
    decimals     SMALLINT      NOT NULL,
    round_id     NUMERIC(78,0) NOT NULL,
    updated_at   BIGINT        NOT NULL,
    block_number BIGINT        NOT NULL,
    block_status SMALLINT      NOT NULL,
    PRIMARY KEY (asset, block_status, block_number)
);
CREATE UNIQUE INDEX prices_one_confirmed ON oracle_prices (asset) WHERE block_status = 1;
CREATE INDEX prices_pending_by_block ON oracle_prices (block_number) WHERE block_status = 0;

-- The checkpoint: a single row.
CREATE TABLE checkpoint (
    id             BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    head_number    BIGINT,
    finalized_hash BYTEA
);
INSERT INTO checkpoint (id) VALUES (TRUE);
