// Helpers of the web-chat browser scenario (webchat.mjs): waiting, reading the widget's state
// and transcript, acting as the visitor, the visitor's network, and axe-core. No daemon settings
// here: those stay in webchat.mjs. Env: SB_TIMEOUT_MS (per wait, default 15000).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const T = Number(process.env.SB_TIMEOUT_MS || 15000);
/** States of a visitor's message the server took. */
export const ACKED = ['sent', 'delivered', 'read'];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; fails naming `what` and the last value seen. */
export async function until(what, fn, timeout = T) {
  const end = Date.now() + timeout;
  let last, lastErr;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > end) {
      const seen = lastErr ? `last error: ${lastErr.message}` : `last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (${seen})`);
    }
    await sleep(100);
  }
}

/** The widget's transcript as rendered: one object per list item, in DOM order. */
export function transcript(page) {
  return page.locator('[data-testid=messages] [data-testid=message]').evaluateAll((els) => els.map((el) => ({
    kind: el.dataset.kind,
    seq: el.dataset.seq ? Number(el.dataset.seq) : null,
    clientId: el.dataset.clientId || null,
    state: el.dataset.state || null,
    text: (el.querySelector('[data-testid=text]') || {}).textContent ?? null,
    author: (el.querySelector('[data-testid=author]') || {}).textContent ?? null,
  })));
}
export const texts = (items, kinds) => items.filter((i) => kinds.includes(i.kind)).map((i) => i.text);
export const count = (items, kind, text) => items.filter((i) => i.kind === kind && i.text === text).length;
export const widgetState = (page) => page.evaluate(() => window.SwitchboardChat.debug.state());
/** data-testid of the element focused inside the widget (or the page's focused tag). */
export const focused = (page) => page.evaluate(() => {
  const root = document.querySelector('[data-testid=widget]');
  const a = root && root.shadowRoot ? root.shadowRoot.activeElement : document.activeElement;
  return a ? a.getAttribute('data-testid') || a.tagName : null;
});
/** Whether the element is entirely inside the viewport. */
export async function inView(page, testid) {
  const b = await page.locator(`[data-testid=${testid}]`).first().boundingBox();
  const v = page.viewportSize();
  return !!b && b.x >= 0 && b.y >= 0 && b.x + b.width <= v.width + 0.5 && b.y + b.height <= v.height + 0.5;
}
/** axe-core's default rules on the whole page (the widget's open shadow root included): no
 *  serious or critical violation, in the state the widget is in (`state` names it). */
export async function axe(page, state) {
  if (!(await page.evaluate(() => !!window.axe))) await page.addScriptTag({ content: AXE_SOURCE });
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}, ${v.nodes.length}): ${v.nodes.slice(0, 3).map((n) => JSON.stringify(n.target)).join(' ')}`));
  assert.deepEqual(violations, [], `axe-core: serious or critical violations with ${state}: ${violations.join('; ')}`);
}

export async function openWidget(page) {
  await page.locator('[data-testid=launcher]').waitFor({ state: 'visible', timeout: T });
  const open = await page.locator('[data-testid=panel]').isVisible();
  if (!open) await page.locator('[data-testid=launcher]').click();
  await page.locator('[data-testid=panel]').waitFor({ state: 'visible', timeout: T });
}
export async function send(page, text) {
  const input = page.locator('[data-testid=input]');
  await input.fill(text);
  await input.press('Enter');
  await until(`the input to clear after sending ${JSON.stringify(text)}`, async () => (await input.inputValue()) === '');
}
/** Waits until exactly one customer message with `text` exists and its state is acked. */
export function waitAcked(page, text) {
  return until(`customer message ${JSON.stringify(text)} to be shown once and acked`, async () => {
    const mine = (await transcript(page)).filter((i) => i.kind === 'customer' && i.text === text);
    return mine.length === 1 && ACKED.includes(mine[0].state) && mine[0];
  });
}

/** A visitor's network, to take away and give back: HTTP through setOffline, and the chat's
 *  WebSockets through a route that passes them to the daemon while up and closes them (the open
 *  ones and every new attempt) while down, since Chromium's offline emulation leaves open
 *  WebSockets alone. Set up before the context's first page. */
export async function network(context) {
  let up = true;
  const open = [];
  await context.routeWebSocket(/\/chat\/ws$/, (ws) => {
    if (!up) return ws.close({ code: 1001, reason: 'network down' });
    ws.connectToServer();
    open.push(ws);
  });
  return {
    async down() {
      up = false;
      await context.setOffline(true);
      for (const ws of open.splice(0)) await ws.close({ code: 1001, reason: 'network down' }).catch(() => {});
    },
    async up() {
      up = true;
      await context.setOffline(false);
    },
  };
}
/** localStorage of the page's origin: every key of the widget's outbox with what waits in it. */
export function storedOutbox(page) {
  return page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('switchboard.chat.')).map((k) => {
    const v = JSON.parse(localStorage.getItem(k));
    const done = new Set(v.done || []);
    return { key: k, waiting: (v.outbox || v.items || []).filter((i) => !done.has(i.client_id)).map((i) => i.text) };
  }).filter((k) => k.waiting.length));
}
