import { Command, Option } from 'commander';
import { print, printJson, examples, JSON_HELP } from '../cli-common';
import { listTargets, formatTargets } from './targets';

/** The fleet's own verb: `targets`. (`plan` and `start` take a `kind: fleet` spec; status, watch, pause, resume, approve, rollback and retry take its id.) */
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
}
