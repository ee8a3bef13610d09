import type { Command } from 'commander';
import { Option } from 'commander';
import { print, printJson, examples, toInt, JSON_HELP, connectionOptions, withConnection } from '../cli-common';
import type { ConnectOptions } from '../connection';
import { listTargets, listServedTargets, formatTargets, type TargetStatus } from './targets';
import { makeTenants, type TenantsOptions } from './tenants';

/** The fleet's own verbs: `targets`, and `tenants` to make a few local ones. (`plan` and `start` take a `kind: fleet` spec; status, watch, pause, resume, approve, rollback and retry take its id.) */
export function registerFleetVerbs(program: Command): void {
  connectionOptions(
    program
      .command('targets')
      .description(
        'list the fleet targets every worker process on the task queue serves (names and tags, never URLs), whether each database answers the worker serving it, and the worker processes serving it; exit 1 if a target or a worker process does not answer. With --targets: the targets of that file, checked from here instead',
      )
      .option('--targets <file>', 'check this targets file (name -> { url | urlEnv, tags }) from here instead of asking the workers')
      .option('--json', `${JSON_HELP}: an array of {name, tags, answers, error?, workers?}`),
  )
    .addHelpText(
      'after',
      examples('stagefill targets', 'STAGEFILL_TASK_QUEUE=stagefill stagefill targets --json', 'stagefill targets --targets targets.yaml'),
    )
    .action(async (opts: ConnectOptions & { targets?: string; json?: boolean }) => {
      let list: TargetStatus[];
      if (opts.targets) list = await listTargets(opts.targets);
      else {
        const served = await withConnection(opts, (conn) => listServedTargets(conn));
        list = served.targets;
        // a process that did not answer: its targets are not listed
        for (const p of served.processes)
          if ('error' in p) {
            process.stderr.write(`worker process ${p.process} ${p.error}\n`);
            process.exitCode = 1;
          }
      }
      if (opts.json) printJson(list);
      else print(formatTargets(list, opts.targets ? 'no targets in the file' : 'no worker process serves a target on this task queue'));
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
