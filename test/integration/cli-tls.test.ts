import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { pool, dir, taskQueue, useStack, unique, makeCounterTable, env } from './harness';
import { openssl as runOpenssl, selfSigned } from './certs';
import { runCli, cliEnv, writeSpec, counterBackfill } from './cli-harness';

jest.setTimeout(120_000);

/**
 * Temporal behind mTLS, as on a real cluster: a TLS-terminating proxy in
 * front of the dev server that demands a client certificate signed by its CA.
 * The CLI must get there with --tls-cert/--tls-key/--tls-ca or their variables.
 */
let proxy: tls.Server;
let tlsAddress: string;
const file = (name: string) => path.join(dir, name);

const openssl = (...args: string[]) => runOpenssl(dir, ...args);

/** A key and a certificate signed by the test CA. */
function issue(name: string, cn: string, ext: string): void {
  fs.writeFileSync(file(`${name}.ext`), `${ext}\n`);
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '1',
    '-out',
    `${name}.crt`,
    '-extfile',
    `${name}.ext`,
  );
}

useStack({ worker: true, dir: 'stagefill-cli-tls', queue: 'tlsq' });

beforeAll(async () => {
  selfSigned(dir, '/CN=stagefill test CA', 'ca.key', 'ca.crt');
  issue('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
  issue('client', 'stagefill-cli', 'extendedKeyUsage=clientAuth');
  const [host, port] = env().address.split(':');
  proxy = tls.createServer(
    {
      key: fs.readFileSync(file('server.key')),
      cert: fs.readFileSync(file('server.crt')),
      ca: fs.readFileSync(file('ca.crt')),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (client) => {
      const upstream = net.connect(Number(port), host);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    },
  );
  proxy.on('tlsClientError', () => {}); // a client without a certificate is refused; that is the point
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  tlsAddress = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => proxy.close(r));
});

test('with the TLS flags the CLI reaches a Temporal that demands a client certificate; without them it cannot', async () => {
  const base = cliEnv(taskQueue, { TEMPORAL_ADDRESS: tlsAddress });
  const flags = ['--tls-cert', file('client.crt'), '--tls-key', file('client.key'), '--tls-ca', file('ca.crt')];

  const listed = await runCli(['list', '--json', ...flags], base);
  expect(listed.code).toBe(0);
  expect(Array.isArray(JSON.parse(listed.stdout))).toBe(true);

  // the variables do the same as the flags: a whole run through the mTLS front door
  const table = await makeCounterTable(pool, unique('t'), 1_000);
  const viaEnv = { ...base, TEMPORAL_TLS_CERT: file('client.crt'), TEMPORAL_TLS_KEY: file('client.key'), TEMPORAL_TLS_CA: file('ca.crt') };
  const start = await runCli(['start', writeSpec(dir, counterBackfill(table)), '--wait'], viaEnv);
  expect(start.code).toBe(0);
  expect(start.stdout).toMatch(/: completed \(COMPLETED\)/);

  // only the CA: TLS, but no client certificate, and the server hangs up
  const noCert = await runCli(['list', '--tls-ca', file('ca.crt')], base);
  expect(noCert.code).toBe(1);
  expect(noCert.stderr).toContain(`cannot reach Temporal at ${tlsAddress}`);
  // a key without its certificate is a configuration mistake, named as such
  const half = await runCli(['list', '--tls-key', file('client.key'), '--tls-ca', file('ca.crt')], base);
  expect(half.code).toBe(2);
  expect(half.stderr).toContain('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together');
});
