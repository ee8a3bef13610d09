-- The latency/replica-lag controller's state per backfill: the probe writes
-- its decision here about twice a second, the backfill's leases read it.
-- UNLOGGED: it writes no WAL (so it neither adds replica lag nor hides an
-- idle primary), and after a crash it is simply measured again.
CREATE UNLOGGED TABLE stagefill.backfill_control (
  backfill_id     bigint           PRIMARY KEY,
  generation      integer          NOT NULL,
  baseline_p99_ms double precision,               -- the probe's p99 before the first chunk
  state           jsonb,                          -- the controller's memory and last decision
  replicas_seen   text[]           NOT NULL DEFAULT '{}',
  updated_at      timestamptz      NOT NULL DEFAULT clock_timestamp()
);
