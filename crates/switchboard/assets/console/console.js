// The supervisor's console: plain ES module, no dependencies. Every string from outside (names,
// notes, texts, reasons) goes into the page as text (textContent, attributes), never as markup.
import { STRINGS } from './i18n.js';

const TOKEN_KEY = 'switchboard.console.token';
const LANG_KEY = 'switchboard.console.lang';
const SVG = 'http://www.w3.org/2000/svg';

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  lang: pickLanguage(),
  queue: null, // { queue, unavailable, now } and `received` (performance.now() at arrival)
  agents: null,
  kpis: null,
  stream: null, // the AbortController of the open stream
  retry: 0,
};

function pickLanguage() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved && STRINGS[saved]) return saved;
  return (navigator.language || 'en').toLowerCase().startsWith('ru') ? 'ru' : 'en';
}

/** A string of the current language, `{name}` replaced by `vars.name`. */
function t(key, vars = {}) {
  const text = STRINGS[state.lang][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** An element: attributes set as attributes, children appended (strings as text). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return append(el, children);
}

const main = () => document.getElementById('main');

function announce(text) {
  const live = document.getElementById('live');
  live.textContent = '';
  // A fresh text node is what screen readers notice.
  setTimeout(() => { live.textContent = text; }, 50);
}

// ---- time --------------------------------------------------------------------------------

function duration(ms) {
  const secs = Math.floor(Math.abs(ms) / 1000);
  let text;
  if (secs < 60) text = t('time.s', { n: secs });
  else if (secs < 3600) text = t('time.m', { m: Math.floor(secs / 60), s: String(secs % 60).padStart(2, '0') });
  else text = t('time.h', { h: Math.floor(secs / 3600), m: String(Math.floor((secs % 3600) / 60)).padStart(2, '0') });
  return ms < 0 ? t('time.over', { t: text }) : text;
}

/** The server's time now, from the last queue snapshot's clock. */
function serverNow() {
  if (!state.queue) return Date.now();
  return state.queue.now + (performance.now() - state.queue.received);
}

function stamp(ms) {
  if (!ms) return '–';
  return new Date(ms).toLocaleString(state.lang === 'ru' ? 'ru-RU' : 'en-GB', { timeZone: 'UTC', dateStyle: 'short', timeStyle: 'medium' }) + ' UTC';
}

/** `ok`, `at_risk` (under 20 % of the SLA target or 5 minutes left) or `breached`. */
function risk(item, now) {
  const left = item.sla_deadline - now;
  const target = item.sla_deadline - item.waiting_since;
  if (left < 0) return 'breached';
  if (left < 0.2 * target || left < 5 * 60 * 1000) return 'at_risk';
  return 'ok';
}

// ---- API ---------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (response.status === 401) { signOut(t('signin.expired')); }
  return { status: response.status, data };
}

/** Sends a command and says what became of it in `out`. */
async function command(body, what, out) {
  out.textContent = t('actions.sending');
  const { status, data } = await api('POST', '/v1/agent/commands', body);
  if (status === 200) out.textContent = t('actions.done', { what });
  else if (status === 202) out.textContent = t('actions.queued', { what });
  else out.textContent = t('actions.refused', { reason: data?.error || `HTTP ${status}` });
  out.dataset.outcome = status === 200 ? 'done' : status === 202 ? 'queued' : 'refused';
  return status === 200 || status === 202;
}

// ---- the live stream ---------------------------------------------------------------------

function setConnection(which) {
  const conn = document.getElementById('conn');
  conn.dataset.state = which;
  conn.textContent = t(`conn.${which}`);
}

function openStream() {
  state.stream?.abort();
  const controller = new AbortController();
  state.stream = controller;
  setConnection(state.retry ? 'retry' : 'connecting');
  readStream(controller).catch(() => {}).finally(() => {
    if (controller.signal.aborted || !state.token) return;
    state.retry += 1;
    setConnection('retry');
    setTimeout(() => { if (state.stream === controller && state.token) openStream(); }, Math.min(30_000, 500 * 2 ** Math.min(state.retry, 6)));
  });
}

async function readStream(controller) {
  const response = await fetch('/v1/console/stream', {
    headers: { Authorization: `Bearer ${state.token}`, Accept: 'text/event-stream' },
    signal: controller.signal,
    cache: 'no-store',
  });
  if (response.status === 401 || response.status === 403) {
    signOut(t('signin.expired'));
    return;
  }
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
  state.retry = 0;
  setConnection('live');
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) received(name, JSON.parse(data.join('\n')));
    }
  }
}

function received(name, data) {
  if (name === 'queue') {
    state.queue = { ...data, received: performance.now() };
    if (route().view === 'queue') renderQueue();
    announce(t('live.queue', { n: data.queue.length }));
  } else if (name === 'agents') {
    state.agents = data;
    if (route().view === 'agents') renderAgents();
  } else if (name === 'kpis') {
    state.kpis = data;
    if (route().view === 'kpis') renderKpis();
  }
}

// ---- routing -----------------------------------------------------------------------------

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const view = ['queue', 'agents', 'kpis', 'conversation', 'agent'].includes(parts[0]) ? parts[0] : 'queue';
  return { view, id: parts[1] };
}

function render() {
  applyStatic();
  if (!state.token) { renderSignIn(); return; }
  const { view, id } = route();
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.route === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (view === 'agents') renderAgents();
  else if (view === 'kpis') { renderKpis(); refreshKpis(); }
  else if (view === 'conversation') renderConversation(id);
  else if (view === 'agent') renderAgent(id);
  else renderQueue();
}

/** The page's fixed strings, language and signed-in controls. */
function applyStatic() {
  document.documentElement.lang = state.lang;
  document.getElementById('lang').value = state.lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-label]')) el.setAttribute('aria-label', t(el.dataset.i18nLabel));
  document.getElementById('nav').hidden = !state.token;
  document.getElementById('signout').hidden = !state.token;
  const conn = document.getElementById('conn');
  conn.hidden = !state.token;
  conn.textContent = t(`conn.${conn.dataset.state || 'off'}`);
}

/** Replaces the main area with `content`, titled `title`; keeps focus on a control that is still there. */
function show(title, ...content) {
  const focused = document.activeElement?.dataset?.key;
  const area = main();
  area.replaceChildren(h('h1', { id: 'view-title' }, title), ...content.filter((c) => c !== null && c !== undefined && c !== false));
  document.title = `${title} · ${t('title')}`;
  if (focused) area.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

// ---- sign-in -----------------------------------------------------------------------------

function renderSignIn(message) {
  const error = h('p', { id: 'signin-error', class: 'error', role: 'alert' }, message || '');
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false', 'aria-describedby': 'signin-help signin-error' });
  const form = h('form', { class: 'card narrow', onsubmit: (e) => { e.preventDefault(); signIn(input.value.trim(), error); } },
    h('p', { id: 'signin-help' }, t('signin.help')),
    h('label', { for: 'token' }, t('signin.token')),
    input,
    h('button', { type: 'submit' }, t('signin.submit')),
    error);
  show(t('signin.title'), form);
  input.focus();
}

async function signIn(token, error) {
  if (!token) return;
  error.textContent = '';
  let response;
  try {
    response = await fetch('/v1/console/kpis', { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
  } catch (e) {
    error.textContent = t('signin.failed', { reason: e.message });
    return;
  }
  if (response.status === 401) { error.textContent = t('signin.unknown'); return; }
  if (response.status === 403) { error.textContent = t('signin.forbidden'); return; }
  if (!response.ok) { error.textContent = t('signin.failed', { reason: `HTTP ${response.status}` }); return; }
  state.token = token;
  state.kpis = await response.json();
  sessionStorage.setItem(TOKEN_KEY, token);
  openStream();
  if (route().view !== 'queue' || location.hash !== '#/queue') location.hash = '#/queue';
  render();
  main().focus();
}

function signOut(message) {
  state.stream?.abort();
  state.stream = null;
  state.token = null;
  state.queue = state.agents = state.kpis = null;
  sessionStorage.removeItem(TOKEN_KEY);
  setConnection('off');
  applyStatic();
  renderSignIn(message);
}

// ---- the queue ---------------------------------------------------------------------------

function table(caption, columns, rows, attrs = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows)));
}

/** A cell that carries its column's name for the narrow layout. */
function td(label, ...content) {
  return h('td', { 'data-label': label }, ...content);
}

function conversationLink(id, text, key) {
  return h('a', { href: `#/conversation/${encodeURIComponent(id)}`, 'data-key': key }, text);
}

function renderQueue() {
  const q = state.queue;
  if (!q) { show(t('queue.title'), h('p', {}, t('queue.loading'))); return; }
  const now = serverNow();
  const risks = q.queue.map((item) => risk(item, now));
  const summary = h('p', { id: 'queue-summary', class: 'summary' },
    t('queue.summary', { n: q.queue.length, risk: risks.filter((r) => r !== 'ok').length }));
  const warning = q.unavailable.length ? h('p', { class: 'warning', role: 'alert' }, t('queue.unavailable', { groups: q.unavailable.join(', ') })) : null;
  if (!q.queue.length) { show(t('queue.title'), summary, warning, h('p', { class: 'empty' }, t('queue.empty'))); return; }
  const cols = ['col.position', 'col.conversation', 'col.priority', 'col.team', 'col.tier', 'col.channel', 'col.waiting', 'col.sla', 'col.state'].map((k) => t(k));
  const rows = q.queue.map((item, i) => {
    const r = risks[i];
    return h('tr', { class: `risk-${r}`, 'data-conversation': item.conversation_id },
      td(cols[0], String(i + 1)),
      td(cols[1], conversationLink(item.conversation_id, item.code || item.conversation_id.slice(0, 8), `q-${item.conversation_id}`)),
      td(cols[2], String(item.priority)),
      td(cols[3], item.team),
      td(cols[4], item.tier),
      td(cols[5], item.channel),
      td(cols[6], h('span', { 'data-since': item.waiting_since }, duration(now - item.waiting_since))),
      td(cols[7], h('span', { 'data-deadline': item.sla_deadline }, duration(item.sla_deadline - now))),
      td(cols[8], h('span', { class: 'risk', 'data-risk': r }, t(`risk.${r}`))));
  });
  show(t('queue.title'), summary, warning, table(t('queue.caption'), cols, rows, { id: 'queue' }));
}

/** Every second: waiting times, SLA time left and risk, in place (no re-render, focus kept). */
function tick() {
  if (!state.token || route().view !== 'queue' || !state.queue) return;
  const now = serverNow();
  for (const el of main().querySelectorAll('[data-since]')) el.textContent = duration(now - Number(el.dataset.since));
  for (const el of main().querySelectorAll('[data-deadline]')) el.textContent = duration(Number(el.dataset.deadline) - now);
  for (const row of main().querySelectorAll('tr[data-conversation]')) {
    const item = state.queue.queue.find((i) => i.conversation_id === row.dataset.conversation);
    if (!item) continue;
    const r = risk(item, now);
    const badge = row.querySelector('.risk');
    if (badge.dataset.risk !== r) {
      row.className = `risk-${r}`;
      badge.dataset.risk = r;
      badge.textContent = t(`risk.${r}`);
    }
  }
}

// ---- agents ------------------------------------------------------------------------------

function renderAgents() {
  const a = state.agents;
  if (!a) { show(t('agents.title'), h('p', {}, t('agents.loading'))); return; }
  const warning = a.unavailable.length ? h('p', { class: 'warning', role: 'alert' }, t('queue.unavailable', { groups: a.unavailable.join(', ') })) : null;
  if (!a.agents.length) { show(t('agents.title'), warning, h('p', { class: 'empty' }, t('agents.empty'))); return; }
  const now = Date.now();
  const cols = ['col.agent', 'col.status', 'col.since', 'col.load', 'col.by_channel', 'col.conversations', 'col.teams'].map((k) => t(k));
  const rows = a.agents.map((agent) => h('tr', { 'data-agent': agent.id },
    td(cols[0], h('a', { href: `#/agent/${encodeURIComponent(agent.id)}`, 'data-key': `a-${agent.id}` }, agent.name ? `${agent.name} (${agent.id})` : agent.id)),
    td(cols[1], h('span', { class: `status status-${agent.status}` }, t(`status.${agent.status}`))),
    td(cols[2], agent.status_since ? duration(now - agent.status_since) : '–'),
    td(cols[3], `${agent.load} / ${agent.max_total}`),
    td(cols[4], Object.entries(agent.load_by_channel).map(([k, n]) => `${k} ${n}`).join(', ') || '–'),
    td(cols[5], agent.conversations.length
      ? h('ul', { class: 'inline' }, agent.conversations.map((c) => h('li', {}, conversationLink(c.id, `${c.id.slice(0, 8)} (${c.channel})`))))
      : '–'),
    td(cols[6], agent.teams.join(', '))));
  show(t('agents.title'), warning, table(t('agents.caption'), cols, rows, { id: 'agents' }));
}

// ---- KPIs --------------------------------------------------------------------------------

const share = (v) => (v === null || v === undefined ? null : `${(v * 100).toFixed(1)} %`);

function verdict(ok) {
  if (ok === null) return h('span', { class: 'verdict none' }, t('kpi.none'));
  return h('span', { class: ok ? 'verdict met' : 'verdict missed' }, t(ok ? 'kpi.met' : 'kpi.missed'));
}

function chart(team, hours) {
  const w = 240, hgt = 60, pad = 6;
  const max = Math.max(1, ...hours.map((p) => p.opened));
  const step = hours.length > 1 ? (w - 2 * pad) / (hours.length - 1) : 0;
  const points = hours.map((p, i) => `${(pad + i * step).toFixed(1)},${(hgt - pad - (p.opened / max) * (hgt - 2 * pad)).toFixed(1)}`);
  const id = `chart-${team.replace(/[^a-z0-9_-]/gi, '_')}`;
  const values = hours.map((p) => `${new Date(p.at).getUTCHours()}:00 ${p.opened}`).join(', ');
  return h('figure', { class: 'chart' },
    svg('svg', { viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: 'none', role: 'img', 'aria-labelledby': `${id}-t ${id}-d`, class: 'spark' },
      svg('title', { id: `${id}-t` }, t('chart.title', { n: hours.length })),
      svg('desc', { id: `${id}-d` }, t('chart.desc', { team, values })),
      svg('line', { x1: pad, y1: hgt - pad, x2: w - pad, y2: hgt - pad, class: 'axis' }),
      svg('polyline', { points: points.join(' '), class: 'line' })),
    h('figcaption', {}, t('chart.title', { n: hours.length }), ' ', t('chart.peak', { n: Math.max(0, ...hours.map((p) => p.opened)) })));
}

/** Today's KPIs now, rather than at the stream's next `kpis` event. */
async function refreshKpis() {
  const { status, data } = await api('GET', '/v1/console/kpis');
  if (status === 200 && state.token) {
    state.kpis = data;
    if (route().view === 'kpis') renderKpis();
  }
}

function renderKpis() {
  const k = state.kpis;
  if (!k) { show(t('kpis.title'), h('p', {}, t('kpis.loading'))); return; }
  const since = new Date(k.since).toISOString().slice(0, 16).replace('T', ' ');
  const intro = h('p', {}, t('kpis.since', { time: since }));
  const notLive = k.live ? null : h('p', { class: 'warning' }, t('kpis.not_live'));
  const tg = k.targets;
  const cols = ['col.kpi', 'col.today', 'col.target', 'col.verdict'].map((c) => t(c));
  const sections = k.teams.map((team) => {
    const rows = [
      ['kpi.frt', team.frt_p90_secs === null ? null : duration(team.frt_p90_secs * 1000), `≤ ${duration(tg.frt_p90_secs * 1000)}`, team.frt_p90_secs === null ? null : team.frt_p90_secs <= tg.frt_p90_secs],
      ['kpi.sla', share(team.sla), `≥ ${share(tg.sla)}`, team.sla === null ? null : team.sla >= tg.sla],
      ['kpi.fcr', share(team.fcr), `≥ ${share(tg.fcr)}`, team.fcr === null ? null : team.fcr >= tg.fcr],
      ['kpi.csat', share(team.csat), `≥ ${share(tg.csat)}`, team.csat === null ? null : team.csat >= tg.csat],
      ['kpi.backlog', String(team.backlog), `≤ ${tg.backlog}`, team.backlog <= tg.backlog],
      ['kpi.opened', String(team.opened), '–', undefined],
    ];
    if (team.l0_deflection !== null) rows.push(['kpi.l0', share(team.l0_deflection), '–', undefined]);
    const body = rows.map(([key, value, target, ok]) => h('tr', {},
      h('th', { scope: 'row' }, t(key)),
      td(cols[1], value ?? '–'),
      td(cols[2], target),
      td(cols[3], ok === undefined ? '–' : verdict(ok))));
    return h('section', { class: 'card team', 'aria-labelledby': `team-${team.team}` },
      h('h2', { id: `team-${team.team}` }, team.team),
      h('div', { class: 'table-wrap' }, h('table', { class: 'kpis' },
        h('caption', {}, t('kpis.caption', { team: team.team })),
        h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, body))),
      chart(team.team, team.hours));
  });
  show(t('kpis.title'), intro, notLive, h('div', { class: 'teams' }, sections));
}

// ---- a conversation ----------------------------------------------------------------------

function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '').flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

async function renderConversation(id) {
  show(t('conv.title', { code: id.slice(0, 8) }), h('p', {}, t('conv.loading')));
  const [record, explanation] = await Promise.all([
    api('GET', `/v1/conversations/${encodeURIComponent(id)}`),
    api('GET', `/v1/conversations/${encodeURIComponent(id)}/explain`),
  ]);
  if (route().view !== 'conversation' || route().id !== id || !state.token) return;
  const back = h('p', {}, h('a', { href: '#/queue' }, t('conv.back')));
  if (record.status !== 200) {
    const reason = record.status === 404 ? t('conv.not_found') : t('conv.error', { reason: record.data?.error || `HTTP ${record.status}` });
    show(t('conv.title', { code: id.slice(0, 8) }), back, h('p', { class: 'error', role: 'alert' }, reason));
    return;
  }
  const r = record.data;
  const code = state.queue?.queue.find((i) => i.conversation_id === id)?.code || id.slice(0, 8);
  const summary = h('section', { 'aria-labelledby': 'conv-summary' },
    h('h2', { id: 'conv-summary' }, t('conv.summary')),
    dl([
      [t('conv.state'), r.state], [t('col.team'), r.team], [t('col.tier'), r.tier], [t('col.priority'), String(r.priority)],
      [t('col.agent'), r.agent], [t('col.channel'), r.channel], [t('conv.customer'), r.customer?.name || r.customer?.id],
      [t('conv.subject'), r.subject], [t('conv.opened'), stamp(r.opened_at)], [t('conv.deadline'), stamp(r.sla_deadline)],
    ]));
  const entries = (r.history || []).map((e) => h('li', { class: `entry from-${e.from}` },
    h('p', { class: 'meta' },
      h('span', { class: 'who' }, t(`author.${e.from}`)),
      e.author ? ` · ${e.author}` : '', ` · ${stamp(Date.parse(e.at))}`),
    h('p', { class: 'text' }, e.text)));
  const history = h('section', { 'aria-labelledby': 'conv-history' },
    h('h2', { id: 'conv-history' }, t('conv.history')),
    entries.length ? h('ol', { class: 'history', id: 'history' }, entries) : h('p', {}, t('conv.no_history')));
  show(t('conv.title', { code }), back, h('div', { class: 'columns' },
    h('div', {}, summary, history, explainSection(explanation)),
    actionsSection(id, r)));
}

function explainSection({ status, data }) {
  const title = h('h2', { id: 'conv-explain' }, t('explain.title'));
  if (status !== 200) {
    return h('section', { 'aria-labelledby': 'conv-explain' }, title, h('p', {}, t('explain.unavailable', { reason: data?.error || `HTTP ${status}` })));
  }
  const e = data.explanation || {};
  const list = (items) => (items && items.length ? items.join(', ') : t('explain.none'));
  const cols = [t('col.agent'), t('col.verdict')];
  const rows = (e.candidates || []).map(([agent, v]) => h('tr', {}, td(cols[0], agent), td(cols[1], t(`verdict.${v}`) === `verdict.${v}` ? v : t(`verdict.${v}`))));
  return h('section', { 'aria-labelledby': 'conv-explain' }, title,
    dl([[t('explain.rules'), list(e.matched_rules)], [t('explain.skills'), list(e.skills)]]),
    rows.length ? table(t('explain.caption'), cols, rows) : null);
}

function teamNames() {
  const names = new Set((state.kpis?.teams || []).map((team) => team.team));
  for (const agent of state.agents?.agents || []) for (const team of agent.teams) names.add(team);
  return [...names].sort();
}

function actionsSection(id, record) {
  const out = h('p', { id: 'action-result', class: 'result', role: 'status' });
  const supervise = (op, note, what) => command({ conversation_id: id, action: { type: 'supervise', op, ...(note ? { note } : {}) } }, what, out)
    .then((ok) => { if (ok) setTimeout(() => { if (route().id === id) renderConversation(id); }, 600); });

  const team = h('select', { id: 'to-team', name: 'to-team' },
    h('option', { value: '' }, t('actions.no_team')),
    teamNames().filter((name) => name !== record.team).map((name) => h('option', { value: name }, name)));
  const agent = h('input', { id: 'to-agent', name: 'to-agent', type: 'text', list: 'agent-ids', autocomplete: 'off' });
  const agentIds = h('datalist', { id: 'agent-ids' }, (state.agents?.agents || []).map((a) => h('option', { value: a.id })));
  const note = h('textarea', { id: 'note', name: 'note', rows: 3, maxlength: 4000 });
  const transfer = h('form', { class: 'card', id: 'transfer-form', onsubmit: (e) => {
    e.preventDefault();
    const op = { type: 'transfer' };
    if (team.value) op.to_team = team.value;
    if (agent.value.trim()) op.to_agent = agent.value.trim();
    if (!op.to_team && !op.to_agent) { out.textContent = t('actions.transfer_needs_target'); return; }
    supervise(op, note.value.trim(), t('actions.transfer'));
  } },
  h('h3', {}, t('actions.transfer')),
  h('label', { for: 'to-team' }, t('actions.to_team')), team,
  h('label', { for: 'to-agent' }, t('actions.to_agent')), agent, agentIds,
  h('label', { for: 'note' }, t('actions.note')), note,
  h('button', { type: 'submit' }, t('actions.transfer_submit')));

  const tier = h('select', { id: 'tier', name: 'tier' }, h('option', { value: '' }, t('actions.next_tier')),
    ['L1', 'L2', 'L3', 'L4'].map((x) => h('option', { value: x }, x)));
  const escalate = h('form', { class: 'card', id: 'escalate-form', onsubmit: (e) => {
    e.preventDefault();
    supervise(tier.value ? { type: 'escalate', tier: tier.value } : { type: 'escalate' }, '', t('actions.escalate'));
  } },
  h('h3', {}, t('actions.escalate')),
  h('label', { for: 'tier' }, t('actions.tier')), tier,
  h('button', { type: 'submit' }, t('actions.escalate_submit')));

  const priority = h('input', { id: 'priority', name: 'priority', type: 'number', min: 1, max: 100, step: 1, required: true, value: record.priority });
  const prio = h('form', { class: 'card', id: 'priority-form', onsubmit: (e) => {
    e.preventDefault();
    supervise({ type: 'set_priority', priority: Number(priority.value) }, '', t('actions.priority'));
  } },
  h('h3', {}, t('actions.priority')),
  h('label', { for: 'priority' }, t('actions.priority_label')), priority,
  h('button', { type: 'submit' }, t('actions.priority_submit')));

  const resolve = h('form', { class: 'card', id: 'resolve-form', onsubmit: (e) => {
    e.preventDefault();
    supervise({ type: 'resolve' }, '', t('actions.resolve'));
  } },
  h('h3', {}, t('actions.resolve')),
  h('button', { type: 'submit', class: 'danger' }, t('actions.resolve_submit')));

  return h('section', { class: 'actions', 'aria-labelledby': 'conv-actions' },
    h('h2', { id: 'conv-actions' }, t('actions.title')), out, transfer, escalate, prio, resolve);
}

// ---- an agent ----------------------------------------------------------------------------

function parseCapacity(text) {
  const capacity = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([a-z0-9_-]{1,64})\s*=\s*(\d{1,6})$/.exec(part);
    if (!m) return null;
    capacity[m[1]] = Number(m[2]);
  }
  return capacity;
}

function renderAgent(id) {
  const back = h('p', {}, h('a', { href: '#/agents' }, t('agent.back')));
  const agent = state.agents?.agents.find((a) => a.id === id);
  if (!state.agents) { show(t('agent.title', { id }), back, h('p', {}, t('agents.loading'))); return; }
  if (!agent) { show(t('agent.title', { id }), back, h('p', { class: 'error' }, t('agent.unknown'))); return; }
  const out = h('p', { id: 'action-result', class: 'result', role: 'status' });
  const status = h('select', { id: 'status', name: 'status' }, ['online', 'away', 'offline'].map((s) => h('option', { value: s, selected: s === agent.status }, t(`status.${s}`))));
  const statusForm = h('form', { class: 'card', id: 'status-form', onsubmit: (e) => {
    e.preventDefault();
    command({ agent_id: id, action: { type: 'set_status', status: status.value } }, t('agent.set_status'), out);
  } },
  h('h2', {}, t('agent.set_status')),
  h('label', { for: 'status' }, t('agent.set_status')), status,
  h('button', { type: 'submit' }, t('agent.status_submit')));
  const total = h('input', { id: 'max-total', name: 'max-total', type: 'number', min: 1, max: 1000, required: true, value: agent.max_total });
  const perChannel = h('input', { id: 'per-channel', name: 'per-channel', type: 'text', autocomplete: 'off' });
  const capacityForm = h('form', { class: 'card', id: 'capacity-form', onsubmit: (e) => {
    e.preventDefault();
    const capacity = parseCapacity(perChannel.value);
    if (!capacity) { out.textContent = t('agent.per_channel_bad'); return; }
    command({ agent_id: id, action: { type: 'set_capacity', capacity, max_total: Number(total.value) } }, t('agent.capacity'), out);
  } },
  h('h2', {}, t('agent.capacity')),
  h('label', { for: 'max-total' }, t('agent.max_total')), total,
  h('label', { for: 'per-channel' }, t('agent.per_channel')), perChannel,
  h('button', { type: 'submit' }, t('agent.capacity_submit')));
  show(t('agent.title', { id: agent.name ? `${agent.name} (${id})` : id }), back,
    dl([[t('col.status'), t(`status.${agent.status}`)], [t('col.load'), `${agent.load} / ${agent.max_total}`], [t('col.teams'), agent.teams.join(', ')]]),
    out, h('div', { class: 'columns' }, statusForm, capacityForm));
}

// ---- start -------------------------------------------------------------------------------

document.getElementById('lang').addEventListener('change', (e) => {
  state.lang = STRINGS[e.target.value] ? e.target.value : 'en';
  localStorage.setItem(LANG_KEY, state.lang);
  render();
});
document.getElementById('signout').addEventListener('click', () => { signOut(); });
document.getElementById('skip').addEventListener('click', (e) => { e.preventDefault(); main().focus(); });
window.addEventListener('hashchange', () => {
  render();
  main().focus();
});
setInterval(tick, 1000);
render();
if (state.token) openStream();
