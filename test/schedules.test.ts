import * as assert from "assert";
import { isOnCalendar } from "../components/schedules/calendar";
import { requireTool, run } from "./tools";

// Good and bad expressions, judged by systemd's own parser.
const EXPRESSIONS = [
  "*-*-* 02:00:00", "Sun *-*-* 23:00:00", "*-*-01 03:30:00", "daily", "weekly", "monthly",
  "Mon..Fri 08:00", "Sat,Sun 10:00", "Mon", "02:00", "*:0/15", "Fri *-*-1..7 18:00", "*-*-* 2:0",
  "*-*-* 02:00:00 Africa/Kigali", "2026-12-24 18:00:00", "*-01,07-01 00:00:00",
  "every night", "Sun *-*-* 25:00:00", "*-13-01 00:00", "Africa/Kigali", "Mooday 10:00",
  "*-*-* 02:00:00 Mars/Olympus", "*-*-* 24:00:00", "", "02:60", "*-*-32 00:00", "0 2 * * *",
];

describe("schedules: OnCalendar validation", () => {
  it("agrees with `systemd-analyze calendar` on every sample", () => {
    requireTool("systemd-analyze");
    const disagreements: string[] = [];
    for (const expr of EXPRESSIONS) {
      const systemd = run("systemd-analyze", ["calendar", expr]).status === 0;
      if (isOnCalendar(expr) !== systemd) disagreements.push(`${JSON.stringify(expr)}: systemd says ${systemd ? "valid" : "invalid"}`);
    }
    assert.deepStrictEqual(disagreements, []);
    // The samples must exercise both answers, or the comparison proves nothing.
    assert.ok(EXPRESSIONS.some(isOnCalendar) && !EXPRESSIONS.every(isOnCalendar));
  });

  it("rejects cron syntax, the manual's old way, with a systemd hint", () => {
    assert.strictEqual(isOnCalendar("0 2 * * *"), false);
  });
});
