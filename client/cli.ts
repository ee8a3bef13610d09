import { Command, Option, CommanderError } from 'commander';
import { formatSpecError } from './spec-load';
import { exitCodeOf } from './errors';
import { examples, toInt } from './cli-common';
import { registerRunVerbs } from './cli-runs';
import { registerControlVerbs } from './cli-control';
import { registerScheduleVerbs } from './cli-schedule';
import { registerFleetVerbs } from './fleet/cli';
import { SpecError } from '../steps/spec';
import { packageVersion } from '../worker/config';

/** Exit codes: 0 success, 1 the run (or a connection) failed, 2 invalid input. Each client error carries its own. */

const program = new Command();
program
  .name('stagefill')
  .description('Staged, reversible schema changes and chunked exactly-once backfills for live PostgreSQL tables, on Temporal.')
  .version(packageVersion())
  .showHelpAfterError()
  .exitOverride();

registerRunVerbs(program);
registerControlVerbs(program);
registerScheduleVerbs(program);
registerFleetVerbs(program);

program
  .command('worker')
  .description('run a worker: polls the task queue until SIGINT/SIGTERM, then drains (config from the environment)')
  .addHelpText(
    'after',
    examples(
      'DATABASE_URL=postgres://app@127.0.0.1:5432/app TEMPORAL_ADDRESS=127.0.0.1:7233 stagefill worker',
      'source .stagefill/dev.env && stagefill worker',
      'STAGEFILL_WEBHOOK_URL=https://hooks.slack.com/services/T000/B000/XXXX stagefill worker   # notifications (docs/operations.md)',
    ),
  )
  .action(async () => {
    const { runWorkerMain } = await import('../worker/main');
    process.exitCode = await runWorkerMain();
  });

program
  .command('dev')
  .description(
    'run a local Temporal dev server (with the Web UI) and PostgreSQL until Ctrl-C; prints their addresses and writes .stagefill/dev.env. ' +
      'Ports: 7233 (Temporal), 8233 (Web UI), 55432 (PostgreSQL) when free, else the ones of the last start, else free ones (it says so). ' +
      'TEMPORAL_ADDRESS / DATABASE_URL in the environment are used instead, if they answer (exit 1 if not). ' +
      'One stack per state dir: a second start there exits 1, naming the running one',
  )
  .option('--fresh', 'start with empty history and database')
  .option('--state-dir <dir>', 'where history, the database, ports.json and dev.env live (default <project>/.stagefill)')
  .addOption(new Option('--temporal-port <port>', 'preferred Temporal frontend port (default 7233)').env('STAGEFILL_DEV_TEMPORAL_PORT'))
  .addOption(new Option('--ui-port <port>', 'preferred Web UI port (default 8233)').env('STAGEFILL_DEV_UI_PORT'))
  .addOption(new Option('--postgres-port <port>', 'preferred PostgreSQL port (default 55432)').env('STAGEFILL_DEV_POSTGRES_PORT'))
  .option(
    '--json',
    'print the addresses as one JSON object {TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_UI, TEMPORAL_CLI, DATABASE_URL} instead of NAME=value lines',
  )
  .addHelpText(
    'after',
    examples('stagefill dev', 'source .stagefill/dev.env && temporal workflow list', 'stagefill dev --temporal-port 17233 --ui-port 18233'),
  )
  .action(
    async (opts: { fresh?: boolean; stateDir?: string; temporalPort?: string; uiPort?: string; postgresPort?: string; json?: boolean }) => {
      const { runDev } = await import('./dev');
      process.exitCode = await runDev(opts);
    },
  );

program
  .command('demo')
  .description('start the embedded stack and a worker, load a demo table of ~1M rows, run a staged rollout with a backfill on it')
  .option('--exit', 'stop everything after the run instead of keeping the stack up for the Web UI')
  .option('--rows <n>', 'rows in the demo table', toInt, 1_000_000)
  .option('--state-dir <dir>', 'where the embedded stack keeps its state and dev.env (default <project>/.stagefill)')
  .addHelpText('after', examples('stagefill demo', 'stagefill demo --exit --rows 200000'))
  .action(async (opts: { exit?: boolean; rows: number; stateDir?: string }) => {
    const { runDemo } = await import('./demo');
    process.exitCode = await runDemo(opts);
  });

/** Runs the CLI; returns the exit code instead of exiting, so tests can call it in-process too. */
export async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err);
  }
}

/** One line on stderr and the exit code the error carries (1 when it carries none); a stack trace only with STAGEFILL_DEBUG. */
export function reportError(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  if (err instanceof SpecError) {
    process.stderr.write(formatSpecError(err) + '\n');
    return 2;
  }
  process.stderr.write(`stagefill: ${(err as Error)?.message ?? String(err)}\n`);
  const code = exitCodeOf(err);
  if (code === undefined && process.env.STAGEFILL_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
  return code ?? 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => process.exit(reportError(err)),
  );
}
