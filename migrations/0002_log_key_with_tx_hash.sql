-- The log's unique key names the event the way the engine does (`LogId` = tx hash + log
-- index), so a repeated (block hash, tx hash, log index, ordinal) in one changeset is a
-- unique violation (a typed error) instead of being silently dropped.
ALTER TABLE balance_updates DROP CONSTRAINT balance_updates_pkey;
ALTER TABLE balance_updates ADD PRIMARY KEY (block_hash, tx_hash, log_index, ordinal);
