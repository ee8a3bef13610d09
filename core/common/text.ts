/** User SQL on one line, cut to `max` characters, for plans and logs. Pure. */
export function oneLine(sql: string, max = 120): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

/** One statement: a trailing semicolon is fine; a second statement is not. */
export function hasSecondStatement(sql: string): boolean {
  const stripped = sql
    .replace(/'(?:[^']|'')*'/g, "''")
    .replace(/"(?:[^"]|"")*"/g, '""')
    .replace(/--[^\n]*/g, '')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .trim()
    .replace(/;\s*$/, '');
  return stripped.includes(';');
}
