/**
 * Custom search attributes stagefill keeps current on every workflow, so the
 * Temporal UI can list and filter runs (`StagefillState = "held"`). The dev
 * server registers them at start; on a real cluster run, once per namespace:
 *   temporal operator search-attribute create --name StagefillKind --type Keyword
 * (and the same for each entry below).
 */
export const SEARCH_ATTRIBUTES = {
  StagefillKind: 'Keyword',
  StagefillTables: 'KeywordList',
  StagefillState: 'Keyword',
  StagefillStep: 'Keyword',
  StagefillName: 'Keyword',
  /** The fleet a target's workflows belong to (`StagefillFleet = "orders-cents"` lists a fleet's children). */
  StagefillFleet: 'Keyword',
} as const;

export type SearchAttributeName = keyof typeof SEARCH_ATTRIBUTES;

/** Typed keys for the workflow side and for the client's `list` filters. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SA = {
  kind: defineSearchAttributeKey('StagefillKind', SearchAttributeType.KEYWORD),
  tables: defineSearchAttributeKey('StagefillTables', SearchAttributeType.KEYWORD_LIST),
  state: defineSearchAttributeKey('StagefillState', SearchAttributeType.KEYWORD),
  step: defineSearchAttributeKey('StagefillStep', SearchAttributeType.KEYWORD),
  name: defineSearchAttributeKey('StagefillName', SearchAttributeType.KEYWORD),
  fleet: defineSearchAttributeKey('StagefillFleet', SearchAttributeType.KEYWORD),
};

/** What every run starts with, so the UI can list and filter it before its first step. */
export function initialSearchAttributes(kind: 'backfill' | 'rollout', tables: string[], name: string) {
  return [
    { key: SA.kind, value: kind },
    { key: SA.tables, value: tables },
    { key: SA.state, value: 'starting' },
    { key: SA.name, value: name },
  ];
}
