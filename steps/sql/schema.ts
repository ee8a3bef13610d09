import { z } from 'zod';
import { stepSchema, query } from '../../core/common/fields';

export const sqlStep = stepSchema('sql', {
  /** Run when the step applies. Optional for a step that only has `onContract`. */
  apply: z.string().min(1, 'apply is empty').optional(),
  /** Undoes `apply`; required with it. */
  revert: z.string().min(1, 'revert is empty: a sql step must say how to undo it').optional(),
  /**
   * false: `apply` and `revert` run outside a transaction (CREATE INDEX
   * CONCURRENTLY, ALTER TYPE ... ADD VALUE, VACUUM), each one statement,
   * guarded by `check`.
   */
  transaction: z.boolean().optional(),
  /** With transaction: false, a query returning true once `apply` has taken effect: a retry runs `apply` only while it is false, `revert` only while it is true. */
  check: query('check').optional(),
  /** Run at contract (the rollout's completion, irreversible), in the contract step's transaction, when the rollout's contract step on this step's table applies. */
  onContract: z.string().min(1, 'onContract is empty').optional(),
});
export type SqlStep = z.infer<typeof sqlStep>;
