import { z } from 'zod';
import { stepSchema, identifier, sqlType, expression, tableName } from '../../core/common/fields';

const referentialAction = z.enum(['NO ACTION', 'RESTRICT', 'CASCADE', 'SET NULL', 'SET DEFAULT'], {
  errorMap: () => ({ message: 'must be one of NO ACTION, RESTRICT, CASCADE, SET NULL, SET DEFAULT' }),
});

export const tableColumn = z
  .object({
    name: identifier('columns[].name'),
    type: sqlType,
    notNull: z.boolean().default(false),
    /** A SQL expression, as in DEFAULT (...). */
    default: expression('columns[].default').optional(),
    references: z
      .object({
        table: tableName,
        column: identifier('columns[].references.column'),
        onDelete: referentialAction.optional(),
        onUpdate: referentialAction.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const columnList = (what: string) => z.array(identifier(`${what}[]`)).min(1, `${what} needs at least one column`);

export const createTableStep = stepSchema('createTable', {
  columns: z.array(tableColumn).min(1, 'columns needs at least one column'),
  primaryKey: columnList('primaryKey').optional(),
  unique: z.array(z.object({ name: identifier('unique[].name').optional(), columns: columnList('unique[].columns') }).strict()).optional(),
  checks: z
    .array(z.object({ name: identifier('checks[].name').optional(), expression: expression('checks[].expression') }).strict())
    .optional(),
  indexes: z
    .array(
      z
        .object({
          name: identifier('indexes[].name').optional(),
          columns: columnList('indexes[].columns'),
          unique: z.boolean().default(false),
          method: z.enum(['btree', 'hash', 'gin', 'gist', 'brin']).default('btree'),
        })
        .strict(),
    )
    .optional(),
  /**
   * false (default): a revert drops the table only while it holds no rows,
   * since stagefill cannot tell whose they are. true: the rollout itself fills
   * the table (a backfill copying into it), so its rows are stagefill's and go
   * with it; the shape must still be what stagefill created either way.
   */
  revertDropsRows: z.boolean().default(false),
});
export type CreateTableStep = z.infer<typeof createTableStep>;
