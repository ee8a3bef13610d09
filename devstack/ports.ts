import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** A port free on 127.0.0.1 right now (the OS picks; tiny race accepted for a dev stack). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export function isPortOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/** True when this process could listen on 127.0.0.1:port now (nothing else holds it). */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** The three ports of a dev stack. */
export interface DevPorts {
  temporal: number;
  ui: number;
  postgres: number;
}

/** Temporal's own dev-server ports, and a PostgreSQL port away from a system server's 5432. */
export const DEFAULT_DEV_PORTS: DevPorts = { temporal: 7233, ui: 8233, postgres: 55432 };

const PORT_VARS: Record<keyof DevPorts, string> = {
  temporal: 'STAGEFILL_DEV_TEMPORAL_PORT',
  ui: 'STAGEFILL_DEV_UI_PORT',
  postgres: 'STAGEFILL_DEV_POSTGRES_PORT',
};

/** The ports `stagefill dev` prefers: flags, then STAGEFILL_DEV_*_PORT, then 7233 / 8233 / 55432. */
export function preferredDevPorts(
  flags: Partial<Record<keyof DevPorts, number | string>> = {},
  env: NodeJS.ProcessEnv = process.env,
): DevPorts {
  const out = { ...DEFAULT_DEV_PORTS };
  for (const key of Object.keys(PORT_VARS) as (keyof DevPorts)[]) {
    const raw = flags[key] ?? env[PORT_VARS[key]];
    if (raw === undefined || raw === '') continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      const where = flags[key] !== undefined ? `--${key}-port` : PORT_VARS[key];
      throw new Error(`${where}: expected a port number (1-65535), got "${raw}"`);
    }
    out[key] = n;
  }
  return out;
}

const LABELS: Record<keyof DevPorts, string> = { temporal: 'Temporal frontend', ui: 'Temporal Web UI', postgres: 'PostgreSQL' };

/** The ports the stack used last time, kept in its state dir (ports.json). */
export function readLastPorts(stateDir: string): Partial<DevPorts> {
  try {
    const raw = JSON.parse(fs.readFileSync(path.join(stateDir, 'ports.json'), 'utf8')) as Partial<DevPorts>;
    const out: Partial<DevPorts> = {};
    for (const key of Object.keys(LABELS) as (keyof DevPorts)[]) if (Number.isInteger(raw[key])) out[key] = raw[key];
    return out;
  } catch {
    return {};
  }
}

export function writeLastPorts(stateDir: string, ports: Partial<DevPorts>): void {
  fs.writeFileSync(path.join(stateDir, 'ports.json'), JSON.stringify(ports, null, 2) + '\n');
}

/**
 * The preferred port when free; else the one used last time, so a restart
 * comes back on the same address; else a free one. Says which when it is not
 * the preferred port.
 */
export async function choosePort(
  key: keyof DevPorts,
  preferred: number,
  last: number | undefined,
  log: (msg: string) => void,
  taken: Set<number> = new Set(),
): Promise<number> {
  // our own last port may still be held for a moment by the previous stack's servers, stopping after a crash
  const usable = async (p: number, waitMs: number) => {
    if (taken.has(p)) return false;
    for (const until = Date.now() + waitMs; ; await new Promise((r) => setTimeout(r, 250))) {
      if (await isPortFree(p)) return true;
      if (Date.now() >= until) return false;
    }
  };
  if (await usable(preferred, last === preferred ? 10_000 : 0)) return preferred;
  if (last !== undefined && last !== preferred && (await usable(last, 10_000))) {
    log(`${LABELS[key]}: port ${preferred} is taken; using ${last}, as last time`);
    return last;
  }
  let port = await freePort();
  while (taken.has(port)) port = await freePort();
  const tried = last !== undefined && last !== preferred ? `ports ${preferred} and ${last} (last time) are` : `port ${preferred} is`;
  log(`${LABELS[key]}: ${tried} taken; using the free port ${port}`);
  return port;
}
