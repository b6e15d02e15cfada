-- Cheaper ingest (issue #3): two indexes that every written row paid for and no query of
-- the write or read path needs.
--
-- `ucb_holders (asset, user_address)` was maintained on every pending insert and every
-- confirmed update; `holders(asset)` (run after a price change, before refreshing each of
-- those users) now reads the table instead.
DROP INDEX ucb_holders;

-- The log's unique key (block hash, tx hash, log index, ordinal) cost more than half of
-- the log's write. Its guarantee is kept by the writer: a log repeated within a block is
-- refused before writing, and a block's log rows are written only by the changeset that
-- inserts that block into `blocks` (whose primary key is the block hash). Reads by height
-- keep `balance_updates_block`.
ALTER TABLE balance_updates DROP CONSTRAINT balance_updates_pkey;
