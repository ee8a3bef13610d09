import http from 'node:http';

/**
 * The workers' webhook receiver: answers 200 at once, or (while a fault says so) slowly, past the notifier's
 * timeout, or with 500. A notification is the run's business only as far as it must never hold the run up.
 */
export type WebhookMode = 'ok' | 'slow' | 'failing';

export interface WebhookReceiver {
  url: string;
  mode: WebhookMode;
  /** Bodies answered 200, by their id (retries of one event share it). */
  delivered: Map<string, number>;
  /** Requests answered slowly or with 500. */
  refused: number;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const receiver: WebhookReceiver = { url: '', mode: 'ok', delivered: new Map(), refused: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const mode = receiver.mode;
      switch (mode) {
        case 'ok': {
          const id = (JSON.parse(body || '{}') as { id?: string }).id ?? '?';
          receiver.delivered.set(id, (receiver.delivered.get(id) ?? 0) + 1);
          res.writeHead(200).end('ok');
          return;
        }
        case 'slow':
          receiver.refused++;
          // longer than the notifier's 5 s timeout: the attempt fails on the worker's side
          setTimeout(() => res.writeHead(200).end('late'), 8000);
          return;
        case 'failing':
          receiver.refused++;
          res.writeHead(500).end('down');
          return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  receiver.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  receiver.close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return receiver;
}
