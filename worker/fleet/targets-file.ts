import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { TARGET_NAME } from '../../core/fleet/ids';
import type { TargetConfig } from '../../activities/fleet/control';

/**
 * The targets file (STAGEFILL_TARGETS): every database a fleet worker serves,
 * by name, with its connection and free-form tags. Connection strings live
 * here, with the workers, never in a spec or a workflow's history.
 *
 *   tenant_1: { url: postgres://stagefill@db1:5432/tenant_1, tags: { env: prod, region: eu } }
 *   staging:  { urlEnv: STAGING_DATABASE_URL, tags: { env: staging } }
 */

const targetEntry = z
  .object({
    url: z.string().min(1).optional(),
    /** The name of an environment variable holding the URL (keeps passwords out of the file). */
    urlEnv: z.string().min(1).optional(),
    tags: z.record(z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
  })
  .strict()
  .refine((e) => Boolean(e.url) !== Boolean(e.urlEnv), { message: 'give url or urlEnv (exactly one)' });

export class TargetsFileError extends Error {}

/** Reads and validates the targets file; a problem names the file, the target and the field. */
export function loadTargetsFile(file: string, env: NodeJS.ProcessEnv = process.env): TargetConfig[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new TargetsFileError(`STAGEFILL_TARGETS: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let data: unknown;
  try {
    data = path.extname(file).toLowerCase() === '.json' ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new TargetsFileError(`${file}: not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!data || typeof data !== 'object' || Array.isArray(data))
    throw new TargetsFileError(`${file}: expected a map of target name -> { url, tags }`);
  const out: TargetConfig[] = [];
  for (const [name, raw] of Object.entries(data as Record<string, unknown>)) {
    if (!TARGET_NAME.test(name)) throw new TargetsFileError(`${file}: "${name}" is not a target name (letters, digits, _, . and -)`);
    const r = targetEntry.safeParse(raw);
    if (!r.success) {
      const i = r.error.issues[0];
      throw new TargetsFileError(`${file}: ${name}${i?.path.length ? `.${i.path.join('.')}` : ''}: ${i?.message ?? 'invalid'}`);
    }
    const url = r.data.url ?? env[r.data.urlEnv!];
    if (!url) throw new TargetsFileError(`${file}: ${name}.urlEnv: ${r.data.urlEnv} is not set in the environment`);
    out.push({ name, url, tags: r.data.tags });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
