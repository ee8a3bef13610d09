-- Backfills on partitioned tables: the leaf partition each key partition lies
-- in (a chunk never spans two), and the leaves a generation was planned over
-- (a lease compares them with the table's leaves now: attach/detach during a
-- run is refused). Both NULL for a plain table.
ALTER TABLE stagefill.backfill_partitions ADD COLUMN leaf text;
ALTER TABLE stagefill.backfill_generations ADD COLUMN leaves text[];
