-- stagefill's own schema: backfills, their partitions (durable cursors) and
-- one checkpoint row per committed chunk.

CREATE TABLE stagefill.backfills (
  id             bigserial PRIMARY KEY,
  table_name     text        NOT NULL,             -- schema.table, unquoted
  name           text        NOT NULL,
  key_column     text        NOT NULL,
  key_type       text        NOT NULL,             -- format_type() of the key, used for casts
  generation     integer     NOT NULL DEFAULT 1,   -- --restart and replays start a new one
  state          text        NOT NULL DEFAULT 'planned',
  workflow_id    text,
  spec           jsonb       NOT NULL,
  transform_hash text        NOT NULL,
  range_from     text,                             -- frozen at the first start: [from, to)
  range_to       text,
  rows_total     bigint,
  last_error     text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (table_name, name)
);

CREATE TABLE stagefill.backfill_generations (
  backfill_id    bigint      NOT NULL REFERENCES stagefill.backfills (id) ON DELETE CASCADE,
  generation     integer     NOT NULL,
  reason         text        NOT NULL,             -- start | restart | replay
  range_from     text        NOT NULL,
  range_to       text        NOT NULL,
  transform_hash text        NOT NULL,
  rows_total     bigint      NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (backfill_id, generation)
);

-- A partition is a key range worked by one lane at a time; `cursor` is where its
-- next chunk starts. The row is locked by every chunk transaction, so two
-- workers racing over one partition serialize here.
CREATE TABLE stagefill.backfill_partitions (
  backfill_id  bigint  NOT NULL,
  generation   integer NOT NULL,
  partition_no integer NOT NULL,
  lo           text    NOT NULL,
  hi           text    NOT NULL,
  cursor       text    NOT NULL,
  rows_planned bigint  NOT NULL DEFAULT 0,
  rows_done    bigint  NOT NULL DEFAULT 0,
  chunks_done  integer NOT NULL DEFAULT 0,
  is_done      boolean NOT NULL DEFAULT false,
  -- replay: a fixed list of chunk ranges instead of cutting new ones
  fixed_chunks jsonb,
  PRIMARY KEY (backfill_id, generation, partition_no),
  FOREIGN KEY (backfill_id, generation) REFERENCES stagefill.backfill_generations (backfill_id, generation) ON DELETE CASCADE
);

-- Written in the same transaction as the chunk's transform: its existence is
-- the proof the chunk was applied, exactly once per generation.
CREATE TABLE stagefill.checkpoints (
  backfill_id    bigint      NOT NULL,
  generation     integer     NOT NULL,
  lo             text        NOT NULL,
  hi             text        NOT NULL,
  partition_no   integer     NOT NULL,
  rows           bigint      NOT NULL,
  duration_ms    integer     NOT NULL,
  transform_hash text        NOT NULL,
  worker         text,
  committed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (backfill_id, generation, lo),
  FOREIGN KEY (backfill_id, generation) REFERENCES stagefill.backfill_generations (backfill_id, generation) ON DELETE CASCADE
);

-- Audit trail for every kind of run: one row per transition or notable event.
CREATE TABLE stagefill.events (
  id          bigserial   PRIMARY KEY,
  workflow_id text        NOT NULL,
  kind        text        NOT NULL,   -- backfill | rollout
  subject     text,                   -- step id, chunk range, gate name
  event       text        NOT NULL,   -- started, paused, resumed, failed, completed, ...
  detail      jsonb,
  actor       text,
  at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX events_workflow_idx ON stagefill.events (workflow_id, id);
