import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { which } from './process';

/**
 * A tool the tests need from the system (pgbouncer, chromium): found on PATH or
 * at the given paths; when missing, installed with Debian's package if apt-get
 * is there and we are root (as the temporal CLI is installed on first use).
 * `why` says what is missing and how to get it when neither works.
 */
export function findOrInstall(opts: { names: string[]; paths: string[]; aptPackage: string; install?: boolean }): {
  bin?: string;
  why?: string;
} {
  const found = () => opts.names.map((n) => which(n)).find(Boolean) ?? opts.paths.find((p) => fs.existsSync(p));
  let bin = found();
  if (bin) return { bin };
  const hint = `install it (Debian: apt-get install ${opts.aptPackage})`;
  if (opts.install === false) return { why: `${opts.aptPackage} is not installed; ${hint}` };
  const apt = which('apt-get');
  if (!apt || process.getuid?.() !== 0)
    return { why: `${opts.aptPackage} is not installed and cannot be here (${apt ? 'not root' : 'no apt-get'}); ${hint}` };
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync(apt, ['install', '-y', '-q', opts.aptPackage], { encoding: 'utf8', env });
  if (r.status !== 0) {
    spawnSync(apt, ['update', '-q'], { encoding: 'utf8', env });
    r = spawnSync(apt, ['install', '-y', '-q', opts.aptPackage], { encoding: 'utf8', env });
  }
  bin = found();
  return bin
    ? { bin }
    : { why: `apt-get install ${opts.aptPackage} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}` };
}

/** Debian's chromium for playwright-core (no browser download): $CHROMIUM, the package's paths, or apt. */
export function resolveChromium(install = true): { bin?: string; why?: string } {
  if (process.env.CHROMIUM)
    return fs.existsSync(process.env.CHROMIUM) ? { bin: process.env.CHROMIUM } : { why: `CHROMIUM=${process.env.CHROMIUM} does not exist` };
  return findOrInstall({ names: [], paths: ['/usr/lib/chromium/chromium', '/usr/bin/chromium'], aptPackage: 'chromium', install });
}
