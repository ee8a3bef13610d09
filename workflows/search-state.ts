import { upsertSearchAttributes } from '@temporalio/workflow';
import { SA } from './search-attributes';

/** Keeps the UI's columns current: state always, the rest when given. */
export function setSearchState(state: string, extra: { kind?: string; tables?: string[]; name?: string; step?: string } = {}): void {
  const updates: Parameters<typeof upsertSearchAttributes>[0] = [{ key: SA.state, value: state }];
  if (extra.kind) updates.push({ key: SA.kind, value: extra.kind });
  if (extra.tables) updates.push({ key: SA.tables, value: extra.tables });
  if (extra.name) updates.push({ key: SA.name, value: extra.name });
  if (extra.step !== undefined) updates.push({ key: SA.step, value: extra.step });
  upsertSearchAttributes(updates);
}
