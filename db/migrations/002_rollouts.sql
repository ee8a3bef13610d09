-- Rollouts: the run, its steps (with what each did to the schema), gate
-- results, catalog snapshots, the one-rollout-per-table locks and the
-- read-path flags that expose steps set.

CREATE TABLE stagefill.rollouts (
  id            bigserial   PRIMARY KEY,
  workflow_id   text        NOT NULL,
  name          text        NOT NULL,
  spec          jsonb       NOT NULL,
  tables        text[]      NOT NULL,                -- schema.table, unquoted: every table the graph touches
  lineage       jsonb       NOT NULL,                -- step id -> {up|down|transform|apply|revert|expression: sha256 prefix}
  plan          jsonb,                               -- the graph as planned (StepDescription[])
  baselines     jsonb       NOT NULL DEFAULT '{}',   -- "<step>/<check>" -> value at the start
  state         text        NOT NULL DEFAULT 'running',
  reason        text,
  actor         text,
  catalog_check jsonb,                               -- finish: per table, equal to 'before' and the diff
  started_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
-- A workflow id names one unfinished rollout: a retried or reset start finds it.
CREATE UNIQUE INDEX rollouts_running_workflow_idx ON stagefill.rollouts (workflow_id) WHERE finished_at IS NULL;
CREATE INDEX rollouts_workflow_idx ON stagefill.rollouts (workflow_id, id);

-- One row per table with a rollout running; taken in beginRollout's
-- transaction, released in finishRollout's. The primary key is the rule.
CREATE TABLE stagefill.table_locks (
  table_name   text        PRIMARY KEY,
  workflow_id  text        NOT NULL,
  rollout_name text        NOT NULL,
  taken_at     timestamptz NOT NULL DEFAULT now()
);

-- `state` is the workflow's view (running, completed, held, ...); `effect` is
-- what the database holds, written in the same transaction as the step's DDL:
-- none -> (phase ...) -> applied -> reverted. Every apply and revert locks the
-- row first, so a retried or racing activity sees what already happened.
CREATE TABLE stagefill.rollout_steps (
  rollout_id     bigint      NOT NULL REFERENCES stagefill.rollouts (id) ON DELETE CASCADE,
  step_id        text        NOT NULL,
  kind           text        NOT NULL,
  table_name     text        NOT NULL,
  state          text        NOT NULL DEFAULT 'pending',
  effect         text        NOT NULL DEFAULT 'none',
  phase          text,                              -- setNotNull/addCheck: not_valid | validated
  detail         jsonb       NOT NULL DEFAULT '{}', -- what apply did (created objects, exposedAt, ...)
  state_detail   jsonb,                             -- the last transition's detail (error, check result, ...)
  transform_hash text,
  actor          text,
  started_at     timestamptz,
  finished_at    timestamptz,
  applied_at     timestamptz,
  reverted_at    timestamptz,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (rollout_id, step_id)
);

CREATE TABLE stagefill.gate_results (
  rollout_id bigint      NOT NULL REFERENCES stagefill.rollouts (id) ON DELETE CASCADE,
  step_id    text        NOT NULL,
  attempt    integer     NOT NULL,
  check_name text        NOT NULL,
  ok         boolean     NOT NULL,
  value      text,
  expected   text        NOT NULL,
  deviation  double precision,
  error      text,
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (rollout_id, step_id, attempt, check_name)
);

-- Catalog of each touched table: 'before' at the start, 'after' at the finish.
CREATE TABLE stagefill.catalog_snapshots (
  rollout_id bigint      NOT NULL REFERENCES stagefill.rollouts (id) ON DELETE CASCADE,
  table_name text        NOT NULL,
  phase      text        NOT NULL,
  snapshot   jsonb       NOT NULL,
  taken_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (rollout_id, table_name, phase)
);

-- Which view version (schema of views per version) consumers should read.
CREATE TABLE stagefill.read_paths (
  table_name       text        PRIMARY KEY,
  version          integer     NOT NULL,
  percent          integer     NOT NULL DEFAULT 100 CHECK (percent BETWEEN 0 AND 100),
  previous_version integer,
  workflow_id      text,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
