import net from 'node:net';

/**
 * A loopback TCP proxy between the workers and PostgreSQL, so the campaign can do to their connections what a bad
 * network does: stall them (bytes held both ways, then let through) or drop them (both ends reset).
 */
export interface TcpProxy {
  port: number;
  /** Holds every byte both ways (new connections too) for `ms`; returns how many connections were open. */
  stall(ms: number): Promise<number>;
  /** Destroys every open connection; returns how many. */
  drop(): number;
  close(): Promise<void>;
}

interface Pair {
  down: net.Socket;
  up: net.Socket;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let held: (() => void)[] | undefined;
  // forwards through the gate: while stalled, chunks wait in order and go once the stall ends
  const forward = (from: net.Socket, to: net.Socket) =>
    from.on('data', (d) => {
      if (held) held.push(() => to.write(d));
      else to.write(d);
    });
  const server = net.createServer((down) => {
    const up = net.connect(targetPort, '127.0.0.1');
    const pair = { down, up };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      down.destroy();
      up.destroy();
    };
    forward(down, up);
    forward(up, down);
    for (const s of [down, up]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    async stall(ms) {
      const open = pairs.size;
      held ??= [];
      await new Promise((r) => setTimeout(r, ms));
      const queued = held;
      held = undefined;
      for (const send of queued) send();
      return open;
    },
    drop() {
      const open = pairs.size;
      for (const p of [...pairs]) {
        p.down.resetAndDestroy();
        p.up.resetAndDestroy();
      }
      pairs.clear();
      return open;
    },
    async close() {
      for (const p of pairs) {
        p.down.destroy();
        p.up.destroy();
      }
      await new Promise((r) => server.close(r));
    },
  };
}
