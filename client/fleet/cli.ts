import type { Command } from 'commander';
import { Option } from 'commander';
import { print, printJson, examples, toInt, JSON_HELP } from '../cli-common';
import { listTargets, formatTargets } from './targets';
import { makeTenants, type TenantsOptions } from './tenants';

/** The fleet's own verbs: `targets`, and `tenants` to make a few local ones. (`plan` and `start` take a `kind: fleet` spec; status, watch, pause, resume, approve, rollback and retry take its id.) */
export function registerFleetVerbs(program: Command): void {
  program
    .command('targets')
    .description(
      'list the fleet targets of the targets file the workers read (names and tags, never URLs) and whether each database answers; exit 1 if one does not',
    )
    .addOption(new Option('--targets <file>', 'the targets file (name -> { url | urlEnv, tags })').env('STAGEFILL_TARGETS'))
    .option('--json', `${JSON_HELP}: an array of {name, tags, answers, error?}`)
    .addHelpText('after', examples('STAGEFILL_TARGETS=targets.yaml stagefill targets', 'stagefill targets --targets targets.yaml --json'))
    .action(async (opts: { targets?: string; json?: boolean }) => {
      const list = await listTargets(opts.targets);
      if (opts.json) printJson(list);
      else print(formatTargets(list));
      if (list.some((t) => !t.answers)) process.exitCode = 1;
    });

  program
    .command('tenants')
    .description(
      "make a few tenant databases to try a fleet on, on the server of DATABASE_URL (the dev stack's), run a SQL file in each, and write a targets file naming them (the first --staging tagged env: staging, the rest env: prod); existing ones are kept, the file run again",
    )
    .addOption(new Option('--database-url <url>', 'a database on the server to make them on').env('DATABASE_URL'))
    .option('--count <n>', 'how many', toInt, 5)
    .option('--prefix <prefix>', 'database and target names: <prefix>1, <prefix>2, ...', 'tenant_')
    .option('--staging <n>', 'how many of the first ones are tagged env: staging', toInt, 1)
    .option('--sql <file>', "SQL run in each (a tenant's tables and rows), e.g. examples/fleet-tenant.sql")
    .option('--out <file>', 'the targets file to write', 'targets.yaml')
    .option(
      '--catalog <table>',
      "also list them in this table of DATABASE_URL's database (name, active): a catalog for a spec's targets.query",
    )
    .option('--json', `${JSON_HELP}: an array of {name, tags, created} (never URLs)`)
    .addHelpText(
      'after',
      examples(
        'stagefill tenants --count 5 --sql examples/fleet-tenant.sql --out targets.yaml',
        'stagefill tenants --count 20 --prefix shop_ --staging 2 --out shops.yaml --catalog public.shops',
      ),
    )
    .action(async (opts: TenantsOptions & { json?: boolean }) => {
      const made = await makeTenants(opts);
      if (opts.json) printJson(made.map((t) => ({ name: t.name, tags: t.tags, created: t.created })));
      else
        print(
          `${made.filter((t) => t.created).length} created, ${made.filter((t) => !t.created).length} already there; targets file: ${opts.out}\n` +
            made.map((t) => `${t.name}\tenv=${t.tags.env}${t.created ? '' : '\t(already there)'}`).join('\n'),
        );
    });
}
