import { createPool, ping } from '../../db/pool';
import { loadTargetsFile, TargetsFileError } from '../../worker/fleet/targets-file';
import { UsageError } from '../errors';

export interface TargetStatus {
  name: string;
  tags: Record<string, string>;
  answers: boolean;
  /** Why it does not answer. */
  error?: string;
}

/** The targets file the CLI was given (--targets or STAGEFILL_TARGETS); a missing or bad file is a usage error (exit 2). */
export function targetsOfFile(targetsFile: string | undefined): ReturnType<typeof loadTargetsFile> {
  if (!targetsFile) throw new UsageError('--targets: not set; pass the targets file the workers read (or set STAGEFILL_TARGETS)');
  try {
    return loadTargetsFile(targetsFile);
  } catch (err) {
    if (err instanceof TargetsFileError) throw new UsageError(err.message);
    throw err;
  }
}

/** `stagefill targets`: every target of the targets file the workers read, and whether its database answers (a few at a time). */
export async function listTargets(targetsFile: string | undefined): Promise<TargetStatus[]> {
  const targets = targetsOfFile(targetsFile);
  const out: TargetStatus[] = [];
  const queue = [...targets];
  const probe = async () => {
    for (let t = queue.shift(); t; t = queue.shift()) {
      const pool = createPool({ url: t.url, max: 1, applicationName: 'stagefill-targets' });
      try {
        await ping(pool);
        out.push({ name: t.name, tags: t.tags, answers: true });
      } catch (err) {
        out.push({ name: t.name, tags: t.tags, answers: false, error: (err as Error).message });
      } finally {
        await pool.end().catch(() => {});
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, targets.length) }, probe));
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

export function formatTargets(list: TargetStatus[]): string {
  if (!list.length) return 'no targets in the file';
  return list
    .map((t) => {
      const tags = Object.entries(t.tags)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      return `${t.name}\t${tags || '-'}\t${t.answers ? 'answers' : `does not answer: ${t.error}`}`;
    })
    .join('\n');
}
