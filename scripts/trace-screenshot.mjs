#!/usr/bin/env node
// Opens a Chrome trace (`gnnbatch profile --trace`, `train --trace`) in the Performance panel of
// Chromium's own DevTools frontend, headless, and writes a screenshot of the loaded timeline: a check
// in a real viewer that needs no network (Perfetto's UI is a web site; Debian's Chromium no longer
// serves chrome://tracing). The frontend is the one Chromium bundles, served by its remote-debugging
// port; the trace goes in through the panel's own "Load profile" file input.
// Needs chromium (apt-get install chromium) and puppeteer-core, neither a dependency of the package:
//   npm install --no-save puppeteer-core@24 && node scripts/trace-screenshot.mjs trace.json shot.png
// Exits 1 when the panel's file input is not found (the frontend did not load).
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const [file, shot = 'trace.png', chromium = '/usr/bin/chromium'] = process.argv.slice(2);
if (!file) {
  console.error('usage: node scripts/trace-screenshot.mjs TRACE.json [SHOT.png] [CHROMIUM]');
  process.exit(2);
}
let puppeteer;
try {
  const req = createRequire(path.join(process.cwd(), 'index.js'));
  puppeteer = (await import(pathToFileURL(req.resolve('puppeteer-core')).href)).default;
} catch (e) {
  console.error(`cannot load puppeteer-core from ${process.cwd()} (${e.message}): npm install --no-save puppeteer-core@24`);
  process.exit(2);
}
const port = 9300 + (process.pid % 500);
const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu', `--remote-debugging-port=${port}`] });
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1600, height: 900 });
  await page.goto(`http://127.0.0.1:${port}/devtools/trace_app.html?panel=timeline`, { waitUntil: 'load' });
  await new Promise((r) => setTimeout(r, 4000));
  const input = (
    await page.evaluateHandle(() => {
      const walk = (root) => {
        for (const el of root.querySelectorAll('*')) {
          if (el.tagName === 'INPUT' && el.type === 'file') return el;
          if (el.shadowRoot) {
            const f = walk(el.shadowRoot);
            if (f) return f;
          }
        }
        return null;
      };
      return walk(document);
    })
  ).asElement();
  if (!input) {
    console.error('the Performance panel has no file input: the DevTools frontend did not load');
    process.exit(1);
  }
  await input.uploadFile(path.resolve(file));
  await new Promise((r) => setTimeout(r, 8000));
  // The panel opens a shortcuts card, and hosted mode says no page is attached: close both.
  await page.evaluate(() => {
    const walk = (root) => {
      for (const el of root.querySelectorAll('*')) {
        if (el.shadowRoot) walk(el.shadowRoot);
        const label = `${el.getAttribute?.('aria-label') ?? ''} ${el.getAttribute?.('title') ?? ''}`;
        if (/close/i.test(label) && typeof el.click === 'function') el.click();
      }
    };
    walk(document);
  });
  await new Promise((r) => setTimeout(r, 500));
  // Expand the first process track (its triangle at the top left of the flame chart) to show its threads.
  await page.mouse.click(250, 129);
  await new Promise((r) => setTimeout(r, 1500));
  await page.screenshot({ path: shot });
  console.log(`${file}: loaded into Chromium's DevTools Performance panel; screenshot ${shot}`);
} finally {
  await browser.close();
}
