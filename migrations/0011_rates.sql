-- Vault rates (ERC-4626 `convertToAssets` read at a block), the dual-state layout of
-- oracle_prices: per asset at most one confirmed row (block_status 1) and one pending row
-- per unconfirmed block that read a rate (block_status 0), reverted and finalized with its
-- block in the changeset's transaction.
--
-- `chain` is the store's chain slot (design §2): 1 until a store follows several chains,
-- so the multi-chain migration has nothing to rewrite here.
CREATE TABLE rates (
    chain        SMALLINT      NOT NULL DEFAULT 1 CHECK (chain > 0),
    asset        BYTEA         NOT NULL CHECK (length(asset) = 20),
    rate         NUMERIC(78,0) NOT NULL CHECK (rate > 0),
    block_number BIGINT        NOT NULL,
    block_status SMALLINT      NOT NULL CHECK (block_status IN (0, 1)),
    PRIMARY KEY (chain, asset, block_status, block_number)
);
CREATE UNIQUE INDEX rates_one_confirmed ON rates (chain, asset) WHERE block_status = 1;
CREATE INDEX rates_pending_by_block ON rates (chain, block_number) WHERE block_status = 0;
