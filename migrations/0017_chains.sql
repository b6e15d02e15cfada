-- The chains catalog: one database holds several chains, one schema each. The catalog of
-- the store's own schema (the base) maps every chain id to the schema holding it
-- (PostgresStore::chain adds a chain's schema, `<base>_c<chain_id>`, on first use). An
-- existing single-chain store keeps every row and becomes the chain it was claimed for
-- (0 when it was never claimed, or claimed with no chain id; a first claim with a chain id
-- updates that row in the claim's transaction).
CREATE TABLE chains (
    chain_id    NUMERIC(20,0) PRIMARY KEY CHECK (chain_id >= 0),
    schema_name TEXT NOT NULL UNIQUE,
    added_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO chains (chain_id, schema_name)
SELECT COALESCE((SELECT chain_id FROM store_identity), 0), current_schema();
