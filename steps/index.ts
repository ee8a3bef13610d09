import type { z } from 'zod';
import type { StepKindModule, StepSchema, StepRole } from './types';
import type { GateCheck } from '../core/common/fields';
import { addColumn } from './add-column/plan';
import { alterColumn } from './alter-column/plan';
import { setNotNull } from './set-not-null/plan';
import { addCheck } from './add-check/plan';
import { sql } from './sql/plan';
import { backfill } from './backfill/plan';
import { gate } from './gate/plan';
import { expose } from './expose/plan';
import { soak } from './soak/plan';
import { approval } from './approval/plan';
import { contract } from './contract/plan';
import { createIndex } from './create-index/plan';
import { dropIndex } from './drop-index/plan';
import { addUnique } from './add-unique/plan';
import { addForeignKey } from './add-foreign-key/plan';
import { setDefault } from './set-default/plan';
import { dropDefault } from './drop-default/plan';
import { dropNotNull } from './drop-not-null/plan';
import { dropConstraint } from './drop-constraint/plan';
import { renameConstraint } from './rename-constraint/plan';
import { setComment } from './set-comment/plan';
import { createTable } from './create-table/plan';
import { dropColumn } from './drop-column/plan';
import { dropTable } from './drop-table/plan';
import { renameTable } from './rename-table/plan';
import type { ShapeChange } from '../core/rollout/views';

/**
 * The registry: every rollout step kind, the one list of kinds. Pure (schema,
 * plan, role): spec/, plan/ and the workflow read it. The activity side of
 * each kind is registered in steps/actions.ts, typed against this list.
 * Adding a kind: a folder under steps/, one entry here and one there
 * (docs/ARCHITECTURE.md, "How to add a step kind").
 */
export const STEP_MODULES = [
  addColumn,
  alterColumn,
  setNotNull,
  addCheck,
  createIndex,
  dropIndex,
  addUnique,
  addForeignKey,
  setDefault,
  dropDefault,
  dropNotNull,
  dropConstraint,
  renameConstraint,
  setComment,
  createTable,
  dropColumn,
  dropTable,
  renameTable,
  sql,
  backfill,
  gate,
  expose,
  soak,
  approval,
  contract,
] as const;

type Modules = typeof STEP_MODULES;
export type StepKind = Modules[number]['kind'];
// a generic mapped type, so the tuple stays a tuple (zod's discriminatedUnion wants one)
type SchemasOf<T extends readonly unknown[]> = { -readonly [I in keyof T]: T[I] extends { schema: infer S } ? S : never };
type Schemas = SchemasOf<Modules>;

export const STEP_KINDS = STEP_MODULES.map<StepKind>((m) => m.kind);
/** The options of the rollout step union, in registry order. */
export const STEP_SCHEMAS = STEP_MODULES.map((m) => m.schema) as unknown as Schemas;

/** Any step of any kind, as the union of the schemas infers it. */
export type AnyStep = z.infer<Schemas[number]>;
// eslint-style widening: a module of some kind, its step type seen as any step
type AnyModule = StepKindModule<StepSchema>;

const BY_KIND = new Map<string, AnyModule>(STEP_MODULES.map((m) => [m.kind, m as unknown as AnyModule]));

export function isStepKind(kind: string): kind is StepKind {
  return BY_KIND.has(kind);
}

/** The module of a kind; throws for a kind the registry does not know (a spec parsed by a newer stagefill). */
export function stepModule(kind: string): AnyModule {
  const m = BY_KIND.get(kind);
  if (!m) throw new Error(`unknown step kind "${kind}"; this stagefill knows ${STEP_KINDS.join(', ')}`);
  return m;
}

export function roleOf(kind: string): StepRole {
  return stepModule(kind).role;
}

/** The checks a step runs (gates and soaks), for baselines taken at the rollout start. */
export function stepChecks(step: { kind: string }): GateCheck[] {
  const m = stepModule(step.kind);
  if (m.role === 'gate') return m.gate(step).checks;
  if (m.role === 'soak') return m.soak(step).checks;
  return [];
}

/** What a step does to the columns each version sees (for expose). */
export function stepShape(step: { kind: string }): ShapeChange {
  return stepModule(step.kind).shape?.(step) ?? {};
}

export type { StepKindModule, StepRole } from './types';
