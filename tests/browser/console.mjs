// The supervisor's console in Chromium: wrong tokens refused, sign-in, a webhook customer's
// conversation appearing in the live queue without a reload, opened from the keyboard, transferred
// to the other team with a note (the router's verdict shown; the note then in the history), its
// priority set, the KPIs and agents views, an agent set online from their page, Russian labels, axe-core (no serious or critical
// violation) at 1280x800 and 390x844, no horizontal scrolling at 390 px, no console error (a CSP
// violation is one). Screenshots go to $SB_OUTPUT_DIR/console-*.png.
//
// Run by tests/tests/console_browser.rs with SB_DAEMON_URL, SB_TOKEN (a supervisor's),
// SB_AGENT_TOKEN (an agent's), SB_TRIGGER_URL (GET: a webhook customer writes in), SB_NOTE,
// SB_CUSTOMER_TEXT. Prints `RESULT {json}` for the Rust side.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
};
const daemon = env('SB_DAEMON_URL');
const token = env('SB_TOKEN');
const agentToken = env('SB_AGENT_TOKEN');
const trigger = env('SB_TRIGGER_URL');
const note = env('SB_NOTE');
const customerText = env('SB_CUSTOMER_TEXT');
const output = process.env.SB_OUTPUT_DIR || '.';
fs.mkdirSync(output, { recursive: true });
const T = 20_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, timeout = T) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = `error: ${e.message}`; }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(100);
  }
}

const axeCounts = {};
/** axe-core's default rules on the page: no serious or critical violation. */
async function axe(page, what) {
  // Evaluated through the DevTools protocol: the page's own CSP (no inline script) stays on.
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE_SOURCE);
  const found = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) })));
  const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const size = page.viewportSize();
  const key = `${size.width}x${size.height}`;
  axeCounts[key] = axeCounts[key] || { audits: 0, serious_or_critical: 0, minor_or_moderate: 0 };
  axeCounts[key].audits += 1;
  axeCounts[key].serious_or_critical += bad.length;
  axeCounts[key].minor_or_moderate += found.length - bad.length;
  assert.deepEqual(bad, [], `axe-core at ${key}, ${what}: ${JSON.stringify(bad)}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(output, `console-${name}.png`) });
}

/** Waits for the result of the last action and returns it: `done`, `queued` or `refused`. */
async function outcome(page, what) {
  const handle = await until(`the verdict on ${what}`, async () => page.evaluate(() => {
    const el = document.getElementById('action-result');
    return el && el.dataset.outcome ? { outcome: el.dataset.outcome, text: el.textContent } : null;
  }));
  return handle;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const deadline = setTimeout(() => { console.error('the console scenario did not finish within 150 s'); process.exit(2); }, 150_000);
const result = {};
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-GB' });
  const page = await context.newPage();
  const problems = [];
  // The API's refusals (401, 403, 409) are answers the page shows; Chromium logs each as a
  // failed load, so those are told apart by their URL: anything else failing is a problem.
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`); });
  page.on('response', (r) => { if (r.status() >= 400 && !new URL(r.url()).pathname.startsWith('/v1/')) problems.push(`${r.status()} ${r.url()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  let loads = 0;
  page.on('load', () => { loads += 1; });

  const response = await page.goto(`${daemon}/console`, { waitUntil: 'load' });
  const csp = response.headers()['content-security-policy'] || '';
  assert.match(csp, /script-src 'self'/, 'a strict CSP');
  assert.ok(!/unsafe-inline|unsafe-eval/.test(csp), `no unsafe source in the CSP: ${csp}`);
  assert.equal(response.headers()['x-content-type-options'], 'nosniff');
  await page.waitForSelector('#token');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'token', 'the token field has focus');
  await axe(page, 'the sign-in form');

  // Wrong tokens are refused, each with its reason; nothing is kept.
  await page.fill('#token', 'not-a-token-of-this-daemon-000');
  await page.keyboard.press('Enter');
  await until('the unknown token refused', async () => (await page.textContent('#signin-error')).includes('not recognised'));
  await page.fill('#token', agentToken);
  await page.keyboard.press('Enter');
  await until('the agent token refused', async () => (await page.textContent('#signin-error')).includes('not a supervisor'));
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token is not stored');
  await axe(page, 'the sign-in form with an error');

  // Sign in: the live queue, empty, with the stream connected.
  await page.fill('#token', token);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#nav:not([hidden])');
  await until('the stream live', async () => (await page.getAttribute('#conn', 'data-state')) === 'live');
  await until('the empty queue', async () => (await page.textContent('#main')).includes('Nobody is waiting'));
  assert.ok(!(await page.evaluate(() => location.href)).includes(token), 'no token in the URL');
  const loadsBefore = loads;

  // A webhook customer writes in: the row appears by itself.
  const started = Date.now();
  const triggered = await fetch(trigger);
  assert.equal(triggered.status, 200, 'the customer was sent');
  const row = await page.waitForSelector('#queue tbody tr[data-conversation]', { timeout: T });
  result.queue_update_ms = Date.now() - started;
  assert.equal(loads, loadsBefore, 'the queue updated without a reload');
  const conversation = await row.getAttribute('data-conversation');
  result.conversation = conversation;
  const cells = await row.$$eval('td', (tds) => tds.map((td) => td.textContent));
  assert.equal(cells[0], '1', 'first in line');
  assert.equal(cells[3], 'support', 'team');
  assert.equal(cells[5], 'webhook', 'channel');
  assert.match(await page.textContent('#live'), /Queue updated: 1 waiting/, 'the live region says so');
  await shot(page, 'queue-1280x800');
  await axe(page, 'the queue with a conversation');

  // Opened from the keyboard.
  await page.focus('#queue tbody a');
  await page.keyboard.press('Enter');
  await until('the conversation page', async () => (await page.evaluate(() => location.hash)) === `#/conversation/${conversation}`);
  await until('the customer\'s message in the history', async () => (await page.textContent('#main')).includes(customerText));
  await page.waitForSelector('#conv-explain');
  assert.match(await page.textContent('#main'), /Sam.*|sam/, 'the explanation names the agents');

  // Transfer to billing with a note.
  await page.selectOption('#to-team', 'billing');
  await page.fill('#note', note);
  await page.click('#transfer-form button[type=submit]');
  const transfer = await outcome(page, 'the transfer');
  result.transfer = transfer;
  assert.equal(transfer.outcome, 'done', `the router applied the transfer: ${transfer.text}`);
  await until('the note in the history', async () => page.evaluate((text) =>
    [...document.querySelectorAll('.entry.from-note .text')].some((e) => e.textContent.includes(text)), note));
  assert.match(await page.textContent('.entry.from-note .who'), /Internal note/, 'the note is marked as one');

  // Set its priority.
  await page.fill('#priority', '10');
  await page.click('#priority-form button[type=submit]');
  const priority = await outcome(page, 'the priority');
  assert.equal(priority.outcome, 'done', `the router applied the priority: ${priority.text}`);
  await until('priority 10 shown', async () => page.evaluate(() =>
    [...document.querySelectorAll('.facts dd')].some((d) => d.textContent === '10')));
  await shot(page, 'conversation-1280x800');
  await axe(page, 'the conversation page');

  // KPIs and agents.
  await page.click('#nav a[data-route=kpis]');
  await page.waitForSelector('section.team svg.spark polyline', { state: 'attached' });
  const teams = await page.$$eval('section.team h2', (hs) => hs.map((x) => x.textContent));
  assert.deepEqual(teams.sort(), ['billing', 'support'], 'a section per team');
  await shot(page, 'kpis-1280x800');
  await axe(page, 'the KPIs');
  await page.click('#nav a[data-route=agents]');
  await page.waitForSelector('#agents tbody tr[data-agent="bill"]');
  await until('bill holding the transferred conversation', async () => page.evaluate((id) =>
    !!document.querySelector(`#agents tr[data-agent="bill"] a[href="#/conversation/${id}"]`), conversation));
  await axe(page, 'the agents');

  // An agent's page: sam comes online from here.
  await page.click('#agents a[href="#/agent/sam"]');
  await page.waitForSelector('#status-form');
  await page.selectOption('#status', 'online');
  await page.click('#status-form button[type=submit]');
  const status = await outcome(page, 'sam\'s status');
  assert.equal(status.outcome, 'done', `the router set sam's status: ${status.text}`);
  await axe(page, 'an agent\'s page');
  await page.click('#nav a[data-route=agents]');
  await until('sam online in the agents view', async () => (await page.textContent('#agents tr[data-agent="sam"]')).includes('Online'));

  // Russian.
  await page.selectOption('#lang', 'ru');
  await until('Russian labels', async () => (await page.textContent('#nav a[data-route=queue]')) === 'Очередь');
  assert.equal(await page.getAttribute('html', 'lang'), 'ru');
  assert.equal(await page.textContent('#view-title'), 'Операторы');
  await page.click('#nav a[data-route=queue]');
  await until('the Russian queue title', async () => (await page.textContent('#view-title')) === 'Очередь сейчас');
  await shot(page, 'ru-1280x800');
  await axe(page, 'the queue in Russian');
  await page.selectOption('#lang', 'en');

  // A phone: one column, no sideways scrolling, still clean.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${daemon}/console#/conversation/${conversation}`);
  await until('the conversation page at 390 px', async () => (await page.textContent('#main')).includes(note));
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 391), 'no horizontal scroll at 390 px');
  await axe(page, 'the conversation page at 390 px');
  await shot(page, 'conversation-390x844');
  await page.click('#nav a[data-route=kpis]');
  await page.waitForSelector('section.team');
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 391), 'no horizontal scroll on the KPIs');
  await axe(page, 'the KPIs at 390 px');
  await page.click('#nav a[data-route=agents]');
  await page.waitForSelector('#agents');
  await axe(page, 'the agents at 390 px');
  await shot(page, '390x844');

  assert.deepEqual(problems, [], 'no console error');
  result.axe = axeCounts;
  console.log(`RESULT ${JSON.stringify(result)}`);
} finally {
  clearTimeout(deadline);
  await browser.close();
}
