/**
 * The shapes of an alterColumn's duplication, defined once: every object of
 * one column as the catalog lists it (db/rollout/column-objects.ts reads it), and the
 * plan of actions that carries them over to the new column (core/rollout/alter-column/duplicate.ts
 * makes it, db/rollout/duplicate.ts runs each statement). Types only: db/ imports
 * them with `import type`.
 */

export interface CheckObject {
  name: string;
  /** pg_get_constraintdef: `CHECK ((qty >= 0))`, `NOT VALID` appended when not validated. */
  definition: string;
  /** The columns of this table it reads. */
  columns: string[];
  isValid: boolean;
}

export interface UniqueObject {
  name: string;
  kind: 'unique' | 'primaryKey';
  columns: string[];
  /** The index behind it and its definition from `USING` on (`USING btree (a, b)`). */
  index: string;
  indexTail: string;
  deferrable: boolean;
  deferred: boolean;
  definition: string;
}

export interface IndexObject {
  name: string;
  isUnique: boolean;
  /** False for the leftover of a failed CREATE INDEX CONCURRENTLY. */
  isValid: boolean;
  /** Key, INCLUDE and expression/predicate columns of this table it reads. */
  columns: string[];
  /** pg_get_indexdef from `USING` on: method, keys, INCLUDE, WITH, WHERE. */
  indexTail: string;
  definition: string;
}

export interface ForeignKeyObject {
  name: string;
  /** The referencing table (schema.table, unquoted like every table stagefill keeps) and its columns. */
  table: string;
  columns: string[];
  /** The referenced table (schema.table) and its columns. */
  refTable: string;
  refColumns: string[];
  /** What follows `REFERENCES t(cols)`: MATCH, ON DELETE/UPDATE, DEFERRABLE. */
  tail: string;
  definition: string;
  isValid: boolean;
  /** The referencing columns' types, in `columns` order (read for the keys referencing a column). */
  columnTypes?: string[];
}

export interface ColumnObjects {
  table: string;
  column: string;
  exists: boolean;
  type: string;
  notNull: boolean;
  default: string | null;
  /** 'a' (ALWAYS) or 'd' (BY DEFAULT) for an identity column. */
  identity: 'a' | 'd' | null;
  /** The identity's sequence or the sequence a serial column owns (schema.name). */
  sequence: string | null;
  comment: string | null;
  privileges: { grantee: string; privilege: string; isGrantable: boolean }[];
  checks: CheckObject[];
  uniques: UniqueObject[];
  /** Indexes that do not back a constraint: plain, unique, partial, expression. */
  indexes: IndexObject[];
  /** Foreign keys of this table over the column. */
  foreignKeys: ForeignKeyObject[];
  /** Foreign keys of other tables (or this one) that reference the column. */
  referencedBy: ForeignKeyObject[];
  /** Other constraint kinds (exclusion, ...) over the column: stagefill does not carry them. */
  other: { name: string; kind: string; definition: string }[];
  /** Views that read the column, outside stagefill's own version schemas (schema.name). */
  views: string[];
}

export type Phase = 'expand' | 'afterBackfill' | 'contract' | 'afterContract';

/** One statement of a duplication, as db/rollout/duplicate.ts runs it. */
export type DuplicationStatement =
  | { op: 'addCheck'; table: string; name: string; expression: string }
  | { op: 'addNotNullCheck'; table: string; name: string; column: string }
  | { op: 'validate'; table: string; name: string }
  | { op: 'addForeignKey'; table: string; name: string; columns: string[]; refTable: string; refColumns: string[]; tail: string }
  | { op: 'dropConstraint'; table: string; name: string }
  | { op: 'dropHelperCheck'; table: string; name: string }
  | { op: 'createIndex'; table: string; name: string; isUnique: boolean; tail: string }
  | { op: 'checkDefault'; table: string; expression: string; type: string }
  | { op: 'setDefault'; table: string; column: string; expression: string }
  | { op: 'comment'; table: string; column: string; text: string }
  | { op: 'grant'; table: string; column: string; privilege: string; grantee: string; isGrantable: boolean }
  | { op: 'ownSequence'; sequence: string; table: string; column: string; asType?: string }
  | { op: 'addIdentity'; table: string; column: string; always: boolean; fromSequence: string }
  | { op: 'renameIdentitySequence'; table: string; column: string; to: string }
  | { op: 'setNotNull'; table: string; column: string }
  | { op: 'renameConstraint'; table: string; from: string; to: string }
  | { op: 'renameIndex'; table: string; from: string; to: string }
  | { op: 'attachUnique'; table: string; name: string; index: string; isPrimaryKey: boolean; deferrable: boolean; deferred: boolean };

/** One thing to do; `object` says which original it carries over, `fix` what to do when it cannot. */
export type DuplicationAction = { phase: Phase; object: string; fix?: string } & DuplicationStatement;

export interface DuplicationProblem {
  object: string;
  message: string;
}

export interface DuplicationPlan {
  table: string;
  oldColumn: string;
  newColumn: string;
  /** The name the new column has after contract. */
  finalName: string;
  actions: DuplicationAction[];
  /** Objects that cannot follow: the step must stop before any data moves. */
  problems: DuplicationProblem[];
  /** What each original becomes: its counterpart's name before contract and after. */
  counterparts: { object: string; kind: string; original: string; counterpart: string; final: string }[];
  /** What later steps of the rollout set on the new column, kept by contract (absent: none). */
  later?: LaterChanges;
}

/**
 * What later steps of the rollout set on the new column on purpose
 * (core/rollout/columns.ts `laterChangesOf`): the intended state, which contract keeps
 * instead of the old column's. `step` is the step's id.
 */
export interface LaterChanges {
  /** setDefault (the expression) or dropDefault (null): contract sets this, not the old column's default. */
  default?: { step: string; value: string | null };
  /** setComment on the column: the new column keeps it; the old comment is not required. */
  comment?: { step: string; value: string | null };
  /** setNotNull (true) or dropNotNull (false): false carries no NOT NULL over. */
  notNull?: { step: string; value: boolean };
}

/** A column another alterColumn of the same rollout changes (a parent's key): a foreign key to it follows to its new column. */
export interface AlteredColumn {
  table: string;
  column: string;
  newColumn: string;
}
