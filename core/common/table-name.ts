/**
 * The one table-name normaliser: a table as users write it in specs and flags
 * (`orders`, `public.orders`), as stored and compared (`public.orders`). Pure
 * and unquoted; db/identifiers.ts quotes for SQL.
 */
export interface TableRef {
  schema: string;
  name: string;
}

/** `orders` is `public.orders`; the first dot separates schema and name. */
export function parseTable(table: string): TableRef {
  const dot = table.indexOf('.');
  return dot < 0 ? { schema: 'public', name: table } : { schema: table.slice(0, dot), name: table.slice(dot + 1) };
}

/** The canonical `schema.name` of a table, for ids, search attributes, audit rows and comparisons. */
export function qualifiedName(table: string | TableRef): string {
  const t = typeof table === 'string' ? parseTable(table) : table;
  return `${t.schema}.${t.name}`;
}
