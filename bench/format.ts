/** How the benchmark's figures are written in the report and the verdicts. */
export const s = (ms: number) => (ms / 1000).toFixed(2);
export const x = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a');
export const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
export const pct = (r: number) => `${(r * 100).toFixed(0)}%`;
export const cores = (c: number | undefined) => (c === undefined ? '' : c.toFixed(2));

export function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}
