/**
 * A preload (`node --require dist/chaos/clock-skew.js`) for the campaign's clock-skewed worker: Date in this Node
 * process (Date.now(), new Date() without arguments) runs STAGEFILL_CHAOS_CLOCK_SKEW_MS ahead (negative: behind) of
 * the host's clock, as on a host whose NTP has drifted. What it does not reach: timers and performance.now() (they
 * are monotonic clocks, not the wall clock a drift moves), the Temporal Core SDK's own Rust code, and the workflow
 * sandbox (workflow time is the server's, by design). So it proves what the stagefill code in a worker does with its
 * wall clock: leases, heartbeats and deadlines must not trust it.
 */
const skew = Number(process.env.STAGEFILL_CHAOS_CLOCK_SKEW_MS ?? 0);

if (Number.isFinite(skew) && skew !== 0) {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  class SkewedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(realNow() + skew);
      else super(...(args as [string | number | Date]));
    }
    static override now(): number {
      return realNow() + skew;
    }
  }
  globalThis.Date = SkewedDate as DateConstructor;
}
