-- The holders of an asset (refreshed after its price changes) by index again (issue #3:
-- an index for every lookup). Migration 0004 dropped `ucb_holders` because every pending
-- insert and every confirmed update paid for it. Since 0005 the confirmed partition's
-- updates are HOT: they change neither `asset` nor `user_address`, so this index is
-- written only when a (user, asset) gets its first confirmed row. The pending partition
-- holds only the unconfirmed window and is read whole.
CREATE INDEX ucb_confirmed_holders ON user_confirmed_balances (asset, user_address);
