import type { PlacedStep } from '../../core/rollout/columns';
import {
  columnMapAt,
  resolveColumn,
  resolveExpression,
  newVersionRow,
  checkSql,
  physicalColumnsOf,
  resolveLogicalNames,
  laterChangesOf,
  PlaceholderError,
} from '../../core/rollout/columns';
import { rewriteColumnRefs, referencedNames } from '../../core/rollout/sql-rewrite';
import type { RolloutStep } from '../../steps/spec';
import { at as item } from '../at';

const T = 'public.orders';
const at = (id: string, step: Record<string, unknown>, table = T): PlacedStep => ({ id, table, step: step as unknown as RolloutStep });

const steps: PlacedStep[] = [
  at('type', { kind: 'alterColumn', column: 'qty', newType: 'bigint', up: 'qty', down: 'qty::int' }),
  at('rename', { kind: 'alterColumn', column: 'code', newName: 'sku', up: 'code', down: 'sku' }),
  at('nn', { kind: 'setNotNull', column: 'qty' }),
  at('check', { kind: 'addCheck', name: 'qty_positive', expression: 'qty >= 0' }),
  at('other', { kind: 'setNotNull', column: 'qty' }, 'public.other'),
  at('contract', { kind: 'contract' }),
  at('after', { kind: 'setNotNull', column: 'qty' }),
];

describe('logical column names', () => {
  test.each([
    ['before the alterColumn, qty is the column qty', 0, T, 'qty', 'qty'],
    ['after an alterColumn to a new type, qty is the new column', 2, T, 'qty', 'qty_stagefill_new'],
    ['after a rename code -> sku, sku is the new column sku', 2, T, 'sku', 'sku'],
    ['after a rename, code still names the legacy column', 2, T, 'code', 'code'],
    ['another table is untouched', 4, 'public.other', 'qty', 'qty'],
    ['after contract, names are physical again (renamed back)', 6, T, 'qty', 'qty'],
  ] as const)('%s', (_what, index, table, name, physical) => {
    expect(resolveColumn(columnMapAt(steps, index, table), name)).toBe(physical);
  });

  test('an addCheck after alterColumn of qty checks the new column', () => {
    const map = columnMapAt(steps, 3, T);
    expect(resolveExpression(map, 'qty >= 0')).toBe('qty_stagefill_new >= 0');
    expect(resolveExpression(map, "QTY >= 0 AND note <> 'qty'")).toBe("qty_stagefill_new >= 0 AND note <> 'qty'");
    expect(resolveExpression(map, 'abs(qty) < 10 AND o.qty > 0')).toBe('abs(qty_stagefill_new) < 10 AND o.qty_stagefill_new > 0');
    // a quoted "Qty" is another column; a function called qty stays a function
    expect(resolveExpression(map, '"Qty" > 0 AND qty(1) > 0')).toBe('"Qty" > 0 AND qty(1) > 0');
  });

  test('the new version row: replaced columns hidden, new ones under their logical names', () => {
    expect(
      newVersionRow(['id', 'qty', 'code', 'note', 'qty_stagefill_new', 'sku'], [{ column: 'qty' }, { column: 'code', newName: 'sku' }]),
    ).toEqual([
      { source: 'id', as: 'id' },
      { source: 'qty_stagefill_new', as: 'qty' },
      { source: 'sku', as: 'sku' },
      { source: 'note', as: 'note' },
    ]);
  });

  test('old(c) and new(c) in checks read both sides without internal names', () => {
    const map = columnMapAt(steps, 2, T);
    expect(checkSql('SELECT count(*) FROM orders WHERE new(qty) <> old(qty)', map)).toBe(
      'SELECT count(*) FROM orders WHERE qty_stagefill_new <> qty',
    );
    expect(checkSql('SELECT count(*) FROM orders o WHERE new(o.sku) IS DISTINCT FROM old( o.code )', map)).toBe(
      'SELECT count(*) FROM orders o WHERE o.sku IS DISTINCT FROM o.code',
    );
    expect(checkSql('SELECT count(*) FROM orders WHERE old(sku) IS NULL', map)).toBe('SELECT count(*) FROM orders WHERE code IS NULL');
    // a column nothing replaced: both sides are the column itself; strings are left alone
    expect(checkSql("SELECT count(*) FROM orders WHERE new(status) = 'new(qty)'", map)).toBe(
      "SELECT count(*) FROM orders WHERE status = 'new(qty)'",
    );
    expect(() => checkSql('SELECT new(qty + 1) FROM orders', map)).toThrow(PlaceholderError);
  });

  test('mixed case: a quoted logical name resolves to a quoted physical one', () => {
    const mixed = [
      at('a', { kind: 'alterColumn', column: 'Amount', newType: 'numeric', up: '"Amount"', down: '"Amount"::int' }),
      at('b', { kind: 'addCheck', name: 'c', expression: '"Amount" > 0' }),
    ];
    const map = columnMapAt(mixed, 1, T);
    expect(resolveColumn(map, 'Amount')).toBe('Amount_stagefill_new');
    expect(resolveExpression(map, '"Amount" > 0 AND amount > 0')).toBe('"Amount_stagefill_new" > 0 AND amount > 0');
    expect(checkSql('SELECT count(*) FROM t WHERE new("Amount") IS NULL', map)).toBe(
      'SELECT count(*) FROM t WHERE "Amount_stagefill_new" IS NULL',
    );
  });

  test('plan shows the physical column of each step that names one', () => {
    expect(physicalColumnsOf(steps)).toEqual([
      { id: 'type', column: 'qty', physical: 'qty' },
      { id: 'rename', column: 'code', physical: 'code' },
      { id: 'nn', column: 'qty', physical: 'qty_stagefill_new', alteredBy: 'type' },
      { id: 'check', column: 'qty', physical: 'qty_stagefill_new', alteredBy: 'type' },
      { id: 'other', column: 'qty', physical: 'qty' },
      { id: 'after', column: 'qty', physical: 'qty' },
    ]);
  });
});

describe('column references in SQL text', () => {
  test.each([
    ['CHECK ((qty >= 0))', 'CHECK ((qty_new >= 0))'],
    ['CHECK (((qty > 0) AND (qty < amount)))', 'CHECK (((qty_new > 0) AND (qty_new < amount)))'],
    ["CHECK ((note <> 'qty'::text))", "CHECK ((note <> 'qty'::text))"],
    ['CHECK ((x::qty IS NULL))', 'CHECK ((x::qty IS NULL))'],
    ['lower(qty::text) -- qty\n', 'lower(qty_new::text) -- qty\n'],
    ['$$qty$$ || qty', '$$qty$$ || qty_new'],
    ["E'it\\'s qty' || qty", "E'it\\'s qty' || qty_new"],
    ['public.qty.x', 'public.qty.x'],
  ])('%s', (from, to) => expect(rewriteColumnRefs(from, { qty: 'qty_new' })).toBe(to));

  test('a new name that needs quotes gets them', () => {
    expect(rewriteColumnRefs('("Qty" > 0)', { Qty: 'Qty_new' })).toBe('("Qty_new" > 0)');
    expect(rewriteColumnRefs('(qty > 0)', { qty: 'order' })).toBe('("order" > 0)');
  });

  test('the names an expression reads', () => {
    expect([...referencedNames('lower("Code") || qty::text || f(x)')].sort()).toEqual(['Code', 'qty', 'x']);
  });
});

describe('a spec with logical names resolved', () => {
  const spec = {
    table: 'orders',
    steps: [
      { kind: 'alterColumn', column: 'qty', newType: 'bigint', up: 'qty', down: 'qty::int' },
      { kind: 'setNotNull', column: 'qty' },
      { kind: 'addCheck', name: 'qty_nonneg', expression: 'qty >= 0' },
      {
        kind: 'gate',
        checks: [{ name: 'same', sql: 'SELECT count(*) FROM orders WHERE new(qty) IS DISTINCT FROM old(qty)', expect: { eq: 0 } }],
      },
      { kind: 'setNotNull', column: 'qty', table: 'other' },
      { kind: 'contract' },
      { kind: 'addCheck', name: 'after', expression: 'qty < 100' },
    ],
  };
  const q = (t: string) => (t.includes('.') ? t : `public.${t}`);

  test('later steps naming qty mean the new column until contract', () => {
    const r = resolveLogicalNames(spec, q);
    expect(
      r.steps.map((s) =>
        'column' in s ? s.column : 'expression' in s ? s.expression : 'checks' in s && s.checks ? item(s.checks, 0).sql : s.kind,
      ),
    ).toEqual([
      'qty',
      'qty_stagefill_new',
      'qty_stagefill_new >= 0',
      'SELECT count(*) FROM orders WHERE qty_stagefill_new IS DISTINCT FROM qty',
      'qty',
      'contract',
      'qty < 100',
    ]);
  });

  test('idempotent, and a spec with nothing to resolve is returned as it is', () => {
    const once = resolveLogicalNames(spec, q);
    expect(resolveLogicalNames(once, q)).toBe(once);
    const plain = { table: 't', steps: [{ kind: 'setNotNull', column: 'a' }] };
    expect(resolveLogicalNames(plain, q)).toBe(plain);
  });
});

describe('every column-taking kind resolves the column the same way', () => {
  const q = (t: string) => (t.includes('.') ? t : `public.${t}`);
  const spec = {
    table: 'orders',
    steps: [
      { kind: 'alterColumn', column: 'qty', newType: 'bigint', up: 'qty', down: 'qty::int' },
      { kind: 'addUnique', columns: ['customer', 'qty'] },
      { kind: 'addForeignKey', columns: ['qty'], references: { table: 'sizes', columns: ['n'] } },
      { kind: 'setDefault', column: 'qty', default: '42' },
      { kind: 'dropDefault', column: 'qty' },
      { kind: 'setComment', on: 'column', name: 'qty', comment: 'in tens' },
      { kind: 'setComment', on: 'table', comment: 'orders' },
      { kind: 'createIndex', columns: ['qty'], include: ['qty'], expressions: ['qty * 2'], where: 'qty > 1' },
      { kind: 'dropNotNull', column: 'qty' },
    ],
  };

  test('each acts on the new column; names derived from the columns keep the logical name', () => {
    const r = resolveLogicalNames(spec, q).steps as Record<string, unknown>[];
    expect(r[1]).toMatchObject({ columns: ['customer', 'qty_stagefill_new'], name: 'orders_customer_qty_key' });
    expect(r[2]).toMatchObject({ columns: ['qty_stagefill_new'], name: 'orders_qty_fkey', references: { columns: ['n'] } });
    expect(r[3]).toMatchObject({ column: 'qty_stagefill_new' });
    expect(r[4]).toMatchObject({ column: 'qty_stagefill_new' });
    expect(r[5]).toMatchObject({ name: 'qty_stagefill_new' });
    expect(r[6]).toBe(spec.steps[6]);
    expect(r[7]).toMatchObject({
      columns: ['qty_stagefill_new'],
      include: ['qty_stagefill_new'],
      expressions: ['qty_stagefill_new * 2'],
      where: 'qty_stagefill_new > 1',
    });
    expect(item(r, 7).name).toMatch(/^orders_qty_expr_/);
    expect(r[8]).toMatchObject({ column: 'qty_stagefill_new' });
    const once = resolveLogicalNames(spec, q);
    expect(resolveLogicalNames(once, q)).toBe(once);
  });

  test('plan shows the physical column of each, and what later steps set on the new column', () => {
    const resolved = resolveLogicalNames(spec, q);
    const placed = resolved.steps.map((step, i) => at(String(i), step as Record<string, unknown>));
    const shown = physicalColumnsOf(placed).filter((c) => c.alteredBy);
    expect([...new Set(shown.map((c) => c.id))]).toEqual(['1', '2', '3', '4', '5', '7', '8']);
    expect(shown.every((c) => c.column === 'qty' && c.physical === 'qty_stagefill_new' && c.alteredBy === '0')).toBe(true);
    expect(laterChangesOf(placed, 0, T, 'qty_stagefill_new')).toEqual({
      default: { step: '4', value: null },
      comment: { step: '5', value: 'in tens' },
      notNull: { step: '8', value: false },
    });
  });
});

describe("an addForeignKey's referenced columns resolve over the referenced table's names", () => {
  const q = (t: string) => (t.includes('.') ? t : `public.${t}`);
  const spec = {
    table: 'orders',
    steps: [
      { id: 'alter', kind: 'alterColumn', column: 'qty', newType: 'bigint', up: 'qty', down: 'qty::int' },
      { id: 'rename', kind: 'alterColumn', column: 'code', newName: 'sku', up: 'code', down: 'sku' },
      { id: 'fk', kind: 'addForeignKey', table: 'items', columns: ['order_qty'], references: { table: 'orders', columns: ['qty'] } },
      { id: 'fk2', kind: 'addForeignKey', table: 'items', columns: ['sku'], references: { table: 'public.orders', columns: ['sku'] } },
      { id: 'self', kind: 'addForeignKey', columns: ['qty'], references: { table: 'orders', columns: ['qty'] } },
      { id: 'other', kind: 'addForeignKey', table: 'items', columns: ['qty'], references: { table: 'sizes', columns: ['qty'] } },
      { id: 'contract', kind: 'contract' },
      { id: 'after', kind: 'addForeignKey', table: 'items', columns: ['order_qty'], references: { table: 'orders', columns: ['qty'] } },
    ],
  };

  test('to the new column until contract; the key keeps the name from its own columns; idempotent', () => {
    const r = resolveLogicalNames(spec, q).steps as Record<string, unknown>[];
    expect(r[2]).toMatchObject({ columns: ['order_qty'], references: { table: 'orders', columns: ['qty_stagefill_new'] } });
    expect(item(r, 2).name).toBeUndefined();
    expect(r[3]).toMatchObject({ references: { table: 'public.orders', columns: ['sku'] } });
    expect(r[4]).toMatchObject({
      columns: ['qty_stagefill_new'],
      name: 'orders_qty_fkey',
      references: { columns: ['qty_stagefill_new'] },
    });
    expect(r[5]).toBe(spec.steps[5]);
    expect(r[7]).toBe(spec.steps[7]);
    const once = resolveLogicalNames(spec, q);
    expect(resolveLogicalNames(once, q)).toBe(once);
  });

  test('plan shows the referenced physical column with its table', () => {
    const placed = spec.steps.map((s) => at(s.id, s, q(s.table ?? spec.table)));
    const fk = physicalColumnsOf(placed).filter((c) => c.id === 'fk');
    expect(fk).toEqual([
      { id: 'fk', column: 'order_qty', physical: 'order_qty' },
      { id: 'fk', column: 'qty', physical: 'qty_stagefill_new', alteredBy: 'alter', table: T },
    ]);
    expect(physicalColumnsOf(placed).filter((c) => c.id === 'after' && c.table)).toEqual([
      { id: 'after', column: 'qty', physical: 'qty', table: T },
    ]);
  });
});
