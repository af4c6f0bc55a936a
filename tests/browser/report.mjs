// The HTML report pages of `switchboard simulate --report` and `stats --report` in Chromium:
// every chart is drawn (an SVG with lines of real length, every point inside the viewBox), the
// legend of every chart names each configuration, the KPI table is there, nothing is requested
// from a network and the console stays clean. A screenshot of each page at 1280x800 goes to
// $SB_OUTPUT_DIR.
//
// Run by tests/tests/report_browser.rs with SB_REPORT_PAGES, a JSON list of
// { "file": "/abs/path.html", "configurations": ["skills", ...], "screenshot": "name.png" }.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const pages = JSON.parse(process.env.SB_REPORT_PAGES || '[]');
const output = process.env.SB_OUTPUT_DIR || '.';
assert.ok(pages.length > 0, 'SB_REPORT_PAGES names no page');
fs.mkdirSync(output, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const deadline = setTimeout(() => {
  console.error('the report pages did not finish within 90 s');
  process.exit(2);
}, 90_000);

try {
  for (const spec of pages) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const requests = [];
    const problems = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    const url = pathToFileURL(spec.file).href;
    await page.goto(url, { waitUntil: 'load' });

    const found = await page.evaluate(() => {
      const charts = [...document.querySelectorAll('figure.chart')].map((figure) => {
        const svg = figure.querySelector('svg.plot');
        const [vx, vy, vw, vh] = (svg?.getAttribute('viewBox') || '').split(/\s+/).map(Number);
        const box = svg?.getBoundingClientRect();
        const series = [...(svg?.querySelectorAll('g.series') || [])].map((g) => {
          const lines = [...g.querySelectorAll('polyline')];
          const points = lines.flatMap((l) => [...l.points].map((p) => [p.x, p.y]))
            .concat([...g.querySelectorAll('circle')].map((c) => [c.cx.baseVal.value, c.cy.baseVal.value]));
          return {
            index: Number(g.dataset.series),
            length: lines.reduce((sum, l) => sum + l.getTotalLength(), 0),
            points,
            stroke: lines[0] ? getComputedStyle(lines[0]).stroke : null,
            dash: lines[0] ? lines[0].getAttribute('stroke-dasharray') || '' : null,
          };
        });
        return {
          id: figure.dataset.chart,
          title: figure.querySelector('h2')?.textContent,
          viewBox: { vx, vy, vw, vh },
          width: box?.width || 0,
          height: box?.height || 0,
          legend: [...figure.querySelectorAll('ul.legend li span')].map((s) => s.textContent),
          noData: !!svg?.querySelector('.no-data'),
          series,
        };
      });
      const rows = [...document.querySelectorAll('table.kpis tbody tr th')].map((th) => th.textContent);
      return { title: document.title, charts, rows };
    });

    assert.ok(found.charts.length >= 8, `${spec.file}: ${found.charts.length} charts`);
    for (const chart of found.charts) {
      const where = `${path.basename(spec.file)}, chart ${chart.id}`;
      assert.ok(chart.width > 300 && chart.height > 100, `${where}: laid out at ${chart.width}x${chart.height}`);
      assert.deepEqual(chart.legend, spec.configurations, `${where}: the legend names each configuration`);
      assert.equal(chart.noData, false, `${where}: has data`);
      assert.equal(chart.series.length, spec.configurations.length, `${where}: one series per configuration`);
      for (const s of chart.series) {
        assert.ok(s.length > 0, `${where}: series ${s.index} is drawn (a line of real length)`);
        for (const [x, y] of s.points) {
          const { vx, vy, vw, vh } = chart.viewBox;
          assert.ok(x >= vx && x <= vx + vw && y >= vy && y <= vy + vh, `${where}: point ${x},${y} inside the viewBox`);
        }
      }
      // Configurations told apart by colour and by dash pattern.
      const styles = new Set(chart.series.map((s) => `${s.stroke}|${s.dash}`));
      const dashes = new Set(chart.series.map((s) => s.dash));
      assert.equal(styles.size, chart.series.length, `${where}: one colour per configuration`);
      assert.equal(dashes.size, chart.series.length, `${where}: one dash pattern per configuration`);
    }
    for (const row of ['Conversations opened', 'FRT p90', 'SLA compliance', 'CSAT']) {
      assert.ok(found.rows.includes(row), `${spec.file}: KPI row ${row} in ${found.rows}`);
    }
    await page.screenshot({ path: path.join(output, spec.screenshot) });
    const outside = requests.filter((u) => u !== url && !u.startsWith('data:'));
    assert.deepEqual(outside, [], `${spec.file}: no request beyond the file itself`);
    assert.deepEqual(problems, [], `${spec.file}: a clean console`);
    console.log(`${path.basename(spec.file)}: ${found.charts.length} charts drawn, ${found.rows.length} KPI rows, ` +
      `${requests.length} request(s), screenshot ${spec.screenshot}`);
    await context.close();
  }
} finally {
  clearTimeout(deadline);
  await browser.close();
}
