// npm run rehearse: the release drills on loopback (scripts/rehearsal/run.ts), written to
// out/rehearsal/report.json and out/rehearsal/summary.md; exits non-zero when a drill failed.
import * as fs from "fs";
import * as path from "path";
import { rehearse, summary } from "./rehearsal/run";

async function main(): Promise<void> {
  const out = path.resolve(process.argv.includes("--out") ? process.argv[process.argv.indexOf("--out") + 1] : "out/rehearsal");
  const report = await rehearse({ log: (l) => console.log(l), keep: process.argv.includes("--keep") });
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, "report.json"), JSON.stringify(report, null, 2) + "\n");
  fs.writeFileSync(path.join(out, "summary.md"), summary(report));
  console.log(`\n${summary(report)}\nwrote ${path.relative(process.cwd(), path.join(out, "report.json"))} and summary.md`);
  if (!report.passed) process.exitCode = 1;
}

main().catch((e) => {
  console.error(`rehearse: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
