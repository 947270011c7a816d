// Validation of systemd OnCalendar= expressions (systemd.time(7)), so a malformed schedule in
// stack config fails at `pulumi preview` instead of on the host when the timer is loaded.
// Covers the subset operators write: shorthands, weekday lists and ranges, `*`, lists, ranges
// and `/` repetition in date and time, and an optional time zone. test/schedules checks it
// against `systemd-analyze calendar`, the real parser.

const SHORTHANDS = new Set([
  "minutely", "hourly", "daily", "weekly", "monthly", "quarterly",
  "semiannually", "yearly", "annually",
]);

const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEKDAY_NAMES = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

function isWeekday(w: string): boolean {
  const l = w.toLowerCase();
  return WEEKDAYS.includes(l) || WEEKDAY_NAMES.includes(l);
}

function isWeekdaySpec(spec: string): boolean {
  return spec.split(",").every((part) => {
    const range = part.split("..");
    return range.length <= 2 && range.every(isWeekday);
  });
}

/** One date or time component: `*`, `N`, `N..M`, `N/S`, `*\/S`, or a comma list of those. */
function isComponent(spec: string, min: number, max: number): boolean {
  if (spec === "") return false;
  return spec.split(",").every((item) => {
    const [base, step, extra] = item.split("/");
    if (extra !== undefined) return false;
    if (step !== undefined && !(/^\d+$/.test(step) && Number(step) > 0)) return false;
    if (base === "*") return true;
    const bounds = base.split("..");
    if (bounds.length > 2) return false;
    const nums = bounds.map((b) => (/^\d+$/.test(b) ? Number(b) : NaN));
    if (nums.some((n) => Number.isNaN(n) || n < min || n > max)) return false;
    return nums.length === 1 || nums[0] <= nums[1];
  });
}

function isDate(spec: string): boolean {
  const parts = spec.split("-");
  if (parts.length === 2) parts.unshift("*");
  if (parts.length !== 3) return false;
  const [y, m, d] = parts;
  return isComponent(y, 1970, 2199) && isComponent(m, 1, 12) && isComponent(d, 1, 31);
}

function isTime(spec: string): boolean {
  const parts = spec.split(":");
  if (parts.length === 2) parts.push("00");
  if (parts.length !== 3) return false;
  const [h, m, s] = parts;
  return isComponent(h, 0, 23) && isComponent(m, 0, 59) && isComponent(s.replace(/\.\d+$/, ""), 0, 59);
}

export function isTimeZone(spec: string): boolean {
  if (spec === "UTC") return true;
  try {
    new Intl.DateTimeFormat("en", { timeZone: spec });
    return /^[A-Za-z_]+(\/[A-Za-z_+-]+)+$/.test(spec);
  } catch {
    return false;
  }
}

/** True when systemd would accept `expr` as an OnCalendar= value. */
export function isOnCalendar(expr: string): boolean {
  const tokens = expr.trim().split(/\s+/).filter(Boolean);
  if (tokens.length === 0) return false;
  // A shorthand, alone or in a time zone (`daily Africa/Kigali`: every timer renders it so).
  if (SHORTHANDS.has(tokens[0].toLowerCase())) return tokens.length === 1 || (tokens.length === 2 && isTimeZone(tokens[1]));

  let i = 0;
  const sawWeekday = /^[A-Za-z]/.test(tokens[0]) && isWeekdaySpec(tokens[0]);
  if (sawWeekday) i++;
  let sawDate = false;
  let sawTime = false;
  if (i < tokens.length && tokens[i].includes("-") && isDate(tokens[i])) {
    sawDate = true;
    i++;
  }
  if (i < tokens.length && tokens[i].includes(":") && isTime(tokens[i])) {
    sawTime = true;
    i++;
  }
  if (i < tokens.length && isTimeZone(tokens[i])) i++;
  return i === tokens.length && (sawWeekday || sawDate || sawTime);
}

// When an expression elapses. systemd-analyze calendar prints "Next elapse: never" for a valid
// expression no date satisfies (`*-02-31`, `*-04-31`, a year in the past, `Sat 2027-02-29`): such
// a timer is accepted and never fires. The time of day always elapses once it parses, so only the
// date and the weekdays decide; the search runs day by day up to systemd's last year, 2199.

const LAST_YEAR = 2199;

/** Whether `v` is one of the values a date component (`*`, `N`, `N..M`, `/S`, lists) admits. */
function componentMatches(spec: string, v: number, min: number, max: number): boolean {
  return spec.split(",").some((item) => {
    const [base, stepText] = item.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    const [lo, hi] = base === "*" ? [min, max] : base.includes("..") ? base.split("..").map(Number) : [Number(base), stepText === undefined ? Number(base) : max];
    return v >= lo && v <= hi && (v - lo) % step === 0;
  });
}

function weekdayMatches(spec: string, day: number): boolean {
  // day: 0 = Monday … 6 = Sunday
  const index = (w: string) => { const l = w.toLowerCase(); const i = WEEKDAYS.indexOf(l); return i >= 0 ? i : WEEKDAY_NAMES.indexOf(l); };
  return spec.split(",").some((part) => {
    const [a, b] = part.split("..").map(index);
    return b === undefined ? day === a : a <= b ? day >= a && day <= b : day >= a || day <= b;
  });
}

/**
 * True when a valid OnCalendar expression has a next elapse on or after `from` (default: today),
 * as `systemd-analyze calendar` computes it; false when it would say "never".
 */
export function calendarElapses(expr: string, from: Date = new Date()): boolean {
  const tokens = expr.trim().split(/\s+/).filter(Boolean);
  if (tokens.length === 1 && SHORTHANDS.has(tokens[0].toLowerCase())) return true;
  const weekdays = /^[A-Za-z]/.test(tokens[0]) && isWeekdaySpec(tokens[0]) ? tokens.shift() : undefined;
  const dateToken = tokens[0]?.includes("-") && isDate(tokens[0]) ? tokens[0] : undefined;
  const parts = dateToken ? dateToken.split("-") : ["*", "*", "*"];
  if (parts.length === 2) parts.unshift("*");
  const [ys, ms, ds] = parts;
  const day = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate()));
  for (; day.getUTCFullYear() <= LAST_YEAR; day.setUTCDate(day.getUTCDate() + 1)) {
    if (!componentMatches(ys, day.getUTCFullYear(), 1970, LAST_YEAR)) {
      // Skip to the next year at once: most of the search is years that cannot match.
      day.setUTCMonth(11, 31);
      continue;
    }
    if (componentMatches(ms, day.getUTCMonth() + 1, 1, 12) && componentMatches(ds, day.getUTCDate(), 1, 31)
      && (weekdays === undefined || weekdayMatches(weekdays, (day.getUTCDay() + 6) % 7))) return true;
  }
  return false;
}

/**
 * Why `expr` may not be a schedule, or undefined: a line break or control character (it is written
 * into a unit file, where it would start a new directive), not an OnCalendar expression, or one
 * that never elapses.
 */
export function calendarProblem(expr: string, from?: Date): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(expr)) return "must be one line: no line breaks or control characters (it is written into a systemd unit)";
  if (!isOnCalendar(expr)) return "must be a systemd OnCalendar expression such as '*-*-* 02:00:00' or 'Sun *-*-* 23:00:00'";
  if (!calendarElapses(expr, from)) return "never elapses: no date matches it (such as *-02-31), so systemd would never run it";
  return undefined;
}
