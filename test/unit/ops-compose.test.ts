import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

const root = path.join(__dirname, '..', '..');
const compose = YAML.parse(fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')) as {
  services: Record<
    'postgres' | 'temporal' | 'stagefill',
    { environment?: Record<string, string>; healthcheck?: { test: string[] }; depends_on?: unknown }
  >;
};

// PostgreSQL's default search_path is "$user", public: a role named like stagefill's own schema would
// put every unqualified table a user creates (psql, pgbench -i) into that schema instead of public.
test("docker-compose.yml: the database role is not named like stagefill's schema, and every service uses that one role", () => {
  const pg = compose.services.postgres.environment!;
  const role = pg.POSTGRES_USER;
  expect(role).toBeTruthy();
  expect(role).not.toBe('stagefill');

  expect(compose.services.postgres.healthcheck!.test.join(' ')).toContain(`pg_isready -U ${role}`);
  expect(compose.services.temporal.environment!.POSTGRES_USER).toBe(role);
  expect(compose.services.temporal.environment!.POSTGRES_PWD).toBe(pg.POSTGRES_PASSWORD);

  const url = new URL(compose.services.stagefill.environment?.DATABASE_URL ?? 'stagefill has no DATABASE_URL');
  expect(decodeURIComponent(url.username)).toBe(role);
  expect(decodeURIComponent(url.password)).toBe(pg.POSTGRES_PASSWORD);
  expect(url.hostname).toBe('postgres');
  expect(url.pathname).toBe(`/${pg.POSTGRES_DB}`);
});

test('docker-compose.yml: every service a service depends on exists', () => {
  const names = new Set(Object.keys(compose.services));
  for (const [name, svc] of Object.entries(compose.services)) {
    const deps = Array.isArray(svc.depends_on) ? svc.depends_on : Object.keys((svc.depends_on as object | undefined) ?? {});
    for (const d of deps as string[]) expect(`${name} -> ${d}: ${names.has(d)}`).toBe(`${name} -> ${d}: true`);
  }
});
