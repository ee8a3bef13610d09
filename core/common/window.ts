/**
 * Daily work windows ("start 01:00 for 4h in Europe/Berlin"). Pure and
 * deterministic: the workflow passes its own clock in, and only Intl (which
 * the workflow sandbox provides) is used for time-zone offsets.
 */
import { itemAt } from './checked';

export interface DailyWindow {
  /** Local wall-clock start, "HH:MM". */
  start: string;
  /** Length in milliseconds. */
  duration: number;
  /** IANA time zone; UTC when absent. */
  timeZone?: string;
}

export interface WindowState {
  isOpen: boolean;
  /** When the open window closes (epoch ms), if open. */
  closesAtMs?: number;
  /** When the next window opens (epoch ms), if closed. */
  opensAtMs?: number;
}

const DAY_MS = 86_400_000;

export function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Offset of `tz` from UTC at instant `ms`, in ms (positive east of Greenwich). */
function offsetAt(ms: number, tz: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(ms));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The UTC instant of a local wall-clock time (two passes settle DST edges). */
function localToUtc(localAsUtcMs: number, tz: string): number {
  const guess = localAsUtcMs - offsetAt(localAsUtcMs, tz);
  return localAsUtcMs - offsetAt(guess, tz);
}

export function windowState(w: DailyWindow, nowMs: number): WindowState {
  const tz = w.timeZone ?? 'UTC';
  const clock = w.start.split(':').map(Number); // "HH:MM", as the spec's schema checked
  const hh = itemAt(clock, 0, 'hour of window.start');
  const mm = itemAt(clock, 1, 'minute of window.start');
  const localNow = nowMs + offsetAt(nowMs, tz);
  const localMidnight = Math.floor(localNow / DAY_MS) * DAY_MS;
  const startOn = (dayOffset: number) => localToUtc(localMidnight + dayOffset * DAY_MS + (hh * 60 + mm) * 60_000, tz);
  // A window longer than a day is always open from its first start on.
  if (w.duration >= DAY_MS) return { isOpen: true };
  for (const d of [-1, 0]) {
    const s = startOn(d);
    if (s <= nowMs && nowMs < s + w.duration) return { isOpen: true, closesAtMs: s + w.duration };
  }
  for (const d of [0, 1, 2]) {
    const s = startOn(d);
    if (s > nowMs) return { isOpen: false, opensAtMs: s };
  }
  return { isOpen: false, opensAtMs: nowMs + DAY_MS };
}
