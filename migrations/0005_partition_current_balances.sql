-- `user_current_balances` split by status into two partitions (issue #3, ingest speed).
--
-- Finalization updates one confirmed row per finalized (user, asset): its balance and the
-- block that set it. With `block_number` in the table's primary key every such update was
-- a non-HOT update (a new heap tuple plus an entry in each index). Each partition now has
-- only the indexes its rows need, and the confirmed partition indexes neither `balance`
-- nor `block_number`, so updating them is a HOT update (no index entry; `fillfactor` leaves
-- room on the page for the new tuple version).
--
-- The parent keeps the name, the columns and the meaning of the dual-state table: readers
-- query `user_current_balances` as before (a `block_status = 0|1` condition prunes to one
-- partition); writers that need a conflict target write to a partition.
ALTER TABLE user_current_balances RENAME TO user_current_balances_0004;
ALTER TABLE user_current_balances_0004 RENAME CONSTRAINT user_current_balances_pkey TO user_current_balances_0004_pkey;
DROP INDEX ucb_one_confirmed;
DROP INDEX ucb_pending_by_block;

CREATE TABLE user_current_balances (
    user_address BYTEA         NOT NULL,
    asset        BYTEA         NOT NULL,
    balance      NUMERIC(78,0) NOT NULL,
    block_number BIGINT        NOT NULL,
    block_status SMALLINT      NOT NULL  -- 0 pending, 1 confirmed
) PARTITION BY LIST (block_status);

-- One confirmed row per (user, asset): the balance at the finalized height.
CREATE TABLE user_confirmed_balances PARTITION OF user_current_balances (
    PRIMARY KEY (user_address, asset)
) FOR VALUES IN (1) WITH (fillfactor = 80);

-- One pending row per (user, asset, unconfirmed block): the balance after that block.
CREATE TABLE user_pending_balances PARTITION OF user_current_balances (
    PRIMARY KEY (user_address, asset, block_number)
) FOR VALUES IN (0);
-- Reorg and confirmation deletes by height.
CREATE INDEX ucb_pending_by_block ON user_pending_balances (block_number);

INSERT INTO user_current_balances (user_address, asset, balance, block_number, block_status)
SELECT user_address, asset, balance, block_number, block_status FROM user_current_balances_0004;
DROP TABLE user_current_balances_0004;
