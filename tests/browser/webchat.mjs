// Browser end-to-end scenario of the web chat: the widget in headless Chromium against a running
// daemon, with the agent acting through the agent API. Started by a Rust test that has already
// started NATS, the daemon and the pages. Exit code 0 only if every step passed.
//
// Env: SB_DAEMON_URL, SB_PAGE_URL (allowed origin), SB_BAD_PAGE_URL (origin not allowed),
//      SB_SIGNED_PAGE_URL (allowed origin, a signed-in user "Olga" whose name and email the page supplies),
//      SB_PROXIED_PAGE_URL (allowed origin, the widget through a proxy that refuses WebSocket upgrades),
//      SB_AGENT_TOKEN (agent `anna`), SB_AGENT_INBOX_URL (JSON array of what anna's webhook got),
//      SB_OUTPUT_DIR (screenshots). Optional: CHROMIUM (default /usr/bin/chromium),
//      SB_AGENT_NAME (name the widget must show, default "Anna"), SB_TIMEOUT_MS (per wait,
//      default 15000), SB_TOTAL_TIMEOUT_MS (whole run, default 240000).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  ACKED, sleep, until, transcript, texts, count, widgetState, focused, inView, axe, openWidget, send, waitAcked, network, storedOutbox,
} from './widget-helpers.mjs';

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`webchat.mjs: environment variable ${name} is not set`);
    process.exit(2);
  }
  return v;
}
const DAEMON = need('SB_DAEMON_URL').replace(/\/$/, '');
const PAGE = need('SB_PAGE_URL');
const BAD_PAGE = need('SB_BAD_PAGE_URL');
const SIGNED_PAGE = need('SB_SIGNED_PAGE_URL');
const PROXIED_PAGE = need('SB_PROXIED_PAGE_URL');
const AGENT_TOKEN = need('SB_AGENT_TOKEN');
const INBOX = need('SB_AGENT_INBOX_URL');
const OUT = need('SB_OUTPUT_DIR');
const AGENT_NAME = process.env.SB_AGENT_NAME || 'Anna';
const T = Number(process.env.SB_TIMEOUT_MS || 15000);
const TOTAL = Number(process.env.SB_TOTAL_TIMEOUT_MS || 240000);
fs.mkdirSync(OUT, { recursive: true });

const FIRST = 'Hello, my order is late';
const REPLY = 'Hi, this is Anna';
const AWAY = 'while you were away';
const XSS_IN = '<img src=x onerror="window.__xss=1">';
const XSS_OUT = '<b>bold</b><script>window.__xss=2</script>';
const TAB_FIRST = 'Tab A here: is my parcel insured?';
const TAB_B = 'Written in tab B while offline';
const TAB_A = 'Written in tab A while offline';
// Over the daemon's max_text_bytes (8 KiB by default), under its frame limit.
const LONG = `Too long: ${'x'.repeat(9000)}`;
const SHORT = 'The short version';
// Over the daemon's frame limit (its smallest accepted: 6 x 8 KiB + 16 KiB), sent by a widget that
// was not told the limits.
const OVERSIZED = `Oversized: ${'y'.repeat(70000)}`;
// At the text limit, all of it characters JSON escapes (each `"` becomes 2 bytes in the frame).
const QUOTES = '"'.repeat(8192);
const AFTER_OVERSIZED = 'Sent right after the oversized one';
const SIGNED_TEXT = 'Signed in: where is my order?';
const KEYS_TEXT = 'Typed with the keyboard only';
const NPS_TEXT = 'Which plan would you recommend for a team of five?';
// A rule sends it to the L0 bot, which has an article for it in config/kb.
const KB_QUESTION = 'How do I return an item?';
const LINK_REPLY = 'Track it at https://example.com/track?id=1, or not: javascript:alert(1)';
const BUSY_TEXT = 'Written while the chat was busy';
const WS_URL = `${DAEMON.replace(/^http/, 'ws')}/chat/ws`;

// ---------- helpers that need the daemon (the others are in widget-helpers.mjs) ----------
/** Agent API command as anna; answers the parsed JSON, fails on anything but 200/202. */
async function agent(conversationId, action) {
  const res = await fetch(`${DAEMON}/v1/agent/commands`, {
    method: 'POST',
    headers: { authorization: `Bearer ${AGENT_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ conversation_id: conversationId, action }),
  });
  const text = await res.text();
  assert.ok(res.status === 200 || res.status === 202,
    `agent API ${JSON.stringify(action)} on ${conversationId}: HTTP ${res.status} ${text}`);
  return JSON.parse(text);
}

/** What anna's helpdesk webhook received, normalised and de-duplicated by delivery id
 *  (the webhook is at-least-once: a retried POST carries the same id). */
async function deliveries() {
  const res = await fetch(INBOX);
  assert.equal(res.status, 200, `GET ${INBOX}: HTTP ${res.status}`);
  const raw = await res.json();
  assert.ok(Array.isArray(raw), `agent inbox is not a JSON array: ${JSON.stringify(raw).slice(0, 200)}`);
  const seen = new Set();
  const out = [];
  for (const d of raw) {
    if (d.id && seen.has(d.id)) continue;
    if (d.id) seen.add(d.id);
    // The daemon posts the `AgentDelivery` as serialised ({"type":"offer"|"message"|"update"});
    // a {"schema":"offer/1"} form is accepted as well.
    const kind = d.schema ? String(d.schema).split('/')[0] : d.type;
    let texts = [];
    if (kind === 'offer') texts = (d.history || []).filter((h) => h.from === 'customer').map((h) => h.text);
    if (kind === 'message' && d.entry && d.entry.from === 'customer') texts = [d.entry.text];
    out.push({ kind, id: d.id, conversation_id: d.conversation_id, texts });
  }
  return out;
}
/** Customer texts delivered to anna as message/1 for a conversation, in order. */
async function messageTexts(conv) {
  return (await deliveries()).filter((d) => d.kind === 'message' && d.conversation_id === conv).flatMap((d) => d.texts);
}

// ---------- run ----------
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const deadline = setTimeout(() => {
  console.log(`FAIL: the whole scenario exceeded ${TOTAL} ms`);
  process.exit(1);
}, TOTAL);

const pageErrors = [];
const consoleLines = [];
async function newPage(viewport = { width: 1280, height: 800 }) {
  return pageIn(await browser.newContext({ viewport }));
}
/** A new tab in `context` (tabs of one context share localStorage, like a visitor's tabs). */
async function pageIn(context) {
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  page.setDefaultTimeout(T);
  return page;
}

const ctx = { page: null, current: null, conv: null };
const steps = [
  ['open the widget, keyboard and ARIA basics, screenshots', async () => {
    const page = (ctx.page = ctx.current = await newPage());
    await page.goto(PAGE);
    const launcher = page.locator('[data-testid=launcher]');
    await launcher.waitFor({ state: 'visible' });
    assert.ok(await launcher.getAttribute('aria-label'), 'launcher has no aria-label');
    await launcher.click();
    await page.locator('[data-testid=panel]').waitFor({ state: 'visible' });
    const dialog = page.getByRole('dialog');
    assert.equal(await dialog.count(), 1, 'no single role=dialog');
    const labelledby = await dialog.getAttribute('aria-labelledby');
    assert.ok(labelledby, 'dialog has no aria-labelledby');
    assert.equal(await page.getByRole('log').getAttribute('aria-live'), 'polite', 'message list is not an aria-live=polite log');
    const inPanel = await page.locator('[data-testid=panel]').evaluate((p) => {
      const a = p.getRootNode().activeElement;
      return !!a && p.contains(a);
    });
    assert.ok(inPanel, `focus did not move into the panel on open (focused: ${await focused(page)})`);
    await page.keyboard.press('Escape');
    await page.locator('[data-testid=panel]').waitFor({ state: 'hidden' });
    assert.equal(await focused(page), 'launcher', 'Escape did not return focus to the launcher');
    await launcher.click();
    await page.locator('[data-testid=panel]').waitFor({ state: 'visible' });
    await page.locator('[data-testid=widget][data-state=ready]').waitFor({ state: 'attached' });
    assert.ok(await page.locator('[data-testid=offline-notice]').isHidden(),
      'the widget shows the offline notice: welcome.online was false (anna must be online within business hours)');
    // The empty panel greets the visitor.
    assert.equal(await page.locator('[data-testid=greeting]').textContent(), 'Hi! How can we help you today?');
    assert.ok(await page.locator('[data-testid=greeting]').isVisible(), 'no greeting in the empty panel');
    // Safe-area insets on the launcher and the panel (a notch, a home bar).
    const css = await page.locator('[data-testid=widget]').evaluate((w) => w.shadowRoot.querySelector('style').textContent);
    for (const side of ['bottom', 'right', 'left', 'top']) assert.ok(css.includes(`env(safe-area-inset-${side}`), `no safe-area-inset-${side}`);
    await axe(page, 'the empty panel and the pre-chat form');
    await page.screenshot({ path: path.join(OUT, 'webchat-open.png') });
  }],

  ['send a message, the agent accepts and replies', async () => {
    const { page } = ctx;
    await send(page, FIRST);
    await waitAcked(page, FIRST);
    const offer = await until(`an offer to anna with ${JSON.stringify(FIRST)}`, async () =>
      (await deliveries()).filter((d) => d.kind === 'offer' && d.texts.includes(FIRST)).pop());
    ctx.conv = offer.conversation_id;
    assert.ok(ctx.conv, 'the offer has no conversation_id');
    await agent(ctx.conv, { type: 'accept' });
    await agent(ctx.conv, { type: 'reply', text: REPLY });
    const reply = await until(`the agent's reply ${JSON.stringify(REPLY)} in the widget`, async () =>
      (await transcript(page)).find((i) => i.kind === 'agent' && i.text === REPLY));
    assert.equal(reply.author, AGENT_NAME, `agent reply shown with author ${JSON.stringify(reply.author)}`);
    await until(`the agent's name ${AGENT_NAME} in the header`, async () =>
      (await page.locator('[data-testid=agent-name]').textContent()).includes(AGENT_NAME));
    const items = await transcript(page);
    assert.ok(items.some((i) => i.kind === 'assigned'), 'no "joined" line for the assignment');
    assert.equal(count(items, 'agent', REPLY), 1, 'agent reply shown more than once');
    await until(`${JSON.stringify(FIRST)} to be marked read`, async () =>
      (await transcript(page)).find((i) => i.kind === 'customer' && i.text === FIRST)?.state === 'read');
    await axe(page, 'messages');
    await page.screenshot({ path: path.join(OUT, 'webchat-1280x800.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    const box = await page.locator('[data-testid=panel]').boundingBox();
    assert.ok(box && box.width >= 380 && box.height >= 800, `panel is not full-screen at 390x844: ${JSON.stringify(box)}`);
    // 16px at least, or iOS zooms the page into the field.
    const size = await page.locator('[data-testid=input]').evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
    assert.ok(size >= 16, `the message box's font is ${size}px on a phone`);
    assert.ok(await inView(page, 'input') && await inView(page, 'send'), 'the composer is not in view at 390x844');
    await page.screenshot({ path: path.join(OUT, 'webchat-390x844.png') });
    await page.setViewportSize({ width: 1280, height: 800 });
  }],

  ['reload: the history is shown once, in order', async () => {
    const { page } = ctx;
    await page.reload();
    await page.locator('[data-testid=widget][data-state=ready]').waitFor({ state: 'attached' });
    await page.evaluate(() => window.SwitchboardChat.open());
    await page.locator('[data-testid=panel]').waitFor({ state: 'visible' });
    const items = await until('both messages after the reload', async () => {
      const all = await transcript(page);
      return count(all, 'customer', FIRST) && count(all, 'agent', REPLY) ? all : null;
    });
    assert.deepEqual(texts(items, ['customer', 'agent']), [FIRST, REPLY], 'history after reload');
    assert.equal(items.find((i) => i.text === FIRST).state, 'read', 'state of the first message after reload');
  }],

  ['offline outbox: three messages while disconnected, resent once each after reconnect', async () => {
    const { page } = ctx;
    await page.evaluate(() => window.SwitchboardChat.debug.disconnect());
    assert.equal((await widgetState(page)).connected, false, 'still connected after debug.disconnect()');
    for (const t of ['one', 'two', 'three']) await send(page, t);
    let items = await transcript(page);
    for (const t of ['one', 'two', 'three']) {
      const m = items.filter((i) => i.kind === 'customer' && i.text === t);
      assert.equal(m.length, 1, `${t} shown ${m.length} times while disconnected`);
      assert.equal(m[0].state, 'sending', `${t} is ${m[0].state} while disconnected`);
      assert.ok(m[0].clientId, `${t} has no data-client-id`);
    }
    assert.equal((await widgetState(page)).outbox, 3, 'outbox size while disconnected');
    await agent(ctx.conv, { type: 'reply', text: AWAY });
    await page.evaluate(() => window.SwitchboardChat.debug.reconnect());
    items = await until('one, two, three acked and the reply shown after reconnect', async () => {
      const all = await transcript(page);
      const ok = ['one', 'two', 'three'].every((t) => all.some((i) => i.kind === 'customer' && i.text === t && ACKED.includes(i.state)))
        && all.some((i) => i.kind === 'agent' && i.text === AWAY);
      return ok && all;
    });
    for (const t of ['one', 'two', 'three']) assert.equal(count(items, 'customer', t), 1, `${t} shown more than once`);
    assert.equal(count(items, 'agent', AWAY), 1, `${JSON.stringify(AWAY)} shown more than once`);
    assert.deepEqual(texts(items, ['customer']), [FIRST, 'one', 'two', 'three'], 'order of the customer messages');
    const seqs = items.filter((i) => i.seq != null).map((i) => i.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'entries not in seq order');
    assert.equal(new Set(seqs).size, seqs.length, 'an entry (seq) is shown twice');
    // A message shown as sent has its seq from the ack; its entry (which moves lastSeq) follows on
    // the live feed a moment later, so wait for it rather than read lastSeq at once.
    const top = Math.max(...seqs);
    await until(`an empty outbox, a connection and lastSeq at least ${top}`, async () => {
      const s = await widgetState(page);
      return s.connected && s.outbox === 0 && s.lastSeq >= top && s;
    });
    const got = await until('one, two, three in anna\'s inbox', async () => {
      const m = await messageTexts(ctx.conv);
      return ['one', 'two', 'three'].every((t) => m.includes(t)) && m;
    });
    assert.deepEqual(got.filter((t) => ['one', 'two', 'three'].includes(t)), ['one', 'two', 'three'],
      'anna got one, two, three not exactly once each in order');
  }],

  ['markup in messages is shown as text', async () => {
    const { page } = ctx;
    await send(page, XSS_IN);
    await waitAcked(page, XSS_IN);
    await agent(ctx.conv, { type: 'reply', text: XSS_OUT });
    await until('the agent\'s markup reply as literal text', async () =>
      count(await transcript(page), 'agent', XSS_OUT) === 1);
    const tags = await page.locator('[data-testid=messages]').evaluate((l) =>
      l.querySelectorAll('img, b, script, iframe, svg image').length);
    assert.equal(tags, 0, 'the message list contains elements made from message text');
    assert.equal(await page.evaluate(() => typeof window.__xss), 'undefined', 'window.__xss was set');
    assert.equal(count(await transcript(page), 'customer', XSS_IN), 1, 'the customer markup message is not shown once as text');
    // Anna got it, and still exactly one of each earlier message (no late duplicates).
    const m = await until('the markup message in anna\'s inbox', async () => {
      const got = await messageTexts(ctx.conv);
      return got.includes(XSS_IN) && got;
    });
    for (const t of ['one', 'two', 'three', XSS_IN]) assert.equal(m.filter((x) => x === t).length, 1, `anna got ${t} more than once`);
  }],

  ['resolve: CSAT buttons, rate 5', async () => {
    const { page } = ctx;
    await agent(ctx.conv, { type: 'resolve' });
    const five = page.locator('[data-testid=csat-5]');
    await five.waitFor({ state: 'visible' });
    assert.equal(await page.locator('[data-testid=csat] button').count(), 5, 'not five CSAT buttons');
    for (let n = 1; n <= 5; n++) {
      assert.ok(await page.locator(`[data-testid=csat-${n}]`).getAttribute('aria-label'), `CSAT button ${n} has no aria-label`);
    }
    await five.click();
    await page.locator('[data-testid=csat] button').first().waitFor({ state: 'detached' });
    await until('a csat_answer entry', async () => (await transcript(page)).some((i) => i.kind === 'csat_answer'));
    await page.screenshot({ path: path.join(OUT, 'webchat-conversation.png') });
  }],

  ['keys only on a short panel (844x390): launcher, pre-chat form, message, links, typing, CSAT', async () => {
    const context = await browser.newContext({ viewport: { width: 844, height: 390 } });
    const page = (ctx.current = await pageIn(context));
    await page.goto(PAGE);
    await page.locator('[data-testid=launcher]').waitFor({ state: 'visible' });
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'launcher', 'Tab does not reach the launcher');
    await page.keyboard.press('Enter');
    await page.locator('[data-testid=widget][data-state=ready]').waitFor({ state: 'attached' });
    await page.locator('[data-testid=prechat-name]').waitFor({ state: 'visible' });
    // The form appeared once the server answered: focus is on what to fill in first.
    await until('focus on the name field', async () => (await focused(page)) === 'prechat-name');
    for (const id of ['prechat-name', 'prechat-email', 'input', 'send']) {
      assert.ok(await inView(page, id), `${id} is out of view at 844x390 with the pre-chat form`);
    }
    await axe(page, 'the pre-chat form on a short panel');
    await page.screenshot({ path: path.join(OUT, 'webchat-844x390.png') });
    // A laptop at 200% zoom: 1280x800 becomes 640x400 CSS pixels.
    await page.setViewportSize({ width: 640, height: 400 });
    for (const id of ['prechat-name', 'input', 'send']) assert.ok(await inView(page, id), `${id} is out of view at 640x400`);
    await page.setViewportSize({ width: 844, height: 390 });
    const size = await page.locator('[data-testid=prechat-name]').evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
    assert.ok(size >= 16, `the name field's font is ${size}px`);
    await page.keyboard.type('Kim');
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'prechat-email', 'Tab from the name does not reach the email');
    await page.keyboard.type('kim@example.com');
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'input', 'Tab from the email does not reach the message box');
    await page.keyboard.type(KEYS_TEXT);
    await page.keyboard.press('Enter');
    await waitAcked(page, KEYS_TEXT);
    const offer = await until(`an offer to anna with ${JSON.stringify(KEYS_TEXT)}`, async () =>
      (await deliveries()).filter((d) => d.kind === 'offer' && d.texts.includes(KEYS_TEXT)).pop());
    const conv = offer.conversation_id;
    await agent(conv, { type: 'accept' });
    await until(`the agent's name ${AGENT_NAME} in the header`, async () =>
      (await page.locator('[data-testid=agent-name]').textContent()).includes(AGENT_NAME));
    // "typing…" names the agent (the agent API's signal does not).
    const typing = await fetch(`${DAEMON}/v1/agent/typing`, {
      method: 'POST',
      headers: { authorization: `Bearer ${AGENT_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ conversation_id: conv }),
    });
    assert.equal(typing.status, 204, `POST /v1/agent/typing: HTTP ${typing.status}`);
    await until(`"${AGENT_NAME} is typing…"`, async () =>
      (await page.locator('[data-testid=typing]').textContent()) === `${AGENT_NAME} is typing…`);
    // URLs in the reply are links, only http(s), opened apart from the page.
    await agent(conv, { type: 'reply', text: LINK_REPLY });
    const reply = page.locator('[data-testid=message][data-kind=agent]').filter({ hasText: 'Track it at' });
    await reply.waitFor();
    const links = await reply.locator('a').evaluateAll((as) => as.map((a) => ({
      href: a.getAttribute('href'), rel: a.getAttribute('rel'), target: a.getAttribute('target'), text: a.textContent })));
    assert.deepEqual(links, [{ href: 'https://example.com/track?id=1', rel: 'noopener noreferrer nofollow', target: '_blank',
      text: 'https://example.com/track?id=1' }], 'the links made of the reply');
    assert.equal(await reply.locator('[data-testid=text]').textContent(), LINK_REPLY, 'the reply text changed');
    assert.equal(await reply.locator('a').evaluate((a) => getComputedStyle(a).display), 'inline', 'the link breaks the line');
    await agent(conv, { type: 'resolve' });
    await page.locator('[data-testid=csat-5]').waitFor({ state: 'visible' });
    // Which end is poor and which excellent: in the buttons' names and on screen.
    assert.match(await page.locator('[data-testid=csat-1]').getAttribute('aria-label'), /poor/i, 'button 1 does not say poor');
    assert.match(await page.locator('[data-testid=csat-5]').getAttribute('aria-label'), /excellent/i, 'button 5 does not say excellent');
    const scale = page.locator('[data-testid=csat-scale]');
    assert.ok(await scale.isVisible(), 'no visible caption of the rating scale');
    assert.match(await scale.textContent(), /Poor.*Excellent/, 'the caption does not say which end is which');
    await axe(page, 'the CSAT question');
    await page.screenshot({ path: path.join(OUT, 'webchat-844x390-csat.png') });
    // Back from the message box to the rating, and rate 4, with keys only.
    assert.equal(await focused(page), 'input', 'focus left the message box after sending');
    for (let i = 0; i < 12 && (await focused(page)) !== 'csat-5'; i++) await page.keyboard.press('Shift+Tab');
    assert.equal(await focused(page), 'csat-5', 'Shift+Tab from the message box does not reach the rating');
    await page.keyboard.press('Shift+Tab');
    assert.equal(await focused(page), 'csat-4', 'Shift+Tab does not go from 5 to 4');
    await page.keyboard.press('Enter');
    await until('the rating 4 stored', async () =>
      (await transcript(page)).some((i) => i.kind === 'csat_answer' && /4 out of 5/.test(i.text)));
    await context.close();
  }],

  ['two tabs, network down: what tab B wrote before it was closed is sent once by tab A', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const net = await network(context);
    const a = (ctx.current = await pageIn(context));
    await a.goto(PAGE);
    await openWidget(a);
    await a.locator('[data-testid=widget][data-state=ready]').waitFor({ state: 'attached' });
    await send(a, TAB_FIRST);
    await waitAcked(a, TAB_FIRST);
    const offer = await until(`an offer to anna with ${JSON.stringify(TAB_FIRST)}`, async () =>
      (await deliveries()).filter((d) => d.kind === 'offer' && d.texts.includes(TAB_FIRST)).pop());
    const conv = offer.conversation_id;
    await agent(conv, { type: 'accept' });
    const b = await pageIn(context);
    await b.goto(PAGE);
    await openWidget(b);
    await waitAcked(b, TAB_FIRST); // the same visitor: one session, one transcript
    // Both online, typing in turn: every message shown once in both tabs and stored once.
    const both = [];
    for (let i = 1; i <= 3; i++) {
      for (const [tab, name] of [[a, 'A'], [b, 'B']]) {
        both.push(`tab ${name} says ${i}`);
        await send(tab, both[both.length - 1]);
      }
    }
    for (const tab of [a, b]) for (const t of both) await waitAcked(tab, t);
    const online = await until('the messages typed in turn in anna\'s inbox', async () => {
      const m = await messageTexts(conv);
      return both.every((t) => m.includes(t)) && m;
    });
    assert.deepEqual(online.filter((t) => both.includes(t)), both, 'anna did not get the messages typed in turn once each, in order');

    await net.down();
    await until('both tabs to lose the connection', async () =>
      !(await widgetState(a)).connected && !(await widgetState(b)).connected);
    // Offline is said, visibly, not only by a state attribute.
    const notice = a.locator('[data-testid=connection-notice]');
    await notice.waitFor({ state: 'visible' });
    assert.match(await notice.textContent(), /You are offline/, 'the offline notice does not say offline');
    await axe(a, 'the offline notice');
    await send(b, TAB_B);
    await send(a, TAB_A);
    // The outbox is shared: each tab shows what the other queued, waiting to be sent.
    for (const [tab, name] of [[a, 'A'], [b, 'B']]) {
      await until(`tab ${name} to show both offline messages as sending`, async () => {
        const all = await transcript(tab);
        return [TAB_B, TAB_A].every((t) => all.some((i) => i.kind === 'customer' && i.text === t && i.state === 'sending'));
      });
    }
    await b.close();
    await net.up();
    await notice.waitFor({ state: 'hidden', timeout: 3 * T });
    // Tab A reconnects by itself and sends both, in the order they were written, once each.
    const got = await until('both offline messages in anna\'s inbox', async () => {
      const m = await messageTexts(conv);
      return [TAB_B, TAB_A].every((t) => m.includes(t)) && m;
    }, 3 * T);
    assert.deepEqual(got.filter((t) => t === TAB_B || t === TAB_A), [TAB_B, TAB_A],
      'anna did not get the two offline messages exactly once each, in the order written');
    await waitAcked(a, TAB_B);
    await waitAcked(a, TAB_A);
    await until('an empty outbox in tab A', async () => {
      const s = await widgetState(a);
      return s.connected && s.outbox === 0 && s.failed === 0;
    });
    assert.deepEqual(await storedOutbox(a), [], 'messages left waiting in localStorage');
    // A new tab of the visitor shows the conversation once, nothing pending.
    const c = (ctx.current = await pageIn(context));
    await c.goto(PAGE);
    await openWidget(c);
    const items = await until('the conversation in a new tab', async () => {
      const all = await transcript(c);
      return [TAB_FIRST, ...both, TAB_B, TAB_A].every((t) => count(all, 'customer', t) === 1) && all;
    });
    assert.deepEqual(texts(items, ['customer']), [TAB_FIRST, ...both, TAB_B, TAB_A], 'the customer messages in a new tab');
    assert.ok(items.filter((i) => i.kind === 'customer').every((i) => ACKED.includes(i.state)), 'a message is not shown as sent');
    await agent(conv, { type: 'resolve' });
    await context.close();
  }],

  ['a message that cannot be sent is marked failed, stays so after a reload, and can be retried', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const net = await network(context);
    const page = (ctx.current = await pageIn(context));
    await page.goto(PAGE);
    // A new visitor whose network goes before the chat ever connected: the widget does not know
    // the daemon's limits, so it queues a message that is too long.
    await net.down();
    await openWidget(page);
    await send(page, LONG);
    const pending = (await transcript(page)).filter((i) => i.kind === 'customer');
    assert.deepEqual(pending.map((i) => i.state), ['sending'], 'the long message is not shown as sending while offline');
    await net.up();
    const failed = page.locator('[data-testid=message][data-state=failed]');
    await failed.waitFor({ timeout: 3 * T });
    const markFailed = async () => {
      assert.equal(await failed.count(), 1, 'not one failed message');
      assert.equal(await failed.locator('[data-testid=text]').textContent(), LONG, 'the failed message is not the long one');
      assert.equal(await failed.locator('[data-testid=message-error]').textContent(), 'This message is too long.');
      assert.ok((await failed.locator('[data-testid=delivery]').textContent()).includes('Not sent'), 'no "Not sent" state');
      assert.ok(await failed.getByRole('button', { name: 'Retry' }).isVisible(), 'no Retry button on the failed message');
      assert.ok(await failed.evaluate((el) => el.closest('[aria-live]') !== null), 'the failed message is outside a live region');
    };
    await markFailed();
    assert.equal(await page.getByRole('alert').filter({ hasText: 'This message is too long.' }).count(), 1,
      'the failure is not announced (role=alert)');
    // Not silently gone: a reload still shows it failed, with its retry.
    await page.reload();
    await openWidget(page);
    await page.locator('[data-testid=widget][data-state=ready]').waitFor({ state: 'attached' });
    await failed.waitFor();
    await markFailed();
    assert.equal((await widgetState(page)).failed, 1, 'the failed message is not kept');
    // Retry puts it back into the composer; too long, it stays there to be shortened.
    await failed.getByRole('button', { name: 'Retry' }).click();
    assert.equal(await page.locator('[data-testid=input]').inputValue(), LONG, 'Retry did not give the text back');
    await until('the failed message to go', async () => (await failed.count()) === 0);
    await send(page, SHORT);
    await waitAcked(page, SHORT);
    const st = await widgetState(page);
    assert.equal(st.outbox + st.failed, 0, `something still waits: ${JSON.stringify(st)}`);
    assert.deepEqual(await storedOutbox(page), [], 'messages left waiting in localStorage');
    await context.close();
  }],

  ['a frame over the server\'s limit is answered with an error, marked failed and never sent again', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // A widget that was not told the limits (as one from before they were sent): it sends what
    // the server must refuse. Everything else passes through.
    let sockets = 0;
    await context.routeWebSocket(/\/chat\/ws$/, (ws) => {
      sockets++;
      const server = ws.connectToServer();
      ws.onMessage((m) => server.send(m));
      server.onMessage((m) => {
        const f = JSON.parse(m);
        if (f.type === 'welcome') delete f.limits;
        ws.send(JSON.stringify(f));
      });
      ws.onClose((code, reason) => server.close({ code, reason }));
      server.onClose((code, reason) => ws.close({ code, reason }));
    });
    const page = (ctx.current = await pageIn(context));
    await page.goto(PAGE);
    await openWidget(page);
    await page.locator('[data-testid=widget][data-state=ready]').waitFor({ state: 'attached' });
    // Legal: 8 KiB of characters JSON escapes fits the smallest frame limit the daemon accepts.
    await send(page, QUOTES);
    await waitAcked(page, QUOTES);
    // Queued together, so that both go out on one socket: the one after the oversized frame is
    // not read by the server, and must be sent again, not taken for the refused one.
    await page.evaluate(() => window.SwitchboardChat.debug.disconnect());
    await send(page, OVERSIZED);
    await send(page, AFTER_OVERSIZED);
    await page.evaluate(() => window.SwitchboardChat.debug.reconnect());
    const failed = page.locator('[data-testid=message][data-state=failed]');
    await failed.waitFor();
    await waitAcked(page, AFTER_OVERSIZED);
    const check = async () => {
      assert.equal(await failed.count(), 1, 'not one failed message');
      assert.ok((await failed.locator('[data-testid=text]').textContent()).startsWith('Oversized'), 'the failed message is not the oversized one');
      assert.equal(await failed.locator('[data-testid=message-error]').textContent(), 'This message is too long.');
    };
    await check();
    await page.locator('[data-testid=widget][data-state=ready]').waitFor({ state: 'attached' });
    const before = sockets;
    await sleep(1500);
    assert.equal(sockets, before, `the widget kept reconnecting (${sockets - before} sockets in 1.5 s)`);
    assert.equal((await widgetState(page)).outbox, 0, 'the oversized message is still in the outbox');
    // Not a poison item after a reload either: still failed, not sent.
    await page.reload();
    await openWidget(page);
    await page.locator('[data-testid=widget][data-state=ready]').waitFor({ state: 'attached' });
    await failed.waitFor();
    await check();
    const after = sockets;
    await sleep(1000);
    assert.equal(sockets, after, 'the widget reconnects after the reload');
    // Kept in storage as refused (shown failed, with its retry), not as waiting to be sent.
    const kept = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.includes('#out:')).map((k) => {
      const v = JSON.parse(localStorage.getItem(k));
      const settled = new Set([...(v.done || []), ...Object.keys(v.failed || {})]);
      return { waiting: (v.items || []).filter((i) => !settled.has(i.client_id)).length, failed: Object.values(v.failed || {}) };
    }));
    assert.deepEqual(kept.reduce((n, k) => n + k.waiting, 0), 0, 'the oversized message waits in localStorage to be sent');
    assert.deepEqual(kept.flatMap((k) => k.failed), ['too_large'], 'the oversized message is not kept as refused');
    await context.close();
  }],

  ['a busy address: "busy, retrying", and the chat comes by itself once sockets free up', async () => {
    // Another visitor behind the same address (an office's NAT) holds every socket it may.
    const blocker = await newPage();
    await blocker.goto(PAGE);
    const held = await blocker.evaluate(async (url) => {
      window.__held = [];
      for (let i = 0; i < 100; i++) {
        const w = new WebSocket(url);
        const ok = await new Promise((res) => {
          w.onopen = () => { w.send(JSON.stringify({ type: 'hello' })); res(true); };
          w.onerror = () => res(false);
        });
        if (!ok) return window.__held.length;
        window.__held.push(w);
      }
      return -1;
    }, WS_URL);
    assert.ok(held > 0, `the address limit was never reached (${held})`);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = (ctx.current = await pageIn(context));
    await page.goto(PAGE);
    await openWidget(page);
    const notice = page.locator('[data-testid=connection-notice]');
    await until('the busy notice', async () => (await notice.isVisible()) && /busy/.test(await notice.textContent()));
    assert.ok(await page.locator('[data-testid=refused-notice]').isHidden(), 'a busy server is shown as "not available"');
    assert.ok(await page.locator('[data-testid=input]').isEnabled(), 'the message box is disabled while busy');
    await send(page, BUSY_TEXT);
    await blocker.evaluate(() => { window.__held.forEach((w) => w.close()); });
    await waitAcked(page, BUSY_TEXT);
    await notice.waitFor({ state: 'hidden' });
    await blocker.context().close();
    await context.close();
  }],

  ['a proxy without WebSocket upgrades: "cannot reach", retried, never "not available"', async () => {
    const page = (ctx.current = await newPage());
    let sockets = 0;
    page.on('websocket', () => sockets++);
    await page.goto(PROXIED_PAGE);
    await openWidget(page);
    const notice = page.locator('[data-testid=connection-notice]');
    await until('the cannot-reach notice', async () => (await notice.isVisible()) && /Cannot reach the chat/.test(await notice.textContent()));
    await until('a second attempt', async () => sockets >= 2);
    assert.ok(await page.locator('[data-testid=refused-notice]').isHidden(), 'a proxy without upgrades is shown as "not available"');
    assert.equal(await page.locator('[data-testid=widget]').getAttribute('data-state'), 'reconnecting');
    await axe(page, 'the connection notice');
    await page.context().close();
  }],

  ['a signed-in visitor is not asked again for the name and email the site supplied', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = (ctx.current = await pageIn(context));
    await page.goto(SIGNED_PAGE);
    await openWidget(page);
    await page.locator('[data-testid=widget][data-state=ready]').waitFor({ state: 'attached' });
    assert.ok(await page.locator('[data-testid=prechat-name]').isHidden(), 'the signed-in visitor is asked for a name');
    assert.ok(await page.locator('[data-testid=prechat-email]').isHidden(), 'the signed-in visitor is asked for an email');
    assert.equal(await focused(page), 'input', 'focus is not in the message box');
    await send(page, SIGNED_TEXT);
    await waitAcked(page, SIGNED_TEXT);
    await context.close();
  }],

  ['the L0 bot answers from the knowledge base with Yes/No buttons; Yes resolves it, no survey', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = (ctx.current = await pageIn(context));
    await page.goto(PAGE);
    await openWidget(page);
    await page.locator('[data-testid=widget][data-state=ready]').waitFor({ state: 'attached' });
    await send(page, KB_QUESTION);
    await waitAcked(page, KB_QUESTION);
    const choices = page.locator('[data-testid=choices]');
    await choices.waitFor({ state: 'visible' });
    const answer = (await transcript(page)).filter((i) => i.kind === 'auto').pop();
    assert.ok(answer && answer.text.startsWith('How to return an item'), `the bot's answer: ${JSON.stringify(answer)}`);
    const labels = await choices.locator('button').evaluateAll((bs) => bs.map((b) => b.textContent));
    assert.deepEqual(labels, ['Yes', 'No, I need a person'], 'the quick replies');
    await axe(page, 'the bot\'s answer with its quick replies');
    await page.screenshot({ path: path.join(OUT, 'webchat-l0-answer.png') });
    // Keyboard: the button takes focus and Enter presses it.
    await page.locator('[data-testid=choice-0]').focus();
    await page.keyboard.press('Enter');
    await waitAcked(page, 'Yes');
    await choices.waitFor({ state: 'detached' });
    const resolved = await until('the resolution by the bot', async () =>
      (await transcript(page)).find((i) => i.kind === 'resolved'));
    assert.ok(resolved, 'no resolution line');
    assert.equal(await page.locator('[data-survey]').count(), 0, 'survey buttons after the bot resolved it');
    const line = await page.locator('[data-kind=resolved]').textContent();
    assert.doesNotMatch(line, /rate/i, `the resolution asks for a rating without a survey: ${line}`);
    assert.equal((await deliveries()).filter((d) => d.texts.includes(KB_QUESTION)).length, 0, 'anna was offered what the bot answered');
    await context.close();
  }],

  ['a team that asks NPS: buttons 0-10 named by their ends, answered with the keyboard', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = (ctx.current = await pageIn(context));
    await page.goto(PAGE);
    await openWidget(page);
    await page.locator('[data-testid=widget][data-state=ready]').waitFor({ state: 'attached' });
    await send(page, NPS_TEXT);
    await waitAcked(page, NPS_TEXT);
    const offer = await until(`an offer to anna with ${JSON.stringify(NPS_TEXT)}`, async () =>
      (await deliveries()).filter((d) => d.kind === 'offer' && d.texts.includes(NPS_TEXT)).pop());
    await agent(offer.conversation_id, { type: 'accept' });
    await agent(offer.conversation_id, { type: 'resolve' });
    await page.locator('[data-testid=nps-10]').waitFor({ state: 'visible' });
    assert.equal(await page.locator('[data-testid=csat]').count(), 0, 'CSAT buttons for a team that asks NPS');
    const labels = await page.locator('[data-testid=nps] button').evaluateAll((bs) => bs.map((b) => b.textContent));
    assert.deepEqual(labels, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10'], 'the NPS buttons');
    const group = page.locator('[data-testid=nps]');
    assert.equal(await group.getAttribute('role'), 'group');
    assert.match(await group.getAttribute('aria-label'), /0 is not at all likely, 10 is extremely likely/, 'the group does not name its ends');
    assert.match(await page.locator('[data-testid=nps-0]').getAttribute('aria-label'), /not at all likely/i, 'button 0 does not say what it means');
    assert.match(await page.locator('[data-testid=nps-10]').getAttribute('aria-label'), /extremely likely/i, 'button 10 does not say what it means');
    assert.match(await page.locator('[data-testid=nps-scale]').textContent(), /0 Not at all likely.*Extremely likely 10/, 'the caption');
    const asked = (await transcript(page)).find((i) => i.kind === 'resolved');
    assert.match(asked.text, /recommend us to a friend or colleague/, `the question: ${asked.text}`);
    const box = await group.boundingBox();
    const panel = await page.locator('[data-testid=panel]').boundingBox();
    assert.ok(box.x >= panel.x && box.x + box.width <= panel.x + panel.width, 'the NPS buttons overflow the panel');
    const [zero, ten] = [await page.locator('[data-testid=nps-0]').boundingBox(), await page.locator('[data-testid=nps-10]').boundingBox()];
    assert.equal(zero.y, ten.y, 'the scale 0-10 is broken over two lines');
    await axe(page, 'the NPS question');
    await page.screenshot({ path: path.join(OUT, 'webchat-nps.png') });
    // With keys only: from button 10 back to 9, Enter.
    await page.locator('[data-testid=nps-10]').focus();
    await page.keyboard.press('Shift+Tab');
    assert.equal(await focused(page), 'nps-9', 'Shift+Tab does not go from 10 to 9');
    await page.keyboard.press('Enter');
    await page.locator('[data-testid=nps] button').first().waitFor({ state: 'detached' });
    await until('the answer 9 stored', async () =>
      (await transcript(page)).some((i) => i.kind === 'survey_answer' && /9 out of 10/.test(i.text)));
    await context.close();
  }],

  ['a page on an origin that is not allowed gets "not available"', async () => {
    const page = (ctx.current = await newPage());
    let sockets = 0;
    page.on('websocket', () => sockets++);
    await page.goto(BAD_PAGE);
    await openWidget(page);
    await page.locator('[data-testid=widget][data-state=refused]').waitFor({ state: 'attached' });
    await page.locator('[data-testid=refused-notice]').waitFor({ state: 'visible' });
    assert.equal(sockets, 1, `the widget tried ${sockets} sockets before it knew this site is refused`);
    assert.ok(await page.locator('[data-testid=connection-notice]').isHidden(), 'a refused site is shown as a connection problem');
    assert.ok(await page.locator('[data-testid=input]').isDisabled(), 'input enabled on a refused widget');
    assert.ok(await page.locator('[data-testid=send]').isDisabled(), 'send button enabled on a refused widget');
    const st = await widgetState(page);
    assert.equal(st.connected, false, 'refused widget reports connected');
    await page.screenshot({ path: path.join(OUT, 'webchat-refused.png') });
    // It stopped retrying: no new socket within an observation window longer than the first
    // back-offs (0.5 s, then 1 s, ±25 %).
    const before = sockets;
    await sleep(2000);
    assert.equal(sockets, before, `the refused widget kept opening sockets (${sockets - before} more in 2 s)`);
    assert.equal((await transcript(page)).length, 0, 'something was shown in a refused widget');
  }],
];

let passed = 0;
let failed = 0;
const started = Date.now();
for (const [i, [name, fn]] of steps.entries()) {
  const t0 = Date.now();
  try {
    await fn();
    if (pageErrors.length) throw new Error(`uncaught error in the page: ${pageErrors.join(' | ')}`);
    passed++;
    console.log(`ok ${i + 1} - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`not ok ${i + 1} - ${name} (${Date.now() - t0} ms)\n  ${String(e.message).split('\n').join('\n  ')}`);
    if (ctx.current) {
      await ctx.current.screenshot({ path: path.join(OUT, `webchat-failed-step${i + 1}.png`) }).catch(() => {});
      const items = await transcript(ctx.current).catch(() => null);
      const short = (t) => (t && t.length > 80 ? `${t.slice(0, 80)}… (${t.length} chars)` : t);
      if (items) console.log(`  transcript: ${JSON.stringify(items.map((i) => ({ ...i, text: short(i.text) })))}`);
    }
    console.log(`  last browser console lines:\n    ${consoleLines.slice(-15).join('\n    ')}`);
    break;
  }
}
clearTimeout(deadline);
await browser.close();
const skipped = steps.length - passed - failed;
console.log(`total ${Date.now() - started} ms`);
console.log(`webchat: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed || skipped ? 1 : 0);
