-- Rebasing assets' indexes (UFragments' gonsPerFragment): a holder of `shares` holds
-- floor(shares * num / den) tokens. Block-scoped fold state in the dual-state layout of
-- oracle_prices: pending rows per block (dropped by a revert), one confirmed row per
-- asset (promoted by finality). `chain` is the store's chain slot (1 until a store holds
-- several chains), so the chains re-key adds nothing to this table.
CREATE TABLE indexes (
    chain        SMALLINT      NOT NULL DEFAULT 1,
    asset        BYTEA         NOT NULL CHECK (length(asset) = 20),
    num          NUMERIC(78,0) NOT NULL CHECK (num > 0),
    den          NUMERIC(78,0) NOT NULL CHECK (den > 0),
    rebased      BOOLEAN       NOT NULL,
    block_number BIGINT        NOT NULL,
    block_status SMALLINT      NOT NULL CHECK (block_status IN (0, 1)),
    PRIMARY KEY (chain, asset, block_status, block_number)
);
CREATE UNIQUE INDEX indexes_one_confirmed ON indexes (chain, asset) WHERE block_status = 1;
CREATE INDEX indexes_pending_by_block ON indexes (chain, block_number) WHERE block_status = 0;
