import { planDuplication } from '../../core/rollout/alter-column/duplicate';
import { sequenceType } from '../../core/rollout/alter-column/duplicate-column';
import type { ColumnObjects } from '../../core/rollout/alter-column/duplication-types';
import { noColumnObjects } from '../../db/rollout/column-objects';
import { checkContract, formatContractCheck } from '../../core/rollout/alter-column/contract-check';

/** A primary key widened from int to bigint: what its sequence or identity becomes. */

const T = 'public.orders';
const base: ColumnObjects = {
  ...noColumnObjects(T, 'id'),
  exists: true,
  type: 'integer',
  notNull: true,
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
      table: 'public.order_items',
      columns: ['order_id'],
      refTable: T,
      refColumns: ['id'],
      tail: '',
      definition: '',
      isValid: true,
    },
  ],
};
const serial: ColumnObjects = { ...base, default: "nextval('orders_id_seq'::regclass)", sequence: 'public.orders_id_seq' };

test('sequence types: the integer types map to their sequence type, others to none', () => {
  expect(['int', 'INTEGER', 'int4', 'bigint', 'int8', 'smallint', 'uuid', 'numeric'].map(sequenceType)).toEqual([
    'integer',
    'integer',
    'integer',
    'bigint',
    'bigint',
    'smallint',
    null,
    null,
  ]);
});

test('a serial key widened to bigint: its sequence is handed over AS bigint; kept as it is when the type stays', () => {
  const own = (newType?: string) => planDuplication(serial, 'id_stagefill_new', { newType }).actions.find((a) => a.op === 'ownSequence');
  expect(own('bigint')).toMatchObject({
    phase: 'contract',
    sequence: 'public.orders_id_seq',
    column: 'id_stagefill_new',
    asType: 'bigint',
  });
  expect(own(undefined)).not.toHaveProperty('asType');
  expect(own('int4')).not.toHaveProperty('asType');
});

test('an identity key: re-created on the new column, its sequence then renamed to the old one', () => {
  const plan = planDuplication({ ...base, identity: 'd', sequence: 'public.orders_id_seq' }, 'id_stagefill_new', { newType: 'bigint' });
  const ops = plan.actions.filter((a) => a.phase === 'contract').map((a) => a.op);
  expect(ops.indexOf('addIdentity')).toBeLessThan(ops.indexOf('renameIdentitySequence'));
  expect(plan.actions.find((a) => a.op === 'renameIdentitySequence')).toMatchObject({ column: 'id', to: 'public.orders_id_seq' });
});

test('plan text names the primary key attached USING INDEX, the sequence widened, the incoming key recreated', () => {
  const plan = planDuplication(serial, 'id_stagefill_new', { newType: 'bigint' });
  const now: ColumnObjects = {
    ...serial,
    column: 'id_stagefill_new',
    type: 'bigint',
    notNull: true,
    default: null,
    sequence: null,
    uniques: [],
    referencedBy: [],
    indexes: [
      {
        name: plan.counterparts.find((c) => c.kind === 'primaryKey')!.counterpart,
        isUnique: true,
        isValid: true,
        columns: ['id_stagefill_new'],
        indexTail: '',
        definition: '',
      },
    ],
  };
  const text = formatContractCheck(checkContract(serial, now, plan));
  expect(text).toMatch(/attach +PRIMARY KEY orders_pkey: ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_pkey_sfdup_/);
  expect(text).toContain('OWNED BY public.orders.id, AS bigint');
  expect(text).toMatch(/recreate FOREIGN KEY items_order_fk of public.order_items/);
});

test('an identity key to a type no identity can have stops the step before any data moves, naming the fix', () => {
  const plan = planDuplication({ ...base, identity: 'a', sequence: 'public.orders_id_seq' }, 'id_stagefill_new', { newType: 'uuid' });
  expect(plan.problems.map((p) => p.message).join('\n')).toMatch(
    /public.orders.id is an identity column and uuid cannot be one .* \(DROP IDENTITY\)/,
  );
  expect(plan.actions.some((a) => a.op === 'addIdentity')).toBe(false);
});

test("a child's foreign key to a key the rollout also changes: made over both new columns after the parent's index, NOT VALID then validated", () => {
  const child: ColumnObjects = {
    ...base,
    table: 'public.order_items',
    column: 'order_id',
    uniques: [],
    referencedBy: [],
    foreignKeys: [
      {
        name: 'items_order_fk',
        table: 'public.order_items',
        columns: ['order_id'],
        refTable: T,
        refColumns: ['id'],
        tail: 'ON DELETE CASCADE',
        definition: '',
        isValid: true,
      },
    ],
  };
  const altered = [{ table: T, column: 'id', newColumn: 'id_stagefill_new' }];
  const fk = (p: ReturnType<typeof planDuplication>) =>
    p.actions
      .filter((a) => a.object === 'FOREIGN KEY items_order_fk')
      .map((a) => `${a.phase} ${a.op}${a.op === 'addForeignKey' ? ` ${a.columns.join(',')} -> ${a.refColumns.join(',')}` : ''}`);
  expect(fk(planDuplication(child, 'order_id_stagefill_new', { newType: 'uuid', altered }))).toEqual([
    'afterBackfill addForeignKey order_id_stagefill_new -> id_stagefill_new',
    'afterBackfill validate',
    'contract renameConstraint',
  ]);
  // a key to a column nothing else changes is made at expand, as before
  expect(fk(planDuplication(child, 'order_id_stagefill_new', { newType: 'bigint' }))).toEqual([
    'expand addForeignKey order_id_stagefill_new -> id',
    'afterBackfill validate',
    'contract renameConstraint',
  ]);
});
