import { startDevStack, projectRoot, formatEnv, writeEnvFile } from '../devstack';

/** `stagefill dev`: the embedded stack in the foreground until SIGINT/SIGTERM. */
export async function runDev(opts: { fresh?: boolean; stateDir?: string }): Promise<number> {
  const root = projectRoot();
  const stack = await startDevStack({ root, stateDir: opts.stateDir, fresh: opts.fresh, log: (m) => process.stderr.write(`stagefill dev: ${m}\n`) });
  const file = writeEnvFile(stack.stateDir, stack.env);
  process.stdout.write(formatEnv(stack.env) + '\n');
  process.stderr.write(`stagefill dev: ready; \`source ${file}\` in another shell; Ctrl-C stops\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.stderr.write('stagefill dev: stopping\n');
  await stack.stop();
  return 0;
}
