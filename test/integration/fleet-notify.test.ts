import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NotificationBody } from '../../core/common/notify';
import { useStack, dir, unique, waitFor } from './harness';
import type { Tenants } from './fleet-harness';
import { startTenants, makeTenantTables, startFleetSpec, doubleChange } from './fleet-harness';

/**
 * A fleet's webhook (its spec's `notify:`): each wave started, completed or halted, the fleet finished or rolled back,
 * posted to a real local HTTP receiver, in order, once each; a refused fleet's `failed`, a retried wave started again.
 * Three tenants: wave "first" takes t0, "second" t1 and t2.
 */
useStack({ dir: 'fleet-notify' });

let t: Tenants;
beforeAll(async () => {
  t = await startTenants(3, dir, () => ({ env: 'prod' }));
}, 180_000);
afterAll(async () => t?.stop());

const WAVES = [
  { name: 'first', names: ['t0'] },
  { name: 'second', share: 'rest', parallelism: 2 },
];

/** A receiver of webhook POSTs: every body it got, in arrival order. */
async function receiver(): Promise<{ url: string; bodies: NotificationBody[]; close(): Promise<void> }> {
  const bodies: NotificationBody[] = [];
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      bodies.push(JSON.parse(data) as NotificationBody);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, bodies, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const eventsOf = (bodies: NotificationBody[]) => bodies.map((b) => [b.event, b.wave ?? null]);

test('a fleet that completes: each wave started and completed, then finished, in order, once each', async () => {
  const hook = await receiver();
  try {
    const table = unique('nt');
    await makeTenantTables(t, table, 20);
    const { spec, handle } = await startFleetSpec(t, { change: doubleChange(table), waves: WAVES, notify: { webhook: hook.url } });
    expect(((await handle.result()) as { state: string }).state).toBe('completed');
    // the fleet waits for its deliveries before it closes: everything has arrived
    expect(eventsOf(hook.bodies)).toEqual([
      ['wave_started', 'first'],
      ['wave_completed', 'first'],
      ['wave_started', 'second'],
      ['wave_completed', 'second'],
      ['finished', null],
    ]);
    for (const b of hook.bodies) expect(b).toMatchObject({ kind: 'fleet', name: spec.name, workflowId: handle.workflowId });
    expect(new Set(hook.bodies.map((b) => b.id)).size).toBe(hook.bodies.length);
    expect(hook.bodies[1]!.text).toMatch(/stagefill fleet .* completed wave "first"/);
  } finally {
    await hook.close();
  }
}, 600_000);

test('a wave that halts says so with the failed target, and the fleet rolled back after it; `on:` filters', async () => {
  const hook = await receiver();
  const filtered = await receiver();
  try {
    const table = unique('nh');
    await makeTenantTables(t, table, 20);
    await t.db('t2').query(`UPDATE public."${table}" SET v = -1 WHERE id = 3`);
    const { handle } = await startFleetSpec(t, { change: doubleChange(table), waves: WAVES, notify: { webhook: hook.url } });
    await waitFor('the wave_halted event', async () => hook.bodies.some((b) => b.event === 'wave_halted'), 240_000, 500);
    await handle.signal('rollback', { by: 'test', reason: 'bad row' });
    expect(((await handle.result()) as { state: string }).state).toBe('rolled_back');
    expect(eventsOf(hook.bodies)).toEqual([
      ['wave_started', 'first'],
      ['wave_completed', 'first'],
      ['wave_started', 'second'],
      ['wave_halted', 'second'],
      ['rolled_back', null],
    ]);
    const halted = hook.bodies[3]!;
    expect(halted).toMatchObject({
      state: 'halted',
      reason: expect.stringMatching(/wave "second" halted: 1 target failed.*t2: .*no negative v/),
    });
    expect(hook.bodies[4]!.reason).toMatch(/rollback requested by test: bad row/);

    // a second fleet whose webhook takes only the halts: it hears one event
    const table2 = unique('nf');
    await makeTenantTables(t, table2, 20);
    await t.db('t1').query(`UPDATE public."${table2}" SET v = -1 WHERE id = 3`);
    const second = await startFleetSpec(t, {
      change: doubleChange(table2),
      waves: WAVES,
      notify: { webhook: filtered.url, on: ['wave_halted'] },
    });
    await waitFor('the wave_halted event', async () => filtered.bodies.length > 0, 240_000, 500);
    await second.handle.signal('rollback', { by: 'test' });
    await second.handle.result();
    expect(eventsOf(filtered.bodies)).toEqual([['wave_halted', 'second']]);
  } finally {
    await hook.close();
    await filtered.close();
  }
}, 600_000);

test('a fleet refused at start says failed with the refusal; retry after a halt starts the wave again', async () => {
  const hook = await receiver();
  const retried = await receiver();
  try {
    // refused: t1's table has a column the others lack (onShapeMismatch: refuse, the default)
    const table = unique('nr');
    await makeTenantTables(t, table, 10);
    await t.db('t1').query(`ALTER TABLE public."${table}" ADD COLUMN extra text`);
    const refused = await startFleetSpec(t, { change: doubleChange(table), waves: WAVES, notify: { webhook: hook.url } });
    await expect(refused.handle.result()).rejects.toThrow();
    // the fleet waits for its delivery before it fails: it has arrived
    expect(eventsOf(hook.bodies)).toEqual([['failed', null]]);
    expect(hook.bodies[0]).toMatchObject({
      kind: 'fleet',
      state: 'refused',
      reason: expect.stringMatching(/t1: public\.\S+ differs: extra column extra text/),
    });
    expect(hook.bodies[0]!.text).toMatch(/was refused/);

    // halted on t2's bad row, fixed, retried: wave "second" is started again, then completes
    const table2 = unique('ny');
    await makeTenantTables(t, table2, 20);
    await t.db('t2').query(`UPDATE public."${table2}" SET v = -1 WHERE id = 3`);
    const { handle } = await startFleetSpec(t, { change: doubleChange(table2), waves: WAVES, notify: { webhook: retried.url } });
    await waitFor('the wave_halted event', async () => retried.bodies.some((b) => b.event === 'wave_halted'), 240_000, 500);
    await t.db('t2').query(`UPDATE public."${table2}" SET v = 3 WHERE id = 3`);
    await handle.signal('retry', { by: 'test' });
    expect(((await handle.result()) as { state: string }).state).toBe('completed');
    expect(eventsOf(retried.bodies)).toEqual([
      ['wave_started', 'first'],
      ['wave_completed', 'first'],
      ['wave_started', 'second'],
      ['wave_halted', 'second'],
      ['wave_started', 'second'],
      ['wave_completed', 'second'],
      ['finished', null],
    ]);
  } finally {
    await hook.close();
    await retried.close();
  }
}, 600_000);
