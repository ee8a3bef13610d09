import { createTable } from './plan';
import { createTableStep } from './schema';
import { createTableStatements } from './sql';
import { parseRolloutSpec } from '../spec';

const ctx = { id: 'ct', table: 'public.refunds', rollbackWindowMs: 0 };
const raw = {
  kind: 'createTable',
  columns: [
    { name: 'id', type: 'bigint', notNull: true },
    { name: 'order_id', type: 'bigint', notNull: true, references: { table: 'public.orders', column: 'id', onDelete: 'CASCADE' } },
    { name: 'amount', type: 'numeric(12,2)', default: '0' },
    { name: 'reason', type: 'text' },
  ],
  primaryKey: ['id'],
  unique: [{ name: 'refunds_order_reason_key', columns: ['order_id', 'reason'] }],
  checks: [{ name: 'refunds_amount_positive', expression: 'amount >= 0' }],
  indexes: [{ columns: ['reason'], method: 'hash' }],
};
const spec = (step: object) => ({ kind: 'rollout', name: 'r', table: 'public.refunds', steps: [step] });

describe('createTable', () => {
  const step = createTableStep.parse(raw);

  test('plan: what it creates, a revert that drops only what stagefill made, the referenced table locked an instant', () => {
    const p = createTable.describe(step, ctx);
    expect(p.forward).toBe(
      'create table public.refunds: 4 columns (id, order_id, amount, reason), PRIMARY KEY (id), 1 UNIQUE, 1 CHECK, 1 index; its catalog is recorded right after',
    );
    expect(p.rollback).toBe(
      'drop public.refunds if it is still what stagefill created and holds no rows; otherwise hold the rollback and say why',
    );
    expect(p.lock).toMatch(/^none on existing tables but SHARE ROW EXCLUSIVE on public\.orders \(foreign key, instant\)/);
    expect(p.online).toBe(true);
    expect(createTable.describe({ ...step, revertDropsRows: true }, ctx).rollback).not.toMatch(/no rows/);
  });

  test('sql: every identifier quoted, constraints named, the index after the table', () => {
    expect(createTableStatements('public.refunds', step)).toEqual([
      `CREATE TABLE "public"."refunds" (
  "id" bigint NOT NULL,
  "order_id" bigint NOT NULL REFERENCES "public"."orders" ("id") ON DELETE CASCADE,
  "amount" numeric(12,2) DEFAULT (0),
  "reason" text,
  PRIMARY KEY ("id"),
  CONSTRAINT "refunds_order_reason_key" UNIQUE ("order_id", "reason"),
  CONSTRAINT "refunds_amount_positive" CHECK (amount >= 0)
)`,
      'CREATE INDEX ON "public"."refunds" USING hash ("reason")',
    ]);
  });

  test.each([
    [{ columns: [] }, 'columns needs at least one column'],
    [
      {
        columns: [
          { name: 'a', type: 'int' },
          { name: 'a', type: 'int' },
        ],
      },
      'steps.0.columns.1.name: column a is listed twice',
    ],
    [{ primaryKey: ['nope'] }, "steps.0.primaryKey.0: nope is not one of the table's columns"],
    [{ unique: [{ columns: ['x'] }] }, 'steps.0.unique.0.columns.0: x is not one of'],
    [{ indexes: [{ columns: ['id'], method: 'bitmap' }] }, 'steps.0.indexes.0.method'],
    [{ columns: [{ name: 'a', type: 'int; drop table x' }] }, 'steps.0.columns.0.type'],
    [{ columns: [{ name: 'a', type: 'int', default: '1; drop table x' }] }, 'steps.0.columns.0.default'],
    [
      { columns: [{ name: 'a', type: 'int', references: { table: 'o', column: 'id', onDelete: 'EXPLODE' } }] },
      'steps.0.columns.0.references.onDelete',
    ],
    [{ surprise: 1 }, 'unknown field "surprise"'],
  ])('schema refuses %j (%s)', (patch, where) => {
    expect(() => parseRolloutSpec(spec({ ...raw, ...patch }))).toThrow(where);
  });

  test('schema: defaults', () => {
    const s = createTableStep.parse({ kind: 'createTable', columns: [{ name: 'a', type: 'int' }], indexes: [{ columns: ['a'] }] });
    expect(s.columns[0]?.notNull).toBe(false);
    expect(s.indexes![0]).toEqual({ columns: ['a'], unique: false, method: 'btree' });
    expect(s.revertDropsRows).toBe(false);
  });
});
