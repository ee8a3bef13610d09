-- A checkpoint is written only by the statement that moves its partition's
-- cursor (commitChunkCheckpoint: the INSERT runs FROM the partition's UPDATE),
-- so it references that partition row rather than the generation row. The
-- foreign-key check then locks a row the chunk's transaction already holds
-- (a no-op), where before every lane's every chunk took a key-share lock on the
-- one generation row they all share: a multixact per chunk when lanes overlap.
-- Deleting a generation still removes its checkpoints (through its partitions).
ALTER TABLE stagefill.checkpoints DROP CONSTRAINT IF EXISTS checkpoints_backfill_id_generation_fkey;
ALTER TABLE stagefill.checkpoints
  ADD CONSTRAINT checkpoints_partition_fkey FOREIGN KEY (backfill_id, generation, partition_no)
  REFERENCES stagefill.backfill_partitions (backfill_id, generation, partition_no) ON DELETE CASCADE;
