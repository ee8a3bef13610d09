import { gate } from './plan';
import { gateStep } from './schema';
import { ctx, checks } from '../../test/unit/gate-checks';

describe('gate: read-only checks, no lock', () => {
  test('gate', () => {
    const step = gateStep.parse({ kind: 'gate', checks });
    const p = gate.describe(step, ctx);
    expect(p.forward).toBe('check no-nulls = 0, rows unchanged; on failure: rollback');
    expect([p.lock, p.online]).toEqual(['none (read-only queries)', true]);
    if (gate.role !== 'gate') throw new Error('role');
    expect(gate.gate(step)).toEqual({ checks: step.checks, onFailure: 'rollback' });
  });
  test('a gate needs a check, each with exactly one of expect or unchanged', () => {
    expect(gateStep.safeParse({ kind: 'gate', checks: [] }).success).toBe(false);
    expect(gateStep.safeParse({ kind: 'gate', checks: [{ name: 'x', sql: 'select 1', expect: { eq: 1 }, unchanged: true }] }).success).toBe(
      false,
    );
  });
});
