-- The writer's fencing epoch: every successful claim (BalanceStore::claim_writer) bumps it
-- and the claiming handle remembers its value; each changeset updates the checkpoint only
-- while the epoch is still its own. A writer whose ownership session was lost, and whose
-- store another writer claimed since, can no longer commit anything.
ALTER TABLE checkpoint ADD COLUMN writer_epoch BIGINT NOT NULL DEFAULT 0;
