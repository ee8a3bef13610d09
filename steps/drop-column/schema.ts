import type { z } from 'zod';
import { stepSchema, identifier, expression } from '../../core/common/fields';

export const dropColumnStep = stepSchema('dropColumn', {
  column: identifier('column'),
  /**
   * The old column's value for a row inserted through the new version (whose
   * view no longer has the column), as an expression over the row; required
   * when the column is NOT NULL without a default.
   */
  down: expression('down').optional(),
});
export type DropColumnStep = z.infer<typeof dropColumnStep>;
