-- The relay finds rows it has not published by two bounded index scans instead of one walk
-- from the oldest entry of `outbox_unpublished` (relay/outbox_store.py, ClaimPosition): the
-- rows above the last id it published, from that id on in `outbox_unpublished`, and the rows
-- below it whose transaction was still running then, from the xid horizon it saw on, here.
-- Marking a row published leaves a dead entry in a partial index until VACUUM removes it, and
-- a walk from the start crosses every one. `xid IS NOT NULL` is always true: it is there so
-- that only a query with a condition on xid can use this index (outbox_store.py says why).
CREATE INDEX outbox_unpublished_xid ON outbox (xid) WHERE published_at IS NULL AND xid IS NOT NULL;
