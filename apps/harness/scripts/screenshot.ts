/**
 * Renders a harness report in a real headless browser and saves a PNG, so
 * anyone can see what a user sees. Needs Debian's `chromium` package
 * (`apt-get install -y chromium`); CI does not run this.
 *
 *   pnpm --filter @repo/harness exec tsx scripts/screenshot.ts report.html [out.png] [width,height]
 *
 * The PNG goes next to the report (report.png) unless OUT.png is given: the
 * committed docs/report.png is only replaced when asked for by name.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [report, out = `${report?.replace(/\.html?$/i, '')}.png`, size = '1200,900'] = process.argv.slice(2);
if (report === undefined || !existsSync(report) || !/\.html?$/i.test(report)) {
  process.stderr.write('usage: tsx scripts/screenshot.ts REPORT.html [OUT.png] [WIDTH,HEIGHT]\n');
  process.exit(2);
}
const browser = ['chromium', 'chromium-browser', 'google-chrome'].find((name) => {
  try {
    execFileSync('which', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});
if (browser === undefined) {
  process.stderr.write('no chromium found: apt-get install -y chromium\n');
  process.exit(1);
}

const profile = mkdtempSync(join(tmpdir(), 'harness-chromium-'));
const png = resolve(out);
try {
  execFileSync(
    browser,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--hide-scrollbars',
      `--user-data-dir=${profile}`,
      `--screenshot=${png}`,
      `--window-size=${size}`,
      pathToFileURL(resolve(report)).href,
    ],
    // Chromium is chatty on stderr (dbus, GPU); a bounded run either writes the PNG or fails.
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 },
  );
} finally {
  rmSync(profile, { recursive: true, force: true });
}
if (!existsSync(png) || statSync(png).size === 0) {
  process.stderr.write(`chromium wrote no screenshot to ${png}\n`);
  process.exit(1);
}
process.stdout.write(`wrote ${png} (${statSync(png).size} bytes)\n`);
