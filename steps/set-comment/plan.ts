import type { StepKindModule } from '../types';
import { setCommentStep } from './schema';

export const setComment: StepKindModule<typeof setCommentStep> = {
  kind: 'setComment',
  schema: setCommentStep,
  role: 'schema',
  check: (step) => {
    if (step.on === 'table' && step.name !== undefined)
      return [{ path: ['name'], message: "name is not used with on: table (the comment is on the step's table); remove it" }];
    if (step.on !== 'table' && step.name === undefined)
      return [{ path: ['name'], message: `name is required with on: ${step.on}: which ${step.on}` }];
    return [];
  },
  describe: (step, ctx) => {
    const target = step.on === 'table' ? `table ${ctx.table}` : `${step.on} ${step.name}`;
    return {
      forward: `record the comment on ${target}, then ${step.comment === null ? 'remove it' : `set it to ${JSON.stringify(step.comment.length > 60 ? `${step.comment.slice(0, 57)}...` : step.comment)}`}`,
      rollback: 'the recorded comment back (or none)',
      lock: 'SHARE UPDATE EXCLUSIVE (catalog only, instant)',
      online: true,
    };
  },
};
