import fs from 'node:fs';
import type { DevStack } from '../../devstack';

export default async function globalTeardown(): Promise<void> {
  const stack = (globalThis as Record<string, unknown>).__stagefillStack as DevStack | undefined;
  await stack?.stop();
  if (stack && !process.env.STAGEFILL_KEEP_TEST_STATE) {
    // the cluster may live behind a link (see devstack/postgres.ts): remove both
    for (const p of ['pg']) {
      const link = `${stack.stateDir}/${p}`;
      const real = fs.existsSync(link) ? fs.realpathSync(link) : link;
      fs.rmSync(real, { recursive: true, force: true });
    }
    fs.rmSync(stack.stateDir, { recursive: true, force: true });
  }
}
