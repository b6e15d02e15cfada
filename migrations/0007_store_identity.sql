-- The identity a writer claimed the store with (BalanceStore::claim_writer): the chain id
-- and a fingerprint of the asset registry. One row; a writer with another identity is
-- refused, so one schema never mixes two chains or two registries.
CREATE TABLE store_identity (
    singleton  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    chain_id   NUMERIC(20,0) CHECK (chain_id >= 0),
    registry   BYTEA NOT NULL CHECK (length(registry) = 32),
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
