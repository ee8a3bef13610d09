import type { CatalogSnapshot } from '../../db/rollout/catalog';
import { compareCatalogs } from '../../db/rollout/catalog';
import { at } from '../at';

const base: CatalogSnapshot = {
  table: 'public.orders',
  exists: true,
  columns: [{ name: 'id', type: 'bigint', notNull: true, default: null, identity: null, generated: null }],
  constraints: [{ name: 'orders_pkey', def: 'PRIMARY KEY (id)' }],
  indexes: [{ name: 'orders_pkey', def: 'CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (id)' }],
  comments: [{ name: 'column id', def: 'the key' }],
  triggers: [],
  views: [],
  viewSchemas: [],
};

describe('compareCatalogs: comments and index validity count', () => {
  test('equal snapshots: no difference', () => expect(compareCatalogs(base, structuredClone(base))).toEqual([]));
  test.each([
    [
      'a changed comment',
      { comments: [{ name: 'column id', def: 'changed' }] },
      'public.orders: comment on column id changed: the key -> changed',
    ],
    ['a removed comment', { comments: [] }, 'public.orders: comment on column id removed (was the key)'],
    [
      'an added comment',
      { comments: [...base.comments!, { name: 'table', def: 'orders' }] },
      'public.orders: comment on table added (orders)',
    ],
    [
      'an index left INVALID',
      { indexes: [{ name: 'orders_pkey', def: `${at(base.indexes, 0).def} INVALID` }] },
      'public.orders: index orders_pkey changed',
    ],
  ])('%s is a difference', (_what, patch, line) => expect(compareCatalogs(base, { ...base, ...patch }).join('\n')).toContain(line));
  test('a snapshot taken before comments were recorded compares the rest', () => {
    const { comments: _, ...old } = base;
    expect(compareCatalogs(old as CatalogSnapshot, { ...base, comments: [{ name: 'table', def: 'x' }] })).toEqual([]);
  });
});
