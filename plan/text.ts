/** User SQL on one line, cut to `max` characters, for plans and logs. Pure. */
export function oneLine(sql: string, max = 120): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}
