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

function isTimeZone(spec: string): boolean {
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
  if (tokens.length === 1 && SHORTHANDS.has(tokens[0].toLowerCase())) return true;

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
