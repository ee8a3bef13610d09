import fs from 'node:fs';

/**
 * Facts a fault or security test proved (kills survived, rows verified, ...),
 * for docs/RELIABILITY.md. Written only when `npm run reliability` sets
 * STAGEFILL_REPORT; a plain test run records nothing.
 */
export function recordFacts(test: string, facts: Record<string, string | number | boolean>): void {
  const file = process.env.STAGEFILL_REPORT;
  if (!file) return;
  fs.appendFileSync(file, JSON.stringify({ test, facts, at: new Date().toISOString() }) + '\n');
}
