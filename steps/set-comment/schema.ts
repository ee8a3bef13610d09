import { z } from 'zod';
import { stepSchema, identifier } from '../../core/common/fields';

export const COMMENT_TARGETS = ['table', 'column', 'index', 'constraint'] as const;

export const setCommentStep = stepSchema('setComment', {
  on: z.enum(COMMENT_TARGETS, { errorMap: () => ({ message: `on must be one of ${COMMENT_TARGETS.join(', ')}` }) }),
  /** The column, index or constraint; not for on: table. */
  name: identifier('name').optional(),
  /** The new comment; null removes it. */
  comment: z.string({ required_error: 'comment is required (null removes the comment)' }).max(10_000).nullable(),
});
export type SetCommentStep = z.infer<typeof setCommentStep>;
