import { setComment } from './plan';
import { parseRolloutSpec } from '../spec';

const parse = (step: object) =>
  parseRolloutSpec({ kind: 'rollout', name: 'r', table: 'orders', steps: [{ kind: 'setComment', ...step }] }).steps[0];

describe('setComment', () => {
  test('plan: names the object; the recorded comment comes back on revert', () => {
    const ctx = { id: 'c', table: 'public.orders', rollbackWindowMs: 0 };
    expect(setComment.describe({ kind: 'setComment', on: 'column', name: 'amount', comment: 'euros' }, ctx).forward).toBe(
      'record the comment on column amount, then set it to "euros"',
    );
    expect(setComment.describe({ kind: 'setComment', on: 'table', comment: null }, ctx).forward).toBe(
      'record the comment on table public.orders, then remove it',
    );
    expect(setComment.describe({ kind: 'setComment', on: 'table', comment: null }, ctx).rollback).toBe(
      'the recorded comment back (or none)',
    );
  });
  test.each([
    [{ on: 'column', comment: 'x' }, 'steps.0.name: name is required with on: column'],
    [{ on: 'table', name: 'x', comment: 'x' }, 'steps.0.name: name is not used with on: table'],
    [{ on: 'view', name: 'x', comment: 'x' }, 'on must be one of table, column, index, constraint'],
    [{ on: 'table' }, 'steps.0.comment: comment is required'],
  ])('schema refuses %j', (step, message) => expect(() => parse(step)).toThrow(message));
  test('schema: null removes a comment', () => expect(parse({ on: 'index', name: 'i', comment: null })).toMatchObject({ comment: null }));
});
