// Opens the operators' status page in Debian's chromium, headless, while
// the test drives streams, and prints what an operator would see as one
// JSON report; tests/api/status.rs asserts on it.
//
//   node status.mjs '{"base": "http://127.0.0.1:PORT", "artifacts": DIR}'
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2]);
const report = { outside_requests: [], console_errors: [] };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
});

/** What the page shows now: the numbers, the table, the panels' text. */
async function read(page) {
  return page.evaluate(() => {
    const text = (id) => document.getElementById(id).textContent.trim();
    const rows = [...document.querySelectorAll('#streams tbody tr')].map((tr) =>
      [...tr.children].map((td) => td.textContent.trim()));
    // A chart is drawn when its canvas has coloured pixels beyond the axis.
    const drawn = [...document.querySelectorAll('canvas')].map((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let coloured = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && Math.abs(d[i] - d[i + 2]) > 40) coloured++;
      return coloured;
    });
    return {
      meta: text('meta'), out: text('n-out'), origin: text('n-origin'), requests: text('n-requests'),
      streams_now: text('n-streams'), rows, drawn, store: text('store'), extractions: text('extractions'),
      deps: text('deps'),
    };
  });
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const own = new URL(cfg.base).host;
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!['data:', 'blob:'].includes(u.protocol) && u.host !== own) report.outside_requests.push(r.url());
  });
  page.on('console', (m) => { if (m.type() === 'error') report.console_errors.push(m.text()); });
  const resp = await page.goto(cfg.base + '/ui/status');
  report.status = resp.status();
  await page.waitForFunction(() => document.querySelectorAll('#streams tbody tr').length > 0, null, { timeout: 30000 });
  report.first = await read(page);
  // Two refreshes later (the board samples every 5 s, the page reads every 3 s).
  await page.waitForTimeout(11000);
  report.later = await read(page);
  await page.screenshot({ path: `${cfg.artifacts}/status.png`, fullPage: true });
  report.screenshot = `${cfg.artifacts}/status.png`;
} catch (e) {
  report.failure = String(e.stack || e);
}
await browser.close();
console.log(JSON.stringify(report));
