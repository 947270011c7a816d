// Prints docs/RELEASES.md's app contract block from components/app/contract.ts, so the two cannot
// drift: test/app-contract.test.ts fails when docs/RELEASES.md differs. `npm run -s app-contract`.
import { renderAppContract } from "../components/app/contract";

process.stdout.write(`${renderAppContract()}\n`);
