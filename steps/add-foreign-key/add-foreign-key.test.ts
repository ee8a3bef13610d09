import { addForeignKey } from './plan';
import { parseRolloutSpec } from '../spec';

const parse = (step: object) =>
  parseRolloutSpec({ kind: 'rollout', name: 'r', table: 'orders', steps: [{ kind: 'addForeignKey', ...step }] }).steps[0];

describe('addForeignKey', () => {
  test('plan: NOT VALID, then VALIDATE in its own transaction; actions and MATCH spelled out; the referencing index per spec', () => {
    const step = parse({
      columns: ['customer_id'],
      references: { table: 'customers', columns: ['id'] },
      onDelete: 'cascade',
      referencingIndex: 'create',
    });
    const p = addForeignKey.describe(step as never, { id: 'fk', table: 'public.orders', rollbackWindowMs: 0 });
    expect(p.forward).toMatch(
      /^ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY \(customer_id\) REFERENCES customers \(id\) MATCH SIMPLE ON DELETE CASCADE ON UPDATE NO ACTION NOT VALID, then VALIDATE CONSTRAINT in its own transaction; CREATE INDEX CONCURRENTLY orders_customer_id_idx/,
    );
    expect(p.rollback).toBe(
      'DROP CONSTRAINT orders_customer_id_fkey; DROP INDEX CONCURRENTLY orders_customer_id_idx if this step built it',
    );
    expect(p.lock).toMatch(/^SHARE ROW EXCLUSIVE on both tables/);
    expect(p.online).toBe(true);
  });
  test('schema: defaults (no action, simple, warn)', () => {
    expect(parse({ columns: ['a'], references: { table: 'p', columns: ['id'] } })).toMatchObject({
      onDelete: 'no action',
      onUpdate: 'no action',
      match: 'simple',
      referencingIndex: 'warn',
    });
  });
  test.each([
    [
      { columns: ['a', 'b'], references: { table: 'p', columns: ['id'] } },
      'steps.0.references.columns: references.columns has 1 column(s) but columns has 2',
    ],
    [
      { columns: ['a'], references: { table: 'p', columns: ['id'] }, onDelete: 'nuke' },
      'onDelete must be one of no action, restrict, cascade, set null, set default',
    ],
    [{ columns: ['a'], references: { table: 'p', columns: ['id'] }, match: 'partial' }, 'match must be simple or full'],
    [
      { columns: ['a'], references: { table: 'p', columns: ['id'] }, referencingIndex: 'maybe' },
      'referencingIndex must be warn, create or ignore',
    ],
    [{ columns: ['a'] }, 'steps.0.references'],
  ])('schema refuses %j', (step, message) => expect(() => parse(step)).toThrow(message));
});
