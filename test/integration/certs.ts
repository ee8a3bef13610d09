import { spawnSync } from 'node:child_process';

/** Runs openssl (in `cwd`, given), and throws with its stderr when it fails. */
export function openssl(cwd: string | undefined, ...args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8', cwd });
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
}

/** A self-signed certificate valid for a day and its unencrypted RSA key: a test CA, or a server's own. */
export function selfSigned(cwd: string | undefined, subject: string, keyOut: string, certOut: string, extra: string[] = []): void {
  openssl(
    cwd,
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    subject,
    ...extra,
    '-keyout',
    keyOut,
    '-out',
    certOut,
  );
}
