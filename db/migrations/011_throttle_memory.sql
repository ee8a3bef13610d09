-- The settings that last kept a latency budget on a table, per table: a new
-- budgeted backfill of the same table starts from them (a margin below)
-- instead of one lane at eight chunks a second. Written by the probe while its
-- controller keeps the budget; a hint, so losing it costs only a slower start.
CREATE TABLE stagefill.throttle_memory (
  table_name       text             PRIMARY KEY,
  rows_per_second  double precision,               -- NULL: no rate limit was needed
  lanes            integer          NOT NULL,
  chunk_size       integer          NOT NULL,
  budget_p99_ms    double precision NOT NULL,      -- the budget (probe p99) they kept
  p99_ms           double precision NOT NULL,      -- the probe's p99 at them
  kept_at          timestamptz      NOT NULL DEFAULT now()
);
