import { planDuplication, contractActions } from '../../core/rollout/alter-column/duplicate';
import { counterpartName, notNullHelperName } from '../../core/rollout/object-names';
import type { ColumnObjects, UniqueObject } from '../../core/rollout/alter-column/duplication-types';
import { noColumnObjects } from '../../db/rollout/column-objects';
import { checkContract, formatContractCheck } from '../../core/rollout/alter-column/contract-check';

const T = 'public.orders';
const base: ColumnObjects = { ...noColumnObjects(T, 'qty'), exists: true, type: 'integer' };
const col = (o: Partial<ColumnObjects>): ColumnObjects => ({ ...base, ...o });
/** A UNIQUE or PRIMARY KEY constraint over `columns`, backed by a btree index of its own name. */
const unique = (name: string, kind: UniqueObject['kind'], columns: string[], definition = ''): UniqueObject => ({
  name,
  kind,
  columns,
  index: name,
  indexTail: `USING btree (${columns.join(', ')})`,
  deferrable: false,
  deferred: false,
  definition,
});
const summary = (o: ColumnObjects, newType?: string, finalName?: string) =>
  planDuplication(o, 'qty_stagefill_new', { newType, finalName }).actions.map(
    (a) =>
      `${a.phase} ${a.op} ${'name' in a ? a.name : 'column' in a ? a.column : ''}${'expression' in a ? ` ${a.expression}` : ''}${'tail' in a ? ` ${a.tail}` : ''}`,
  );

describe('duplication plan: each object of the old column gets a counterpart over the new one', () => {
  const dup = (n: string) => counterpartName(T, n);
  test.each<[string, Partial<ColumnObjects>, string | undefined, string[]]>([
    [
      'NOT NULL: NOT VALID check, validated after the backfill, SET NOT NULL at contract, the helper then dropped',
      { notNull: true },
      undefined,
      [
        `expand addNotNullCheck ${notNullHelperName(T, 'qty_stagefill_new')}`,
        `afterBackfill validate ${notNullHelperName(T, 'qty_stagefill_new')}`,
        'contract setNotNull qty_stagefill_new',
        `contract dropHelperCheck ${notNullHelperName(T, 'qty_stagefill_new')}`,
      ],
    ],
    [
      'DEFAULT cast to the new type, checked at expand, set at contract',
      { default: '0' },
      'bigint',
      ['expand checkDefault  (0)::bigint', 'contract setDefault qty (0)::bigint'],
    ],
    [
      'DEFAULT kept as is when the type stays',
      { default: "'x'::text", type: 'text' },
      undefined,
      ["expand checkDefault  'x'::text", "contract setDefault qty 'x'::text"],
    ],
    [
      'a CHECK rewritten over the new column, other columns kept',
      { checks: [{ name: 'qty_cap', definition: 'CHECK ((qty <= cap))', columns: ['qty', 'cap'], isValid: true }] },
      'bigint',
      [
        `expand addCheck ${dup('qty_cap')} ((qty_stagefill_new <= cap))`,
        `afterBackfill validate ${dup('qty_cap')}`,
        `contract renameConstraint `,
      ],
    ],
    [
      'a NOT VALID CHECK stays unvalidated',
      { checks: [{ name: 'c', definition: 'CHECK ((qty > 0)) NOT VALID', columns: ['qty'], isValid: false }] },
      undefined,
      [`expand addCheck ${dup('c')} ((qty_stagefill_new > 0))`, 'contract renameConstraint '],
    ],
    [
      'a two-column UNIQUE: unique index built concurrently after the backfill, attached at contract',
      {
        uniques: [unique('customer_qty', 'unique', ['customer', 'qty'], 'UNIQUE (customer, qty)')],
      },
      'bigint',
      [`afterBackfill createIndex ${dup('customer_qty')} USING btree (customer, qty_stagefill_new)`, 'contract attachUnique customer_qty'],
    ],
    [
      'partial and expression indexes rebuilt concurrently, renamed at contract',
      {
        indexes: [
          {
            name: 'big',
            isUnique: false,
            isValid: true,
            columns: ['qty'],
            indexTail: 'USING btree (qty) WHERE (qty > 1000)',
            definition: '',
          },
          {
            name: 'twice',
            isUnique: false,
            isValid: true,
            columns: ['qty', 'customer'],
            indexTail: 'USING btree (((qty * 2)), customer)',
            definition: '',
          },
        ],
      },
      undefined,
      [
        `afterBackfill createIndex ${dup('big')} USING btree (qty_stagefill_new) WHERE (qty_stagefill_new > 1000)`,
        `afterBackfill createIndex ${dup('twice')} USING btree (((qty_stagefill_new * 2)), customer)`,
        'contract renameIndex ',
        'contract renameIndex ',
      ],
    ],
    [
      'an outgoing FK: NOT VALID at expand, validated after the backfill',
      {
        foreignKeys: [
          {
            name: 'qty_size',
            table: T,
            columns: ['qty'],
            refTable: 'public.sizes',
            refColumns: ['n'],
            tail: 'ON DELETE CASCADE',
            definition: '',
            isValid: true,
          },
        ],
      },
      'bigint',
      [
        `expand addForeignKey ${dup('qty_size')} ON DELETE CASCADE`,
        `afterBackfill validate ${dup('qty_size')}`,
        'contract renameConstraint ',
      ],
    ],
    [
      'an incoming FK: dropped and added again over the new column at contract, validated after',
      {
        uniques: [unique('u', 'unique', ['qty'])],
        referencedBy: [
          {
            name: 'child_qty',
            table: 'public.child',
            columns: ['qty_ref'],
            refTable: T,
            refColumns: ['qty'],
            tail: '',
            definition: '',
            isValid: true,
          },
        ],
      },
      undefined,
      [
        `afterBackfill createIndex ${dup('u')} USING btree (qty_stagefill_new)`,
        'contract dropConstraint child_qty',
        'contract attachUnique u',
        'contract addForeignKey child_qty ',
        'afterContract validate child_qty',
      ],
    ],
    [
      'identity: added at contract, continuing the old sequence',
      { identity: 'a', notNull: true, sequence: 'public.orders_qty_seq' },
      'bigint',
      [
        expect.stringContaining('expand addNotNullCheck'),
        expect.stringContaining('afterBackfill validate'),
        'contract setNotNull qty_stagefill_new',
        expect.stringContaining('contract dropHelperCheck'),
        'contract addIdentity qty_stagefill_new',
        'contract renameIdentitySequence qty',
      ],
    ],
    [
      'serial: the sequence handed over, its default set',
      { default: "nextval('orders_qty_seq'::regclass)", sequence: 'public.orders_qty_seq' },
      'bigint',
      [
        "expand checkDefault  nextval('orders_qty_seq'::regclass)",
        'contract ownSequence qty_stagefill_new',
        "contract setDefault qty nextval('orders_qty_seq'::regclass)",
      ],
    ],
    [
      'comment and column privileges at expand',
      { comment: 'how many', privileges: [{ grantee: 'PUBLIC', privilege: 'SELECT', isGrantable: false }] },
      undefined,
      ['expand comment qty_stagefill_new', 'expand grant qty_stagefill_new'],
    ],
  ])('%s', (_what, objects, newType, want) => {
    expect(summary(col(objects), newType)).toEqual(want);
  });

  test('contract: what must happen before the old column goes, and after', () => {
    const plan = planDuplication(
      col({
        notNull: true,
        identity: 'd',
        sequence: 's',
        default: null,
        referencedBy: [
          { name: 'fk', table: 'public.child', columns: ['x'], refTable: T, refColumns: ['qty'], tail: '', definition: '', isValid: true },
        ],
        uniques: [unique('u', 'primaryKey', ['qty'])],
      }),
      'qty_stagefill_new',
      {},
    );
    const { beforeDrop, afterDrop } = contractActions(plan);
    expect(beforeDrop.map((a) => a.op)).toEqual(['dropConstraint', 'setNotNull', 'dropHelperCheck', 'addIdentity']);
    expect(afterDrop.map((a) => a.op)).toEqual(['renameIdentitySequence', 'attachUnique', 'addForeignKey']);
  });

  test.each<[string, Partial<ColumnObjects>, RegExp]>([
    [
      'an exclusion constraint',
      { other: [{ name: 'no_overlap', kind: 'exclusion', definition: 'EXCLUDE USING gist (r WITH &&)' }] },
      /exclusion constraint no_overlap .* Drop it in a sql step before the alterColumn/,
    ],
    [
      'a view reading the column',
      { views: ['reports.order_sizes'] },
      /view reports.order_sizes reads public.orders.qty, so contract could not drop the old column/,
    ],
  ])('%s stops the step before any data moves, naming it and the fix', (_what, objects, message) => {
    const plan = planDuplication(col(objects), 'qty_stagefill_new', { newType: 'bigint' });
    expect(plan.problems.map((p) => p.message).join('\n')).toMatch(message);
  });

  test('each action that can fail names its object and the fix', () => {
    const plan = planDuplication(
      col({
        default: "'n/a'::text",
        type: 'text',
        checks: [{ name: 'shape', definition: "CHECK ((qty ~ '^[0-9]+$'::text))", columns: ['qty'], isValid: true }],
      }),
      'qty_stagefill_new',
      { newType: 'bigint' },
    );
    expect(plan.actions.find((a) => a.op === 'checkDefault')!.fix).toBe(
      "the default 'n/a'::text does not convert to bigint: drop the default in a sql step before the alterColumn (and set one that fits after contract)",
    );
    expect(plan.actions.find((a) => a.op === 'addCheck')!.fix).toMatch(
      /^CHECK shape CHECK .* does not hold over qty_stagefill_new as bigint: drop or rewrite the check/,
    );
  });
});

describe('contract check: nothing of the old column goes without its counterpart', () => {
  const old = col({
    notNull: true,
    checks: [{ name: 'pos', definition: 'CHECK ((qty >= 0))', columns: ['qty'], isValid: true }],
    uniques: [unique('u', 'unique', ['a', 'qty'], 'UNIQUE (a, qty)')],
    indexes: [
      {
        name: 'i',
        isUnique: false,
        isValid: true,
        columns: ['qty'],
        indexTail: 'USING btree (qty)',
        definition: 'CREATE INDEX i ON public.orders USING btree (qty)',
      },
    ],
    comment: 'c',
  });
  const plan = planDuplication(old, 'qty_stagefill_new', { newType: 'bigint' });
  const complete = col({
    column: 'qty_stagefill_new',
    type: 'bigint',
    checks: [
      { name: counterpartName(T, 'pos'), definition: 'CHECK ((qty_stagefill_new >= 0))', columns: ['qty_stagefill_new'], isValid: true },
      {
        name: notNullHelperName(T, 'qty_stagefill_new'),
        definition: 'CHECK ((qty_stagefill_new IS NOT NULL))',
        columns: ['qty_stagefill_new'],
        isValid: true,
      },
    ],
    indexes: [
      { name: counterpartName(T, 'u'), isUnique: true, isValid: true, columns: ['a', 'qty_stagefill_new'], indexTail: '', definition: 'x' },
      { name: counterpartName(T, 'i'), isUnique: false, isValid: true, columns: ['qty_stagefill_new'], indexTail: '', definition: 'y' },
    ],
    comment: 'c',
  });

  test('with every counterpart in place: safe, and every drop, rename and attach listed', () => {
    const c = checkContract(old, complete, plan);
    expect(c.missing).toEqual([]);
    expect(c.isSafe).toBe(true);
    expect(c.changes.map((x) => `${x.action} ${x.object}`)).toEqual([
      'drop column public.orders.qty',
      'rename column qty_stagefill_new',
      'set NOT NULL of public.orders.qty',
      'drop CHECK pos',
      `rename CHECK ${counterpartName(T, 'pos')}`,
      'drop UNIQUE u',
      'attach UNIQUE u',
      'drop index i',
      `rename index ${counterpartName(T, 'i')}`,
    ]);
    expect(formatContractCheck(c)).toContain(`attach   UNIQUE u: ADD CONSTRAINT u UNIQUE USING INDEX ${counterpartName(T, 'u')}`);
  });

  test.each<[string, (n: ColumnObjects) => ColumnObjects, RegExp]>([
    [
      'the two-column UNIQUE has no index over the new column',
      (n) => ({ ...n, indexes: n.indexes.filter((x) => !x.isUnique) }),
      /UNIQUE u: no unique index/,
    ],
    [
      'a concurrent build failed and left an INVALID index',
      (n) => ({ ...n, indexes: n.indexes.map((x) => ({ ...x, isValid: false })) }),
      /INVALID/,
    ],
    [
      'the CHECK counterpart is not validated',
      (n) => ({ ...n, checks: n.checks.map((x) => ({ ...x, isValid: !x.name.startsWith('pos') })) }),
      /CHECK pos: its counterpart .* is not validated/,
    ],
    [
      'NOT NULL has no helper check',
      (n) => ({ ...n, checks: n.checks.filter((x) => x.name.startsWith('pos')) }),
      /NOT NULL of public.orders.qty: qty_stagefill_new has neither NOT NULL nor its NOT NULL helper check/,
    ],
    ['the comment is missing', (n) => ({ ...n, comment: null }), /comment on public.orders.qty/],
  ])('refuses when %s', (_what, breakIt, why) => {
    const c = checkContract(old, breakIt(complete), plan);
    expect(c.isSafe).toBe(false);
    expect(formatContractCheck(c)).toMatch(why);
  });
});

describe('what later steps of the rollout set on the new column is kept', () => {
  const old = col({ notNull: true, default: '1', comment: 'how many' });
  const actionsOf = (later: Parameters<typeof planDuplication>[2]['later']) =>
    planDuplication(old, 'qty_stagefill_new', { newType: 'bigint', later }).actions.map(
      (a) => `${a.phase} ${a.op}${'expression' in a ? ` ${a.expression}` : ''}`,
    );

  test('a later setDefault is what contract sets, not the old default; a dropDefault leaves none', () => {
    expect(actionsOf({ default: { step: 's', value: '42' } })).toContain('contract setDefault 42');
    expect(actionsOf({ default: { step: 's', value: '42' } })).not.toContain('contract setDefault (1)::bigint');
    expect(actionsOf({ default: { step: 's', value: null } }).filter((a) => a.includes('Default'))).toEqual([]);
    expect(actionsOf({})).toContain('contract setDefault (1)::bigint');
  });

  test('a later dropNotNull carries no NOT NULL over (and drops a helper an older stagefill made)', () => {
    expect(actionsOf({ notNull: { step: 'd', value: false } }).filter((a) => /NotNull|validate|Helper/.test(a))).toEqual([
      'contract dropHelperCheck',
    ]);
  });

  test('contract does not hold for a comment a later step changed, nor for a NOT NULL it dropped', () => {
    const later = { comment: { step: 'c', value: 'in tens' }, notNull: { step: 'd', value: false } };
    const plan = planDuplication(old, 'qty_stagefill_new', { newType: 'bigint', later });
    const now = col({ column: 'qty_stagefill_new', type: 'bigint', comment: 'in tens' });
    const c = checkContract(old, now, plan);
    expect(c.missing).toEqual([]);
    expect(formatContractCheck(c)).toContain('keeps "in tens", as step c set it');
    expect(formatContractCheck(c)).toContain('stays nullable: step d dropped NOT NULL');
    // without the later step, the same catalog holds the contract
    expect(checkContract(old, now, planDuplication(old, 'qty_stagefill_new', { newType: 'bigint' })).isSafe).toBe(false);
  });
});
