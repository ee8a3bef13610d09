import { ApplicationFailure } from '@temporalio/common';
import type { PoolClient } from 'pg';
import { createStepRunner } from '../../activities/rollout/steps';
import { stepActions } from '../../steps/actions';
import type { StepActions } from '../../steps/types';
import { createPool } from '../../db/pool';
import { startTcpProxy } from '../../chaos/proxy';
import { pool, unique, makeCounterTable, testLogger, env, waitFor, afterThisTest } from './harness';
import { useActivities, acts, begin, expectCatalogUnchanged, columnsOf } from './rollout-activities-harness';

/**
 * The step runner under the rollout activities, against the real Postgres: a retried apply resumes after its last
 * finished phase, a phase outside a transaction runs once under the lock timeout, DDL that cannot get its lock retries.
 */

jest.setTimeout(120_000);

useActivities();

test('a retried apply resumes after the last finished phase: a phase that committed never runs again', async () => {
  const table = await makeCounterTable(pool, unique('t'), 20);
  const r = await begin(table, [{ kind: 'addCheck', id: 'chk', name: 'v_nonneg', expression: 'v >= 0' }]);
  // as if a worker died right after the first phase committed: the NOT VALID constraint and its phase record
  await pool.query(`ALTER TABLE ${table} ADD CONSTRAINT v_nonneg CHECK (v >= 0) NOT VALID`);
  await pool.query(
    `UPDATE stagefill.rollout_steps SET phase = 'not_valid', detail = '{"constraint":"v_nonneg"}' WHERE rollout_id = $1 AND step_id = 'chk'`,
    [r.rolloutId],
  );
  // running ADD CONSTRAINT again would fail (it exists): only VALIDATE runs
  const applied = await acts.applyStep(r.input('chk'));
  expect(applied).toMatchObject({ alreadyDone: false, detail: { constraint: 'v_nonneg' } });
  const { rows } = await pool.query(`SELECT convalidated FROM pg_constraint WHERE conrelid = $1::regclass AND conname = 'v_nonneg'`, [
    table,
  ]);
  expect(rows).toEqual([{ convalidated: true }]);
  const { rows: step } = await pool.query(`SELECT effect, phase FROM stagefill.rollout_steps WHERE rollout_id = $1 AND step_id = 'chk'`, [
    r.rolloutId,
  ]);
  expect(step).toEqual([{ effect: 'applied', phase: 'validated' }]);
  expect(await acts.applyStep(r.input('chk'))).toMatchObject({ alreadyDone: true });
  await acts.revertStep(r.input('chk'));
  await expectCatalogUnchanged(r);
});

test('a phase outside a transaction (CREATE INDEX CONCURRENTLY) runs on a plain connection under the lock timeout, once even with two attempts at once, and the next phase resumes after it', async () => {
  const table = await makeCounterTable(pool, unique('t'), 50);
  const index = unique('ix').replace(/[^a-z0-9_]/gi, '_');
  const runs: string[] = [];
  // a kind of the test's own, run by the real runner: the shape a concurrent index build takes
  const actions: StepActions<{ kind: string }> = {
    phases: [
      {
        name: 'built',
        transactional: false,
        async run(ctx) {
          runs.push('built');
          const { rows } = await ctx.db.query(`SHOW lock_timeout`);
          // refused inside a transaction block: this succeeding is the proof it runs outside one
          await ctx.db.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${index} ON ${table} (v)`);
          return { index, lockTimeout: rows[0].lock_timeout };
        },
      },
      {
        name: 'noted',
        transactional: true,
        async run(ctx) {
          runs.push('noted');
          return { sawIndex: ctx.detail.index };
        },
      },
    ],
    async revert(ctx) {
      await ctx.db.query(`DROP INDEX CONCURRENTLY IF EXISTS ${String(ctx.detail.index)}`);
    },
    isRevertOutsideTransaction: true,
  };
  const runner = createStepRunner({ pool, logger: testLogger }, () => actions);
  const r = await begin(table, [{ kind: 'sql', id: 'ix', apply: 'select 1', revert: 'select 1', lockTimeoutMs: 12345 }]);
  // two attempts at once (a retry racing a worker thought dead): each phase runs once between them
  const both = await Promise.all([runner.applyStep(r.input('ix')), runner.applyStep(r.input('ix'))]);
  expect(both.map((a) => a.alreadyDone).sort()).toEqual([false, true]);
  expect(both.find((a) => !a.alreadyDone)).toMatchObject({ detail: { index, lockTimeout: '12345ms', sawIndex: index } });
  expect(await runner.applyStep(r.input('ix'))).toMatchObject({ alreadyDone: true });
  expect(runs).toEqual(['built', 'noted']);
  const { rows } = await pool.query(`SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1`, [
    index,
  ]);
  expect(rows).toEqual([{ indisvalid: true }]);
  await runner.revertStep(r.input('ix'));
  expect((await pool.query(`SELECT 1 FROM pg_class WHERE relname = $1`, [index])).rows).toEqual([]);
  await expectCatalogUnchanged(r);
});

test("a plain connection lost mid-statement fails the attempt and the worker lives on: the client's 'error' event is heard (worker crashes found by npm run chaos -- --minutes 30 --seed 2026)", async () => {
  // the runner's connections go through a proxy the test can cut, as a PostgreSQL crash or a network fault cuts them
  const url = new URL(env().databaseUrl);
  const proxy = await startTcpProxy(Number(url.port));
  afterThisTest(() => proxy.close());
  url.port = String(proxy.port);
  const viaProxy = createPool({ url: url.toString(), max: 4, applicationName: 'stagefill-lost-test' });
  afterThisTest(() => viaProxy.end());
  const table = await makeCounterTable(pool, unique('t'), 10);
  const actions: StepActions<{ kind: string }> = {
    phases: [
      {
        name: 'slow',
        transactional: false,
        async run(ctx) {
          await ctx.db.query(`SELECT pg_sleep(60)`);
          return {};
        },
      },
    ],
    async revert() {},
  };
  const runner = createStepRunner({ pool: viaProxy, logger: testLogger }, () => actions);
  const r = await begin(table, [{ kind: 'sql', id: 'slow', apply: 'select 1', revert: 'select 1' }]);
  const attempt = runner.applyStep(r.input('slow'));
  await waitFor('the phase statement running', async () =>
    Boolean(
      (
        await pool.query(
          `SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' AND application_name = 'stagefill-lost-test'`,
        )
      ).rowCount,
    ),
  );
  // unheard, the lost connection's 'error' event throws out of the socket's handler: an uncaught exception that
  // fails this test (and in a worker, ends the process)
  expect(proxy.drop()).toBeGreaterThan(0);
  await expect(attempt).rejects.toThrow(/ECONNRESET|terminated|connection error/);
  // the step is untouched: a retry applies it from the start
  const { rows } = await pool.query(`SELECT phase FROM stagefill.rollout_steps WHERE rollout_id = $1 AND step_id = 'slow'`, [r.rolloutId]);
  expect(rows).toEqual([{ phase: null }]);
});

test('DDL that cannot get its lock in time fails retryably and applies nothing', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const r = await begin(table, [{ kind: 'addColumn', id: 'add', column: 'v2', type: 'int', up: 'v' }]);
  const holder: PoolClient = await pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(`SELECT * FROM ${table} LIMIT 1`); // ACCESS SHARE: enough to block ALTER TABLE
    const err = await acts.applyStep({ ...r.input('add'), lockTimeoutMs: 200 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ApplicationFailure);
    expect(err!.message).toContain('lock timeout');
  } finally {
    await holder.query('ROLLBACK');
    holder.release();
  }
  expect((await columnsOf(table)).map((c) => c.name)).toEqual(['id', 'n', 'v']);
  expect((await acts.applyStep(r.input('add'))).alreadyDone).toBe(false);
});

test("contract runs the other steps' hooks through the registry its runner was given: a kind swapped in by a test gets its contract hooks", async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const hooks: string[] = [];
  // the real registry, with the sql kind swapped for one of the test's own that has contract hooks
  const swapped: StepActions<{ kind: string }> = {
    phases: [{ name: 'done', transactional: true, run: async () => ({}) }],
    revert: async () => {},
    contract: {
      prepare: async (ctx) => void hooks.push(`prepare ${ctx.stepId}`),
      complete: async (ctx) => void hooks.push(`complete ${ctx.stepId}`),
    },
  };
  const runner = createStepRunner({ pool, logger: testLogger }, (kind) => (kind === 'sql' ? swapped : stepActions(kind)));
  const r = await begin(table, [
    { kind: 'sql', id: 'mine', apply: 'select 1', revert: 'select 1' },
    { kind: 'contract', id: 'contract' },
  ]);
  await runner.applyStep(r.input('mine'));
  await runner.applyStep(r.input('contract'));
  expect(hooks).toEqual(['prepare mine', 'complete mine']);
});
