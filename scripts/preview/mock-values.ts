// The fixed values the offline preview's mocks give the outputs that, in a real stack, the
// release and the restore rehearsal write: so that `npm run promote` can say when what it reads
// came from mocks. No Pulumi import (promotion reads this).

/** When the mocks' restore rehearsal "succeeded" (its `restoreRehearsal.at`). */
export const MOCK_REHEARSAL_AT = "2026-11-28T04:07:31Z";
/** When the mocks' `nourishctl release verify` "answered" (its `releaseVerified.at`). */
export const MOCK_VERIFIED_AT = "2000-01-01T02:30:00Z";
/** A time at which the mocks' rehearsal is a day old: what the README's offline example replays. */
export const MOCK_NOW = "2026-11-29T04:00:00Z";
