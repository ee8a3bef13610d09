import { parseRolloutSpec } from '../../steps/spec';
import { normalizeGraph } from '../../steps/graph';
import { qualifiedName } from '../../core/common/table-name';
import type { ColumnObjects } from '../../core/rollout/alter-column/duplication-types';
import { noColumnObjects } from '../../db/rollout/column-objects';
import { alterColumnPreview, formatColumnChangePlan } from '../../client/contract-plan';
import { duplicationOf, type DuplicationRef } from '../../steps/alter-column/duplicate';
import { contractActions } from '../../core/rollout/alter-column/duplicate';
import type { StepContext } from '../../steps/types';
import type { AlterColumnStep } from '../../steps/alter-column/schema';
import { at } from '../at';
import { present } from '../../core/common/checked';

/**
 * `stagefill plan`'s preview of contract and contract itself call one planner
 * (core/rollout/alter-column/plan-column-change.ts): fed the same catalog,
 * they plan the same actions, so plan cannot drift from apply.
 */

const spec = parseRolloutSpec({
  kind: 'rollout',
  name: 'same-plan',
  table: 'orders',
  steps: [
    { id: 'orders-id', kind: 'alterColumn', column: 'id', newType: 'bigint', up: 'id::bigint', down: 'id::int' },
    {
      id: 'items-order',
      kind: 'alterColumn',
      table: 'items',
      column: 'order_id',
      newType: 'bigint',
      up: 'order_id::bigint',
      down: 'order_id::int',
    },
    { id: 'qty', kind: 'alterColumn', column: 'qty', newType: 'bigint', newName: 'quantity', up: 'qty * 10', down: '(quantity / 10)::int' },
    { id: 'qty-default', kind: 'setDefault', column: 'quantity', default: '10' },
    { id: 'qty-comment', kind: 'setComment', on: 'column', name: 'quantity', comment: 'in tens' },
    { id: 'ok', kind: 'approval' },
    { id: 'contract-items', kind: 'contract', table: 'items' },
    { id: 'contract-orders', kind: 'contract', dependsOn: ['contract-items'] },
  ],
});
const graph = normalizeGraph(spec.steps, qualifiedName(spec.table));
/** The rollout's steps as the worker hands them to a step (StepContext.allSteps) and as plan places them. */
const allSteps = spec.steps.map((step, i) => ({
  id: at(graph, i).id,
  table: qualifiedName(at(graph, i).table),
  step,
})) as StepContext['allSteps'];

const O = 'public.orders';
const I = 'public.items';
const catalog: Record<string, ColumnObjects> = {
  'orders-id': {
    ...noColumnObjects(O, 'id'),
    exists: true,
    type: 'integer',
    notNull: true,
    default: "nextval('orders_id_seq'::regclass)",
    sequence: 'public.orders_id_seq',
    uniques: [
      {
        name: 'orders_pkey',
        kind: 'primaryKey',
        columns: ['id'],
        index: 'orders_pkey',
        indexTail: 'USING btree (id)',
        deferrable: false,
        deferred: false,
        definition: 'PRIMARY KEY (id)',
      },
    ],
    referencedBy: [
      {
        name: 'items_order_fk',
        table: I,
        columns: ['order_id'],
        refTable: O,
        refColumns: ['id'],
        tail: 'ON DELETE CASCADE',
        definition: '',
        isValid: true,
        columnTypes: ['integer'],
      },
    ],
  },
  'items-order': {
    ...noColumnObjects(I, 'order_id'),
    exists: true,
    type: 'integer',
    notNull: true,
    foreignKeys: [
      {
        name: 'items_order_fk',
        table: I,
        columns: ['order_id'],
        refTable: O,
        refColumns: ['id'],
        tail: 'ON DELETE CASCADE',
        definition: '',
        isValid: true,
      },
    ],
    indexes: [
      {
        name: 'items_order_idx',
        isUnique: false,
        isValid: true,
        columns: ['order_id'],
        indexTail: 'USING btree (order_id)',
        definition: '',
      },
    ],
  },
  qty: {
    ...noColumnObjects(O, 'qty'),
    exists: true,
    type: 'integer',
    notNull: true,
    default: '1',
    comment: 'how many',
    checks: [{ name: 'qty_positive', definition: 'CHECK ((qty > 0))', columns: ['qty'], isValid: true }],
  },
};

/** Contract's side: the plan its prepare, release and complete run (steps/alter-column/apply.ts). */
function contractPlan(stepId: string) {
  const s = allSteps.find((x) => x.id === stepId)!;
  const r: DuplicationRef = { db: undefined as never, stepId, table: s.table, step: s.step as AlterColumnStep, allSteps };
  return duplicationOf(r, present(catalog[stepId], stepId));
}

test.each(Object.keys(catalog))('alterColumn %s: plan and contract plan the same actions from the same catalog', (stepId) => {
  const apply = contractPlan(stepId);
  const preview = alterColumnPreview(allSteps, stepId, present(catalog[stepId], stepId));
  expect(preview.duplication).toEqual(apply);
  expect(contractActions(preview.duplication!)).toEqual(contractActions(apply));
  // the plan is not empty: something carries over, so the comparison means something
  expect(apply.actions.filter((a) => a.phase === 'contract').length).toBeGreaterThan(0);
});

test("what the rollout asks for shows in both: a child's key follows to the parent's new column, a later default and comment win", () => {
  const items = contractPlan('items-order');
  expect(items.actions.find((a) => a.op === 'addForeignKey')).toMatchObject({ phase: 'afterBackfill', refColumns: ['id_stagefill_new'] });
  const qty = contractPlan('qty');
  expect(qty.actions.find((a) => a.op === 'setDefault')).toMatchObject({ column: 'quantity', expression: '10' });
  expect(qty.later).toEqual({ default: { step: 'qty-default', value: '10' }, comment: { step: 'qty-comment', value: 'in tens' } });
  const shown = formatColumnChangePlan({
    physicalColumns: [],
    tables: [alterColumnPreview(allSteps, 'qty', present(catalog.qty, 'qty'))],
  });
  expect(shown).toContain('contract of public.orders.qty (step qty):');
  expect(shown).toContain('setDefault DEFAULT set by step qty-default');
});
