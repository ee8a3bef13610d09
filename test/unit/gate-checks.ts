/** The plan context and the two checks the gate and soak kinds' tests describe and parse. */
export const ctx = { id: 'g', table: 'public.t', rollbackWindowMs: 0 };
export const checks = [
  { name: 'no-nulls', sql: 'select count(*) from t where a is null', expect: { eq: 0 } },
  { name: 'rows', sql: 'select count(*) from t', unchanged: true },
];
