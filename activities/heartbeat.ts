import { Context } from '@temporalio/activity';

/** Heartbeats while a long statement runs, when called as an activity (the tests call these functions directly). */
export function heartbeating(): () => void {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return () => {};
  }
  const timer = setInterval(() => ctx.heartbeat(), 5000);
  return () => clearInterval(timer);
}
