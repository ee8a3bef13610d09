import { backfill } from './plan';
import { backfillStep } from './schema';

describe('backfill step', () => {
  const step = backfillStep.parse({
    kind: 'backfill',
    id: 'fill',
    dependsOn: ['add'],
    transform: 'UPDATE t SET a = 1 WHERE id >= :lo AND id < :hi',
  });

  test('as a backfill spec: the rollout table and name by default, its own tuning kept, step fields gone', () => {
    if (backfill.role !== 'backfill') throw new Error('role');
    const spec = backfill.backfill(step, { id: 'fill', table: 'public.t', rolloutName: 'r' });
    expect(spec).toMatchObject({ kind: 'backfill', name: 'r.fill', table: 'public.t', key: 'id', chunkSize: 5000, parallelism: 2 });
    expect(spec).not.toHaveProperty('id');
    expect(spec).not.toHaveProperty('dependsOn');
    expect(backfill.backfill({ ...step, name: 'mine' }, { id: 'fill', table: 'public.t', rolloutName: 'r' }).name).toBe('mine');
  });

  test('plan: chunks and lanes, row locks one chunk at a time, online', () => {
    const p = backfill.describe(step, { id: 'fill', table: 'public.t', rollbackWindowMs: 0 });
    expect(p.forward).toMatch(/^backfill public\.t in chunks of 5000 on id, 2 lanes: UPDATE t SET a = 1/);
    expect(p.lock).toMatch(/ROW EXCLUSIVE/);
    expect(p.online).toBe(true);
    // a composite key reads as in every other message, not as an array's default text ("tenant_id,id")
    const composite = backfill.describe({ ...step, key: ['tenant_id', 'id'] }, { id: 'fill', table: 'public.t', rollbackWindowMs: 0 });
    expect(composite.forward).toMatch(/ on \(tenant_id, id\), 2 lanes: /);
  });
});
