import fs from 'node:fs';
import path from 'node:path';
import { pool, dir, taskQueue, useStack, unique, makeCounterTable, waitFor, env, exited } from './harness';
import { cli, cliStatus, spawnCli, cliEnv, tempDir, writeSpec, counterBackfill } from './cli-harness';

jest.setTimeout(180_000);

useStack({ worker: true, dir: 'stagefill-cli', queue: 'cliq' });

const statusOf = (id: string) => cliStatus<Record<string, unknown> & { state: string; workflowStatus: string }>(id);
const distribution = async (table: string) =>
  Object.fromEntries((await pool.query(`SELECT n, count(*)::int AS c FROM ${table} GROUP BY n`)).rows.map((r) => [String(r.n), r.c]));

test('every verb has --help with an example', async () => {
  const verbs = [
    ['plan'],
    ['start'],
    ['status'],
    ['watch'],
    ['pause'],
    ['resume'],
    ['cancel'],
    ['rollback'],
    ['approve'],
    ['retry'],
    ['throttle'],
    ['result'],
    ['history'],
    ['list'],
    ['schedule'],
    ['schedule', 'create'],
    ['schedule', 'list'],
    ['schedule', 'pause'],
    ['schedule', 'unpause'],
    ['schedule', 'delete'],
    ['dev'],
    ['worker'],
    ['demo'],
  ];
  const results = await Promise.all(verbs.map((v) => cli(...v, '--help')));
  results.forEach((r, i) => {
    const verb = verbs[i]!.join(' ');
    expect({ verb, code: r.code }).toEqual({ verb, code: 0 });
    expect(r.stdout).toMatch(/Examples:\n\s+\$ (\S+=\S+ )*stagefill /);
    expect(r.stdout).toContain(`stagefill ${verb}`);
  });
  const top = await cli('--help');
  for (const v of [
    'plan',
    'start',
    'status',
    'watch',
    'pause',
    'resume',
    'cancel',
    'rollback',
    'approve',
    'history',
    'list',
    'schedule',
    'dev',
    'worker',
    'demo',
  ]) {
    expect(top.stdout).toMatch(new RegExp(`^\\s+${v}\\b`, 'm'));
  }
});

test('an invalid spec exits 2 and names the field and the fix; a run never starts', async () => {
  const table = await makeCounterTable(pool, unique('t'), 100);
  const bad = writeSpec(dir, counterBackfill(table, { chunkSize: 0, transform: 'UPDATE x SET n = 1' }));
  for (const verb of [['start'], ['plan'], ['schedule', 'create', '--every', '1h']]) {
    const r = await cli(...verb, bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`invalid spec ${bad}:`);
    expect(r.stderr).toMatch(/chunkSize: chunkSize must be at least 1/);
    expect(r.stderr).toMatch(/transform: transform must use both :lo and :hi/);
  }
  const unknownField = writeSpec(dir, counterBackfill(table, { chunksize: 10 }));
  const r = await cli('start', unknownField);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/unknown field "chunksize"; remove it or check the spelling/);
  // bad flags are input errors too, named by the flag
  const flag = await cli('list', '--kind', 'table');
  expect(flag.code).toBe(2);
  expect(flag.stderr).toContain('--kind: expected backfill, rollout or fleet');
  expect(await distribution(table)).toEqual({ '0': 100 });
});

test('plan reads the chunk plan from the table; start --wait runs it; status, history and list report it', async () => {
  const table = await makeCounterTable(pool, unique('t'), 6_000);
  const spec = counterBackfill(table);
  const file = writeSpec(dir, spec);

  const plan = await cli('plan', file);
  expect(plan.code).toBe(0);
  expect(plan.stdout).toContain(`backfill ${spec.name} on ${table} by id: chunks of 500 rows, 2 lanes`);
  expect(plan.stdout).toMatch(/range \[1, 6001\): ~6,000 rows, ~1\d chunks/);
  expect(await distribution(table)).toEqual({ '0': 6_000 }); // plan changes nothing

  const start = await cli('start', file, '--wait');
  expect(start.code).toBe(0);
  const id = start.stdout.split('\n')[0];
  expect(id).toBe(`stagefill-backfill:${table}:${spec.name}`);
  expect(start.stdout).toContain(`${id}: completed (COMPLETED)`);
  expect(await distribution(table)).toEqual({ '1': 6_000 });

  const status = await statusOf(id!);
  expect(status).toMatchObject({ kind: 'backfill', state: 'completed', rowsProcessed: 6_000, workflowStatus: 'COMPLETED' });
  const text = await cli('status', id!);
  expect(text.stdout).toMatch(/100\.0% completed\s+rows 6,000\/6,000/);

  const history = await cli('history', id!);
  expect(history.code).toBe(0);
  expect(history.stdout).toContain(`backfill ${spec.name} on ${table}: completed, generation 1`);
  expect(history.stdout).toMatch(/generation 1 \(start, .*\): range \[1, 6001\)/);
  expect(history.stdout).toMatch(/6,000\/6,000 rows in 1\d checkpointed chunks/);
  expect(history.stdout).toMatch(/backfill started/);
  expect(history.stdout).toMatch(/backfill completed/);
  const hjson = JSON.parse((await cli('history', id!, '--json')).stdout);
  expect(hjson.backfill.generations[0]).toMatchObject({ generation: 1, rowsDone: 6_000, rowsPlanned: 6_000 });
  expect(hjson.events.map((e: { event: string }) => e.event)).toEqual(['started', 'completed']);

  const listed = await waitFor('the run in list', async () => {
    const r = await cli('list', '--kind', 'backfill', '--table', table, '--json');
    const runs = JSON.parse(r.stdout) as { workflowId: string; state: string; tables: string[] }[];
    return runs.find((x) => x.workflowId === id && x.state === 'completed') && runs;
  });
  expect(listed).toHaveLength(1);
  expect(listed[0]!.tables).toEqual([table]);
  const none = JSON.parse((await cli('list', '--kind', 'backfill', '--table', table, '--state', 'running', '--json')).stdout);
  expect(none).toEqual([]);
  const rows = await cli('list', '--table', table);
  expect(rows.stdout).toMatch(
    new RegExp(`^${id!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\tbackfill\\t${table}\\tcompleted\\tCOMPLETED`, 'm'),
  );

  const missing = await cli('history', 'stagefill-backfill:public.nope:nothing');
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain('no audit for stagefill-backfill:public.nope:nothing');
});

test('pause stops a running backfill, resume continues it, cancel ends another; watch of the cancelled one exits 1', async () => {
  // a minute of work at this rate: the cancel below must land while it runs, however slow the CLI calls before it are
  const table = await makeCounterTable(pool, unique('t'), 60_000);
  const spec = counterBackfill(table, { throttle: { maxRowsPerSecond: 1000 } });
  const start = await cli('start', writeSpec(dir, spec));
  expect(start.code).toBe(0);
  const id = start.stdout.trim();
  await waitFor('progress', async () => ((await statusOf(id)).rowsProcessed as number) > 0);

  const pause = await cli('pause', id, '--reason', 'peak traffic');
  expect(pause.code).toBe(0);
  expect(pause.stdout).toContain(`pause sent to ${id}`);
  const paused = await waitFor('paused', async () => {
    const s = await statusOf(id);
    return s.state === 'paused' && s;
  });
  await new Promise((r) => setTimeout(r, 1500));
  expect((await statusOf(id)).rowsProcessed).toBe(paused.rowsProcessed); // no progress while paused

  expect((await cli('resume', id)).code).toBe(0);
  await waitFor('running again', async () => ((await statusOf(id)).rowsProcessed as number) > (paused.rowsProcessed as number));

  const throttle = await cli('throttle', id, '--max-rows-per-second', '2500', '--chunk-size', '400', '--json');
  expect(throttle.code).toBe(0);
  expect(JSON.parse(throttle.stdout)).toMatchObject({ maxRowsPerSecond: 2500, chunkSize: 400 });
  const text = await cli('throttle', id, '--parallelism', '2');
  expect(text.stdout.trim()).toBe(`throttle of ${id}: chunks of 400 rows, 2 lanes, 2,500 rows/s, fixed chunk size`);
  expect((await statusOf(id)).throttle).toMatchObject({ maxRowsPerSecond: 2500, chunkSize: 400 });
  const refused = await cli('throttle', id, '--parallelism', '65');
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain('setThrottle.parallelism: expected an integer from 1 to 64, got 65');
  // the baseline's off-windows belong to a ratio budget: alone, or malformed, refused before anything is sent
  const alone = await cli('throttle', id, '--baseline-refresh', '60000');
  expect(alone.code).toBe(2);
  expect(alone.stderr).toContain('--baseline-refresh goes with --latency-p99-ratio');
  const malformed = await cli('throttle', id, '--latency-p99-ratio', '2', '--baseline-refresh', 'soon');
  expect(malformed.code).toBe(2);
  expect(malformed.stderr).toContain('--baseline-refresh: expected off, everyMs or everyMs/holdMs');
  expect((await statusOf(id)).throttle).not.toHaveProperty('latency');

  const cancel = await cli('cancel', id);
  expect(cancel.code).toBe(0);
  const watch = await cli('watch', id);
  expect(watch.code).toBe(1);
  expect(watch.stdout).toMatch(/: cancelled \(CANCELLED\)\n$/);
  // whatever was checkpointed was applied exactly once; the rest not at all
  const d = await distribution(table);
  expect(Object.keys(d).sort()).toEqual(expect.arrayContaining(['1']));
  expect((d['0'] ?? 0) + d['1']).toBe(60_000);
  expect(d['0']).toBeGreaterThan(0); // cancelled before the end
});

test('result prints the outcome; approve, rollback and retry refuse a backfill (exit 2); controls on an unknown id exit 1', async () => {
  const table = await makeCounterTable(pool, unique('t'), 500);
  const start = await cli('start', writeSpec(dir, counterBackfill(table)), '--wait');
  const id = start.stdout.split('\n')[0]!;
  const result = await cli('result', id);
  expect(result.code).toBe(0);
  expect(JSON.parse(result.stdout)).toMatchObject({ state: 'completed', rowsProcessed: 500 });
  for (const verb of ['approve', 'rollback', 'retry']) {
    const r = await cli(verb, id);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${verb}: ${id} is a backfill; ${verb} applies to rollouts`);
  }
  const r = await cli('pause', 'stagefill-backfill:public.nope:nothing');
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('no workflow stagefill-backfill:public.nope:nothing');
  // a run that has closed is not "no workflow": it says how it ended
  for (const args of [
    ['throttle', id, '--chunk-size', '100'],
    ['pause', id],
    ['resume', id],
    ['cancel', id],
  ]) {
    const closed = await cli(...args);
    expect({ args, code: closed.code }).toEqual({ args, code: 1 });
    expect(closed.stderr).toContain(`${id}: run is completed; ${args[0]} applies only to a running run`);
  }
});

test('--json: one documented shape per verb (start, status, plan with its window, list, result, history, pause, throttle, watch)', async () => {
  const table = await makeCounterTable(pool, unique('t'), 3_000);
  // a window open now, for an hour at least
  const start0 = `${String((new Date().getUTCHours() + 23) % 24).padStart(2, '0')}:00`;
  const spec = counterBackfill(table, { throttle: { maxRowsPerSecond: 200 }, window: { start: start0, duration: '3h', timeZone: 'UTC' } });
  const file = writeSpec(dir, spec);

  const plan = await cli('plan', file, '--json');
  expect(plan.code).toBe(0);
  expect(JSON.parse(plan.stdout)).toMatchObject({ table, window: { start: start0, duration: 10_800_000, timeZone: 'UTC' } });

  const start = await cli('start', file, '--json');
  expect(start.code).toBe(0);
  const started = JSON.parse(start.stdout);
  expect(started).toEqual({
    workflowId: `stagefill-backfill:${table}:${spec.name}`,
    runId: expect.any(String),
    kind: 'backfill',
    name: spec.name,
  });
  const id = started.workflowId as string;

  const status = JSON.parse((await cli('status', id, '--json')).stdout);
  expect(status).toMatchObject({ kind: 'backfill', workflowStatus: 'RUNNING' });
  const pause = await cli('pause', id, '--json', '--reason', 'json test');
  expect(JSON.parse(pause.stdout)).toEqual({ workflowId: id, action: 'pause', by: 'cli-test', reason: 'json test' });
  expect(JSON.parse((await cli('resume', id, '--json')).stdout)).toEqual({
    workflowId: id,
    action: 'resume',
    by: 'cli-test',
    reason: null,
  });
  expect(JSON.parse((await cli('throttle', id, '--max-rows-per-second', '0', '--json')).stdout)).toMatchObject({
    chunkSize: 500,
    parallelism: 2,
  });

  const list = JSON.parse((await cli('list', '--table', table, '--json')).stdout);
  expect(list).toEqual([expect.objectContaining({ workflowId: id, kind: 'backfill', tables: [table] })]);

  const watch = await cli('watch', id, '--json');
  expect(watch.code).toBe(0);
  const lines = watch.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(lines[lines.length - 1]).toEqual({ workflowId: id, state: 'completed', workflowStatus: 'COMPLETED', exitCode: 0 });
  expect(lines.slice(0, -1).every((l) => l.kind === 'backfill')).toBe(true);

  const result = await cli('result', id, '--json');
  expect(JSON.parse(result.stdout)).toMatchObject({ state: 'completed', rowsProcessed: 3_000 });
  const history = await cli('history', id, '--json');
  expect(JSON.parse(history.stdout)).toMatchObject({ workflowId: id, backfill: { table, name: spec.name, state: 'completed' } });

  // --wait with --json: stdout holds only the start's object; the progress goes to stderr; the exit code is the outcome
  const again = await cli('start', writeSpec(dir, counterBackfill(table)), '--json', '--wait');
  expect(again.code).toBe(0);
  expect(Object.keys(JSON.parse(again.stdout))).toEqual(['workflowId', 'runId', 'kind', 'name']);
  expect(again.stderr).toMatch(/: completed \(COMPLETED\)\n$/);
});

test('watch follows a running backfill line by line with rate and ETA, and exits 0 when it completes', async () => {
  const table = await makeCounterTable(pool, unique('t'), 12_000);
  const start = await cli('start', writeSpec(dir, counterBackfill(table, { throttle: { maxRowsPerSecond: 3000 } })));
  const id = start.stdout.trim();
  const watch = await cli('watch', id);
  expect(watch.code).toBe(0);
  const lines = watch.stdout.trim().split('\n');
  const progress = lines.filter((l) => /rows [\d,]+\/12,000 chunks [\d,]+\/[\d,]+ [\d,]+ rows\/s ETA (\d+s|\d+m\d\ds|--)/.test(l));
  expect(progress.length).toBeGreaterThanOrEqual(2); // it showed the run moving, not just the end
  expect(progress.some((l) => /\s(running)\s/.test(l) && !/ETA --/.test(l))).toBe(true);
  expect(lines[lines.length - 1]).toBe(`${id}: completed (COMPLETED)`);
});

test('worker runs a worker process that drains on SIGTERM; connection flags override the environment', async () => {
  const q = unique('cliworker');
  const w = spawnCli(['worker'], cliEnv(q, { STAGEFILL_WORKFLOW_BUNDLE: env().bundle, LOG_LEVEL: 'info' }));
  try {
    const table = await makeCounterTable(pool, unique('t'), 2_000);
    // the environment names another queue; the flag wins
    const start = await cli('start', writeSpec(dir, counterBackfill(table)), '--wait', '--task-queue', q);
    expect(start.code).toBe(0);
    expect(await distribution(table)).toEqual({ '1': 2_000 });
    const wrong = await cli('list', '--address', '127.0.0.1:1');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('cannot reach Temporal at 127.0.0.1:1');
  } finally {
    w.child.kill('SIGTERM');
  }
  expect(await exited(w.child)).toBe(0);
  expect(w.output().stdout).toMatch(/worker started/);
});

test('dev prints the stack it serves and writes dev.env into --state-dir; SIGTERM stops it', async () => {
  const stateDir = tempDir('stagefill-dev');
  // TEMPORAL_ADDRESS and DATABASE_URL are set: dev reuses this run's stack rather than starting another
  const dev = spawnCli(['dev', '--state-dir', stateDir], cliEnv(taskQueue));
  try {
    await waitFor('dev ready', async () => dev.output().stderr.includes('ready;'), 60_000);
    expect(dev.output().stdout).toContain(`TEMPORAL_ADDRESS=${env().address}`);
    expect(fs.readFileSync(path.join(stateDir, 'dev.env'), 'utf8')).toContain(`export TEMPORAL_ADDRESS='${env().address}'`);
    await new Promise((r) => setTimeout(r, 1000));
    expect(dev.child.exitCode).toBeNull(); // it stays in the foreground until told to stop
  } finally {
    dev.child.kill('SIGTERM');
  }
  const done = await dev.done;
  expect(done.code).toBe(0);
  expect(done.stderr).toContain('stagefill dev: stopping');
  fs.rmSync(stateDir, { recursive: true, force: true });
});
