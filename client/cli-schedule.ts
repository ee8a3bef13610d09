import type { Command } from 'commander';
import { loadSpecFile } from './spec-load';
import { isValidTimeZone } from '../core/common/window';
import type { ConnectOptions } from './connection';
import type { ScheduleInfo } from './schedules';
import { createSchedule, listSchedules, pauseSchedule, unpauseSchedule, deleteSchedule } from './schedules';
import { UsageError } from './errors';
import { connectionOptions, withConnection, print, printJson, examples, durationOption, formatMs, JSON_HELP } from './cli-common';

/** `stagefill schedule create|list|pause|unpause|delete`. */
export function registerScheduleVerbs(program: Command): void {
  const schedule = program
    .command('schedule')
    .description(
      'run a backfill in nightly windows with a Temporal Schedule: each firing works until the window ends and the next one continues from the checkpoints',
    )
    .addHelpText(
      'after',
      examples('stagefill schedule create examples/backfill-orders-total.yaml --cron "0 1 * * *" --window 4h', 'stagefill schedule list'),
    );

  connectionOptions(
    schedule
      .command('create')
      .description('create a schedule whose firings start the backfill with a window; never two firings at once (overlap: skip)')
      .argument('<spec>', 'a backfill spec file')
      .option('--cron <expr>', 'when to fire, e.g. "0 1 * * *" (01:00 every day)')
      .option('--every <duration>', 'or fire at a fixed interval, e.g. 6h')
      .option('--window <duration>', 'how long each firing may work, e.g. 4h; it then stops cleanly as window_closed')
      .option('--time-zone <tz>', 'IANA time zone for --cron', 'UTC')
      .option('--id <schedule-id>', 'schedule id (default stagefill-schedule:<table>:<name>)')
      .option('--paused', 'create it paused')
      .option('--json', `${JSON_HELP}: the schedule as \`schedule list --json\` shows it`)
      .addHelpText(
        'after',
        examples(
          'stagefill schedule create examples/backfill-orders-total.yaml --cron "0 1 * * *" --window 4h --time-zone Europe/Berlin',
          'stagefill schedule create backfill.yaml --every 30m --window 10m --id orders-total-halfhourly',
        ),
      ),
  ).action(
    async (
      file: string,
      opts: ConnectOptions & {
        cron?: string;
        every?: string;
        window?: string;
        timeZone: string;
        id?: string;
        paused?: boolean;
        json?: boolean;
      },
    ) => {
      if (Boolean(opts.cron) === Boolean(opts.every))
        throw new UsageError('--cron or --every: give exactly one, e.g. --cron "0 1 * * *" or --every 6h');
      const everyMs = opts.every === undefined ? undefined : durationOption('--every', opts.every);
      const windowMs = opts.window === undefined ? undefined : durationOption('--window', opts.window);
      if (opts.cron && opts.cron.trim().split(/\s+/).length !== 5)
        throw new UsageError(
          `--cron: "${opts.cron}" is not a five-field cron expression (minute hour day month weekday), e.g. "0 1 * * *"`,
        );
      if (opts.cron && !isValidTimeZone(opts.timeZone))
        throw new UsageError(`--time-zone: "${opts.timeZone}" is not an IANA time zone; write e.g. UTC or Europe/Berlin`);
      const spec = loadSpecFile(file);
      if (spec.kind !== 'backfill')
        throw new UsageError(`kind: schedules run backfills, and ${file} is a ${spec.kind}; start a rollout with \`stagefill start\``);
      await withConnection(opts, async (conn) => {
        const info = await createSchedule(conn, spec, {
          cron: opts.cron,
          everyMs,
          windowMs,
          timeZone: opts.cron ? opts.timeZone : undefined,
          scheduleId: opts.id,
          paused: opts.paused,
        });
        if (opts.json) printJson(info);
        else print(info.scheduleId);
        process.stderr.write(`next firings: ${info.nextRuns.slice(0, 3).join(', ') || '(none: paused)'}\n`);
      });
    },
  );

  connectionOptions(
    schedule
      .command('list')
      .description("list stagefill's schedules with their next and recent firings")
      .option(
        '--json',
        `${JSON_HELP}: an array of {scheduleId, table, name, cron, timeZone, everyMs, windowMs, isPaused, note, nextRuns, recentRuns}`,
      )
      .addHelpText('after', examples('stagefill schedule list', 'stagefill schedule list --json')),
  ).action(async (opts: ConnectOptions & { json?: boolean }) => {
    await withConnection(opts, async (conn) => {
      const all = await listSchedules(conn);
      if (opts.json) return printJson(all);
      if (!all.length) return print('no schedules');
      for (const s of all) print(formatSchedule(s));
    });
  });

  for (const [verb, what, fn] of [
    ['pause', 'stop a schedule from firing (a firing already running goes on until its window closes)', pauseSchedule],
    ['unpause', 'let a paused schedule fire again', unpauseSchedule],
    ['delete', 'delete a schedule (the checkpoints stay; a new schedule or start continues from them)', deleteSchedule],
  ] as const) {
    connectionOptions(
      schedule
        .command(verb)
        .description(what)
        .argument('<schedule-id>')
        .option('--json', `${JSON_HELP}: {scheduleId, action}`)
        .addHelpText('after', examples(`stagefill schedule ${verb} stagefill-schedule:public.orders:total`)),
    ).action(async (id: string, opts: ConnectOptions & { json?: boolean }) => {
      await withConnection(opts, async (conn) => {
        await fn(conn, id);
        print(opts.json ? JSON.stringify({ scheduleId: id, action: verb }) : `schedule ${id}: ${verb}${verb.endsWith('e') ? 'd' : 'ed'}`);
      });
    });
  }
}

function formatSchedule(s: ScheduleInfo): string {
  const when = s.cron ? `cron "${s.cron}" ${s.timeZone ?? 'UTC'}` : s.everyMs ? `every ${formatMs(s.everyMs)}` : '?';
  const window = s.windowMs ? `window ${formatMs(s.windowMs)}` : 'no window';
  const last = s.recentRuns[s.recentRuns.length - 1];
  return `${s.scheduleId}\t${s.table ?? '?'}\t${s.name ?? '?'}\t${when}\t${window}\t${s.isPaused ? 'paused' : 'active'}\tnext ${s.nextRuns[0] ?? '-'}\tlast ${last?.workflowId ?? '-'}`;
}
