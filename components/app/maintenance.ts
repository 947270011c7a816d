// The page nginx serves (503) while the app is down or the maintenance flag is set.
export interface MaintenancePageSettings {
  title?: string;
  message?: string;
}

/**
 * The page's notice line: `nourishctl maintenance on --message TEXT --until HH:MM` rewrites the
 * line that starts with NOTICE_START on the host (HTML-escaped) and `off` empties it again.
 */
export const NOTICE_START = "<!--notice-->";
export const NOTICE_END = "<!--/notice-->";

const escapeHtml = (v: string): string =>
  v.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);

/** Self-contained: no external CSS, fonts or images, since the app that serves them is down. */
export function renderMaintenancePage(s: MaintenancePageSettings = {}): string {
  const title = escapeHtml(s.title ?? "NOURISH LINK is down for maintenance");
  const message = escapeHtml(s.message ?? "We are updating NOURISH LINK. Your orders and subscriptions are safe. Please try again in a few minutes.");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${title}</title>
<style>
  body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
         font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #f6f7f2; color: #223; }
  main { max-width: 32rem; padding: 2rem; text-align: center; }
  h1 { font-size: 1.6rem; color: #2f6b2f; }
  p { line-height: 1.5; }
  .notice { font-weight: 600; }
</style>
</head>
<body>
<main>
<h1>${title}</h1>
<p>${message}</p>
${NOTICE_START}${NOTICE_END}
</main>
</body>
</html>
`;
}
