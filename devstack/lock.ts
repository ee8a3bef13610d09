import fs from 'node:fs';
import path from 'node:path';

/** Another `stagefill dev` (or `demo`) runs its stack from this state dir: `stagefill dev` says so and exits 1. */
export class StackRunningError extends Error {}

interface Owner {
  pid: number;
  /** /proc/<pid>/stat's start time (Linux), so a recycled pid is not taken for the owner. */
  started?: string;
}

function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and parentheses: fields after the last ')' start at field 3
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function isAlive(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return owner.started === undefined || startTime(owner.pid) === undefined || startTime(owner.pid) === owner.started;
}

/**
 * One stack per state dir: its PostgreSQL cluster and Temporal history can
 * serve only one server each. Writes <stateDir>/dev.pid; a file left by a
 * stack that died (SIGKILL) names a process that is gone and is taken over.
 * Returns the release, which removes the file if it is still ours.
 */
export function lockStateDir(stateDir: string): () => void {
  const file = path.join(stateDir, 'dev.pid');
  const mine: Owner = { pid: process.pid, started: startTime(process.pid) };
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(mine) + '\n', { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    let owner: Owner | undefined;
    try {
      owner = JSON.parse(fs.readFileSync(file, 'utf8')) as Owner;
    } catch {
      owner = undefined; // unreadable or half written: treat as stale
    }
    if (owner && Number.isInteger(owner.pid) && owner.pid !== process.pid && isAlive(owner)) {
      const env = path.join(stateDir, 'dev.env');
      throw new StackRunningError(
        `a stack is already running from ${stateDir} (stagefill dev or demo, pid ${owner.pid}); ` +
          `use it (\`source ${env}\`) or stop it first (Ctrl-C in its shell, or \`kill ${owner.pid}\`); ` +
          'another stack at once needs its own --state-dir',
      );
    }
    fs.rmSync(file, { force: true });
  }
  return () => {
    try {
      const owner = JSON.parse(fs.readFileSync(file, 'utf8')) as Owner;
      if (owner.pid === process.pid) fs.rmSync(file, { force: true });
    } catch {
      // gone already
    }
  };
}
