/*! Switchboard web chat widget. Protocol: docs/webchat-protocol.md. No dependencies, no build.
 * Security rule: text from customers and agents only ever reaches the page through text nodes
 * (textContent); this file never uses innerHTML. */
(function () {
  'use strict';
  if (window.SwitchboardChat) return;
  var script = document.currentScript ||
    [].slice.call(document.querySelectorAll('script[src*="/chat/widget.js"]')).pop();
  if (!script) return;
  var ds = script.dataset;
  var src = new URL(script.src, location.href);
  var base = src.origin + src.pathname.replace(/\/chat\/widget\.js$/, '');
  var wsUrl = base.replace(/^http/, 'ws') + '/chat/ws';
  var KEY = 'switchboard.chat.' + base;

  // ---- strings: one table per language ----
  var STRINGS = {
    en: {
      title: 'Support', open: 'Open chat', close: 'Close chat', unread: 'unread messages',
      log: 'Messages', input: 'Message', placeholder: 'Type a message…', send: 'Send',
      attach: 'Attach a file', remove: 'Remove', name: 'Your name', email: 'Email', topic: 'Topic',
      choose: 'Choose a topic', prechat: 'Before we start, tell us a little about your question.',
      offline: 'No one is available right now — leave a message and your email, we will answer.',
      needEmail: 'Please enter a valid email address so that we can answer you.',
      refused: 'Chat is not available on this site.',
      connecting: 'Connecting…', reconnecting: 'Connection lost. Reconnecting…', paused: 'Disconnected.',
      busy: 'The chat is busy right now. Retrying…',
      netOffline: 'You are offline. Your messages will be sent when the connection is back.',
      noSocket: 'Cannot reach the chat. Retrying…',
      greeting: 'Hi! How can we help you today?',
      poor: 'Poor', excellent: 'Excellent', ratingScale: 'Rating: 1 is poor, 5 is excellent',
      joined: '{name} joined the chat', agent: 'Agent', auto: 'Automatic reply',
      resolved: 'The conversation has been resolved. How would you rate it?', resolvedPlain: 'The conversation has been resolved.',
      rating: 'Rating', rate: 'Rate {n} out of 5', rateLow: 'Rate 1 out of 5: poor', rateHigh: 'Rate 5 out of 5: excellent', rated: 'Thank you for your rating: {n} out of 5.', thanks: 'Thank you for your rating.',
      npsAsk: 'The conversation has been resolved. How likely are you to recommend us to a friend or colleague?',
      npsScale: 'Likelihood to recommend: 0 is not at all likely, 10 is extremely likely', npsLow: 'Not at all likely', npsHigh: 'Extremely likely',
      npsRate: '{n} out of 10', npsRateLow: '0 out of 10: not at all likely', npsRateHigh: '10 out of 10: extremely likely', npsRated: 'Thank you for your answer: {n} out of 10.',
      cesAsk: 'The conversation has been resolved. How easy was it to get your issue resolved?',
      cesScale: 'Ease: 1 is very difficult, 7 is very easy', cesLow: 'Very difficult', cesHigh: 'Very easy',
      cesRate: '{n} out of 7', cesRateLow: '1 out of 7: very difficult', cesRateHigh: '7 out of 7: very easy', cesRated: 'Thank you for your answer: {n} out of 7.',
      typing: '{name} is typing…', typingAnon: 'The agent is typing…',
      sending: 'Sending', sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Not sent', retry: 'Retry',
      rate_limited: 'You are sending messages too fast. Please wait a moment.',
      too_large: 'This message is too long.', invalid: 'This message could not be sent.',
      unavailable: 'The chat is temporarily unavailable. We will try again.',
      unauthorized: 'Your chat session has expired. Please reload the page.',
      fileTooLarge: 'This file is too large.', uploadFailed: 'The file could not be uploaded.',
      uploadRate: 'You are uploading files too fast. Please wait a moment.',
      sendFirst: 'Upload limit reached: please send a message first.',
      uploadLimit: 'Upload limit reached for this chat.',
      storageFull: 'Upload limit reached. Please try again later.',
      error: 'Something went wrong.'
    },
    ru: {
      title: 'Поддержка', open: 'Открыть чат', close: 'Закрыть чат', unread: 'непрочитанных сообщений',
      log: 'Сообщения', input: 'Сообщение', placeholder: 'Введите сообщение…', send: 'Отправить',
      attach: 'Прикрепить файл', remove: 'Убрать', name: 'Ваше имя', email: 'Эл. почта', topic: 'Тема',
      choose: 'Выберите тему', prechat: 'Прежде чем начать, расскажите немного о своём вопросе.',
      offline: 'Сейчас никого нет на связи — оставьте сообщение и свою почту, мы ответим.',
      needEmail: 'Укажите правильный адрес эл. почты, чтобы мы могли ответить.',
      refused: 'Чат недоступен на этом сайте.',
      connecting: 'Подключение…', reconnecting: 'Связь потеряна. Подключаемся снова…', paused: 'Отключено.',
      busy: 'Чат сейчас перегружен. Пробуем снова…',
      netOffline: 'Нет связи. Сообщения отправятся, когда связь восстановится.',
      noSocket: 'Не удаётся подключиться к чату. Пробуем снова…',
      greeting: 'Здравствуйте! Чем мы можем помочь?',
      poor: 'Плохо', excellent: 'Отлично', ratingScale: 'Оценка: 1 — плохо, 5 — отлично',
      joined: '{name} присоединяется к чату', agent: 'Оператор', auto: 'Автоответ',
      resolved: 'Разговор завершён. Как вы его оцените?', resolvedPlain: 'Разговор завершён.',
      rating: 'Оценка', rate: 'Оценка {n} из 5', rateLow: 'Оценка 1 из 5: плохо', rateHigh: 'Оценка 5 из 5: отлично', rated: 'Спасибо за оценку: {n} из 5.', thanks: 'Спасибо за оценку.',
      npsAsk: 'Разговор завершён. Насколько вероятно, что вы порекомендуете нас другу или коллеге?',
      npsScale: 'Готовность рекомендовать: 0 — точно нет, 10 — точно да', npsLow: 'Точно нет', npsHigh: 'Точно да',
      npsRate: '{n} из 10', npsRateLow: '0 из 10: точно нет', npsRateHigh: '10 из 10: точно да', npsRated: 'Спасибо за ответ: {n} из 10.',
      cesAsk: 'Разговор завершён. Насколько легко было решить ваш вопрос?',
      cesScale: 'Лёгкость: 1 — очень трудно, 7 — очень легко', cesLow: 'Очень трудно', cesHigh: 'Очень легко',
      cesRate: '{n} из 7', cesRateLow: '1 из 7: очень трудно', cesRateHigh: '7 из 7: очень легко', cesRated: 'Спасибо за ответ: {n} из 7.',
      typing: '{name} печатает…', typingAnon: 'Оператор печатает…',
      sending: 'Отправляется', sent: 'Отправлено', delivered: 'Доставлено', read: 'Прочитано', failed: 'Не отправлено', retry: 'Повторить',
      rate_limited: 'Вы отправляете сообщения слишком часто. Подождите немного.',
      too_large: 'Сообщение слишком длинное.', invalid: 'Это сообщение не удалось отправить.',
      unavailable: 'Чат временно недоступен. Мы попробуем ещё раз.',
      unauthorized: 'Сессия чата истекла. Обновите страницу.',
      fileTooLarge: 'Файл слишком большой.', uploadFailed: 'Не удалось загрузить файл.',
      uploadRate: 'Вы загружаете файлы слишком часто. Подождите немного.',
      sendFirst: 'Достигнут лимит загрузок: сначала отправьте сообщение.',
      uploadLimit: 'Достигнут лимит загрузок для этого чата.',
      storageFull: 'Достигнут лимит загрузок. Попробуйте позже.',
      error: 'Что-то пошло не так.'
    }
  };
  var lang = (ds.lang || navigator.language || 'en').toLowerCase().slice(0, 2);
  if (!STRINGS[lang]) lang = 'en';
  function t(k, v) {
    var s = STRINGS[lang][k] || STRINGS.en[k] || k;
    return v ? s.replace(/\{(\w+)\}/g, (_, x) => v[x]) : s;
  }
  var TRANSIENT = { rate_limited: 1, unavailable: 1 };
  var STATE_ICON = { sending: '◷', sent: '✓', delivered: '✓✓', read: '✓✓', failed: '!' };

  // ---- persisted session (one key) and the outbox shared by the visitor's tabs ----
  // Tabs of one visitor share localStorage. The session (token, settings) is one value, last
  // writer wins. The outbox is not: a tab that rewrote one shared outbox from its own copy would
  // drop what another tab queued meanwhile (and localStorage is only eventually consistent
  // between tabs, so even read-merge-write can lose an item). So each tab writes only its own key,
  // OUT + rid = {items, done, failed}: the messages it queued, the client ids it saw stored (done)
  // and those the server refused for good (failed: client_id -> error code). The outbox is the
  // union of every tab's items minus every tab's done and failed ids; any connected tab sends it,
  // and the server's de-duplication by client_id stores a message once whichever tab sent it. A
  // tab removes another tab's key only when nothing in it is waiting (the key of a closed tab),
  // keeping its done ids; a tab whose key was removed while it still waits writes it again.
  var S = readJSON(KEY) || {};
  var OUT = KEY + '#out:';
  // client_id = <random per page load>-<counter>: two tabs of one visitor never collide.
  var rid = Math.random().toString(36).slice(2, 10) + Date.now().toString(36), n = 0;
  var MINE = OUT + rid, mine = { items: [], done: [], failed: {} };
  // Derived from every tab's key by refresh(): outbox (to send, oldest first), failedView
  // (client_id -> {item, code}), known (client_id -> item), seen (client_id -> when this tab
  // first saw another tab's item appear: that tab is likely sending it itself).
  var outbox = [], failedView = new Map(), known = new Map(), seen = new Map(), loaded = false;
  var GRACE = 3000;
  function readJSON(k) { try { return JSON.parse(localStorage.getItem(k)); } catch (e) { return null; } }
  function store(k, v) {
    try { if (v == null) localStorage.removeItem(k); else localStorage.setItem(k, JSON.stringify(v)); } catch (e) { /* private mode */ }
  }
  function save() {
    // Merged over what is stored, so a field this tab does not know is kept.
    var cur = readJSON(KEY) || {};
    adopt(cur);
    store(KEY, Object.assign(cur, S));
  }
  // An outbox kept in the session value by an older widget (one list for all tabs, still open in
  // a tab that has not reloaded): its items become this tab's.
  function adopt(v) {
    if (!Array.isArray(v.outbox)) return;
    v.outbox.forEach((it) => {
      if (it && it.client_id && !known.has(it.client_id) && !mine.items.some((x) => x.client_id === it.client_id)) mine.items.push(it);
    });
    delete v.outbox;
    writeMine();
  }
  function outKeys() {
    var ks = [];
    try { for (var i = 0; i < localStorage.length; i++) { var k = localStorage.key(i); if (k && k.indexOf(OUT) === 0) ks.push(k); } } catch (e) { /* no storage */ }
    return ks;
  }
  function writeMine() {
    var ids = new Set(known.keys());
    mine.items.forEach((it) => { ids.add(it.client_id); });
    // done ids matter only while some tab still lists the item.
    mine.done = mine.done.filter((c) => ids.has(c));
    Object.keys(mine.failed).forEach((c) => { if (!ids.has(c)) delete mine.failed[c]; });
    store(MINE, mine.items.length || mine.done.length || Object.keys(mine.failed).length ? mine : null);
  }
  // Recomputes the outbox from every tab's key; removes the keys of tabs with nothing waiting.
  function refresh() {
    var vals = [], done = new Set(mine.done), refused = {}, all = new Map(), gone = [];
    outKeys().forEach((k) => {
      if (k === MINE) return;
      var v = readJSON(k);
      if (!v || typeof v !== 'object') return;
      v.items = Array.isArray(v.items) ? v.items : []; v.done = Array.isArray(v.done) ? v.done : [];
      vals.push([k, v]);
      v.done.forEach((c) => { done.add(c); });
    });
    vals.push([MINE, mine]);
    vals.forEach((kv) => {
      var v = kv[1];
      v.items.forEach((it) => { if (it && it.client_id && !all.has(it.client_id)) all.set(it.client_id, it); });
      for (var c in v.failed || {}) refused[c] = v.failed[c];
      var wait = v.items.some((it) => it && !done.has(it.client_id)) || Object.keys(v.failed || {}).some((c) => !done.has(c));
      if (kv[0] !== MINE && !wait) gone.push(kv);
    });
    var before = mine.items.length;
    mine.items = mine.items.filter((it) => !done.has(it.client_id));
    known = all; outbox = []; failedView = new Map();
    all.forEach((it, cid) => {
      if (done.has(cid)) return;
      if (!seen.has(cid)) seen.set(cid, loaded ? Date.now() : 0);
      if (refused[cid]) failedView.set(cid, { item: it, code: refused[cid] });
      else outbox.push(it);
    });
    // Stable: items typed in the same millisecond keep their tab's order.
    outbox.sort((a, b) => (a.at || 0) - (b.at || 0));
    loaded = true;
    if (gone.length) {
      // Keep their done ids (the items they name may still be listed elsewhere), then remove them.
      gone.forEach((kv) => { kv[1].done.forEach((c) => { if (mine.done.indexOf(c) < 0) mine.done.push(c); }); });
      writeMine();
      gone.forEach((kv) => { store(kv[0], null); });
    } else if (mine.items.length !== before) writeMine();
  }
  // This tab saw `cid` stored: it leaves the outbox in every tab.
  function settle(cid) {
    if (!known.has(cid) && !mine.items.some((it) => it.client_id === cid)) return;
    if (mine.done.indexOf(cid) < 0) mine.done.push(cid);
    mine.items = mine.items.filter((it) => it.client_id !== cid);
    delete mine.failed[cid];
    writeMine();
    refresh();
  }
  // The server refused `cid` for good: shown as not sent, with a retry, in every tab.
  function fail(cid, code) {
    mine.failed[cid] = code;
    writeMine();
    refresh();
  }
  if (Array.isArray(S.outbox)) { adopt(S); save(); }
  refresh();

  // ---- page-lifetime state ----
  // entries: seq -> entry; byClient: client_id -> seq of its entry; acked: client_id -> {item, seq}
  // (acked, entry not seen yet); itemErr: client_id -> transient error code (still in the outbox);
  // csatSent: conversation -> {kind, score} of the survey answer sent; nodes: render key -> <li>; ord: client_id -> local order
  // of pending items.
  var entries = new Map(), byClient = new Map(), acked = new Map(), itemErr = new Map(),
    csatSent = new Map(), nodes = new Map(), ord = new Map(), ordN = 0;
  var lastSeq = 0, ws = null, sock = null, paused = false, refused = false, started = false;
  // The surveys a resolution can ask and their scales (`survey` on a `resolved` entry).
  var SCALES = { csat: [1, 5], nps: [0, 10], ces: [1, 7] };
  // trouble: why the last attempt to connect failed, shown as a notice (busy, netOffline,
  // noSocket, reconnecting), null once connected; firstFocus: the panel was opened by the visitor
  // before the server said whether a pre-chat form is wanted.
  var attempt = 0, timer = null, retryTimer = null, retryDelay = 2000, trouble = null, firstFocus = false;
  var typingTimer = null, errTimer = null, lastTyping = 0, unread = 0, isOpen = false, uploading = false;
  var staged = [];           // uploaded attachments waiting for the next send: {ref, name}
  var cfg = S.cfg || { online: true, prechat: null, limits: {} };

  // ---- DOM helpers (no innerHTML anywhere) ----
  function h(tag, attrs, kids) {
    var el = document.createElement(tag);
    for (var k in attrs || {}) {
      var v = attrs[k];
      if (v == null || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    (kids || []).forEach((c) => { if (c) el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return el;
  }
  // Message text: always a text node (textContent), never markup.
  function tx(s) { return h('span', { 'data-testid': 'text', text: s || '' }); }
  // An agent's text with its http(s) URLs as links: text nodes and <a> elements built one by one
  // (never markup), other schemes left as text.
  var URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
  function linked(s) {
    var el = h('span', { 'data-testid': 'text' }), text = s || '', at = 0, m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text))) {
      var raw = m[0].replace(/[.,;:!?'")\]}]+$/, ''), href = null;
      try { var u = new URL(raw); if (u.protocol === 'http:' || u.protocol === 'https:') href = u.href; } catch (e) { /* not a URL */ }
      if (!href) continue;
      if (m.index > at) el.appendChild(document.createTextNode(text.slice(at, m.index)));
      el.appendChild(h('a', { href: href, target: '_blank', rel: 'noopener noreferrer nofollow', class: 'lnk', 'data-testid': 'link', text: raw }));
      at = m.index + raw.length;
      URL_RE.lastIndex = at;
    }
    if (at < text.length) el.appendChild(document.createTextNode(text.slice(at)));
    return el;
  }
  function icon(d) {
    var NS = 'http://www.w3.org/2000/svg';
    var s = document.createElementNS(NS, 'svg');
    s.setAttribute('viewBox', '0 0 24 24'); s.setAttribute('aria-hidden', 'true'); s.setAttribute('focusable', 'false');
    var p = document.createElementNS(NS, 'path');
    p.setAttribute('d', d); p.setAttribute('fill', 'currentColor');
    s.appendChild(p);
    return s;
  }

  var CSS = [
    // Safe-area insets keep the launcher and the panel clear of notches and home bars (pages
    // with viewport-fit=cover).
    ':host{all:initial;position:fixed!important;z-index:2147483000!important;bottom:calc(20px + env(safe-area-inset-bottom, 0px))!important;right:calc(20px + env(safe-area-inset-right, 0px))!important;display:block!important}',
    // The host page's styles still reach the host element and are inherited from it: reset here.
    '.w{all:initial;display:block;font:15px/1.4 system-ui,sans-serif;color:#1c1e21}',
    ':host([data-position=left]){right:auto!important;left:calc(20px + env(safe-area-inset-left, 0px))!important}',
    '*{box-sizing:border-box}[hidden]{display:none!important}',
    '.vh{position:absolute!important;width:1px;height:1px;margin:-1px;padding:0;border:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}',
    'button{font:inherit;cursor:pointer}button:disabled{opacity:.5;cursor:default}',
    ':focus-visible{outline:3px solid #ffbf47;outline-offset:1px}',
    '.launcher{width:56px;height:56px;border-radius:50%;border:0;background:var(--sb-accent,#1f5fd1);color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.3);display:flex;align-items:center;justify-content:center;position:relative}',
    '.launcher svg{width:28px;height:28px}',
    '.badge{position:absolute;top:-3px;right:-3px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;background:#c5221f;color:#fff;font-size:12px;line-height:20px}',
    '.panel{position:absolute;bottom:70px;right:0;width:370px;height:min(600px,calc(100vh - 110px));background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.28);display:flex;flex-direction:column;overflow:hidden}',
    ':host([data-position=left]) .panel{right:auto;left:0}',
    'header{background:var(--sb-accent,#1f5fd1);color:#fff;padding:10px 8px 10px 14px;display:flex;align-items:center;gap:8px}',
    'h2{font-size:16px;margin:0;font-weight:600}.agent{font-size:13px;margin:0;opacity:.92}',
    '.x{margin-left:auto;background:none;border:0;color:#fff;font-size:26px;line-height:1;width:40px;height:40px;border-radius:8px}',
    '.note{padding:8px 14px;font-size:13px;background:#fff4d6;border-bottom:1px solid #eedca8}.refused{background:#fdecea;font-weight:600}',
    '.status{padding:4px 14px;font-size:12px;color:#444;background:#f1f3f5}',
    // The log takes what the header, notices and composer leave, down to nothing on a short
    // panel with the pre-chat form shown (which then scrolls): the composer stays in view.
    '.log{flex:1 1 0;min-height:0;overflow-y:auto;padding:12px}',
    '.items{margin:0;padding:0;list-style:none;display:flex;flex-direction:column;gap:8px}',
    '.greet{margin:0 0 8px;padding:8px 12px;border-radius:14px;background:#eceff3;max-width:85%}',
    '.b .lnk{display:inline;color:inherit;text-decoration:underline}',
    '.m{max-width:85%;display:flex;flex-direction:column;align-items:flex-start}',
    '.me{align-self:flex-end;align-items:flex-end}',
    '.who{font-size:12px;color:#555;margin:0 6px 2px}',
    '.b{padding:8px 12px;border-radius:14px;background:#eceff3;white-space:pre-wrap;overflow-wrap:anywhere}',
    '.me .b{background:var(--sb-accent,#1f5fd1);color:#fff}.me .b a{color:#fff}',
    '.b a{display:block;color:inherit}',
    '.ds{font-size:11px;color:#666;margin:1px 6px}[data-state=read] .ds{color:var(--sb-accent,#1f5fd1)}',
    '[data-state=failed] .ds,.merr{color:#b3261e;font-size:12px;margin:1px 6px}',
    '.retry{font-size:12px;margin:2px 6px;padding:2px 10px;border:1px solid #b3261e;border-radius:10px;background:#fff;color:#b3261e}',
    '.sys{align-self:center;text-align:center;font-size:13px;color:#555;max-width:95%}',
    '.csat{display:flex;flex-wrap:wrap;gap:6px;justify-content:center;margin-top:6px}',
    '.csat.nps{gap:3px}.csat.nps button{width:26px;height:26px;padding:0;font-size:12px}.csat.ces{gap:4px}.csat.ces button{width:34px;height:34px}',
    '.scale{display:flex;justify-content:space-between;font-size:12px;color:#444;margin:2px auto 0;width:214px}',
    '.nps+.scale{width:316px}.ces+.scale{width:262px}',
    '.csat button{width:38px;height:38px;border-radius:50%;border:1px solid #999;background:#fff;color:#1c1e21}',
    '.csat button[aria-pressed=true]{background:var(--sb-accent,#1f5fd1);color:#fff}',
    '.choices{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}',
    '.choices button{min-height:32px;padding:4px 12px;border-radius:16px;border:1px solid var(--sb-accent,#1f5fd1);background:#fff;color:var(--sb-accent,#1f5fd1)}',
    '.typing{padding:0 14px 4px;font-size:12px;color:#555;font-style:italic}',
    '.alert{padding:6px 14px;font-size:13px;color:#b3261e;background:#fdecea}',
    'form{border-top:1px solid #e1e4e8;padding:8px;margin:0;flex:0 1 auto;min-height:0;display:flex;flex-direction:column}',
    '.pre{display:grid;gap:6px;margin:0 0 6px;padding:4px;border:0;min-height:0;overflow-y:auto;flex:0 1 auto}.pre p{margin:0;font-size:13px;color:#444}',
    '.f{font-size:12px;color:#444;display:flex;flex-direction:column;gap:2px}',
    // 16px: iOS zooms the page into any smaller input.
    'input,select,textarea{font:inherit;font-size:16px;color:inherit;border:1px solid #b9bdc3;border-radius:8px;padding:7px 9px;background:#fff;width:100%}',
    '.row{display:flex;gap:6px;align-items:flex-end;flex:none}',
    'textarea{resize:none;max-height:120px;height:40px;flex:1}',
    '.ib{width:40px;height:40px;flex:none;border:0;border-radius:8px;background:none;color:#555;display:flex;align-items:center;justify-content:center}',
    '.ib svg{width:22px;height:22px}.send{background:var(--sb-accent,#1f5fd1);color:#fff}',
    '.chips{display:flex;flex-wrap:wrap;gap:4px;margin-bottom:6px;font-size:12px}',
    '.chip{background:#eceff3;border-radius:10px;padding:2px 4px 2px 8px}.chip button{border:0;background:none;padding:0 4px}',
    '@media (max-width:480px){:host{bottom:calc(12px + env(safe-area-inset-bottom, 0px))!important;right:calc(12px + env(safe-area-inset-right, 0px))!important}:host([data-position=left]){right:auto!important;left:calc(12px + env(safe-area-inset-left, 0px))!important}',
    '.panel{position:fixed;inset:0;width:auto;height:auto;border-radius:0;padding:env(safe-area-inset-top, 0px) env(safe-area-inset-right, 0px) env(safe-area-inset-bottom, 0px) env(safe-area-inset-left, 0px)}:host([data-open]) .launcher{display:none}}',
    // Short viewports (a phone in landscape, a laptop zoomed to 200%): the panel takes the full
    // height at the side, so that the form and the composer fit (WCAG 1.4.10 reflow).
    '@media (max-height:600px) and (min-width:481px){.panel{position:fixed;top:0;bottom:0;right:0;width:min(400px,100vw);height:auto;border-radius:0;padding:env(safe-area-inset-top, 0px) env(safe-area-inset-right, 0px) env(safe-area-inset-bottom, 0px) 0}',
    ':host([data-position=left]) .panel{right:auto;left:0}:host([data-open]) .launcher{display:none}header{padding-top:4px;padding-bottom:4px}}'
  ].join('\n');

  // ---- skeleton ----
  var host = h('div', { id: 'switchboard-chat', 'data-testid': 'widget', 'data-state': 'idle',
    'data-position': ds.position === 'left' ? 'left' : 'right', lang: lang });
  var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
  var badge = h('span', { class: 'badge', 'data-testid': 'unread', hidden: true });
  var launcher = h('button', { type: 'button', class: 'launcher', 'data-testid': 'launcher', 'aria-label': t('open'),
    'aria-expanded': 'false', 'aria-controls': 'sb-panel', onclick: () => { isOpen ? close() : open(); } },
    [icon('M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z'), badge]);
  var agentEl = h('p', { class: 'agent', 'data-testid': 'agent-name', hidden: true });
  var closeBtn = h('button', { type: 'button', class: 'x', 'data-testid': 'close', 'aria-label': t('close'),
    onclick: () => { close(true); } }, ['×']);
  var statusEl = h('div', { class: 'status', role: 'status', 'data-testid': 'status', hidden: true });
  var offlineEl = h('div', { class: 'note', 'data-testid': 'offline-notice', text: t('offline'), hidden: true });
  // The place in line and expected wait while waiting for an agent (`queue` entries): one live line, not bubbles.
  var queueEl = h('div', { class: 'note', role: 'status', 'data-testid': 'queue', hidden: true });
  var refusedEl = h('div', { class: 'note refused', role: 'alert', 'data-testid': 'refused-notice', text: t('refused'), hidden: true });
  var connEl = h('div', { class: 'note', role: 'status', 'data-testid': 'connection-notice', hidden: true });
  // The log is a container holding the list (a role on the <ol> itself would hide its items'
  // list semantics: axe's `listitem`).
  var list = h('ol', { class: 'items' });
  var greetEl = h('p', { class: 'greet', 'data-testid': 'greeting', text: ds.greeting || t('greeting') });
  var logEl = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': t('log'), 'data-testid': 'messages', tabindex: '0' },
    [greetEl, list]);
  var typingEl = h('div', { class: 'typing', 'data-testid': 'typing', 'aria-live': 'polite', hidden: true });
  var alertEl = h('div', { class: 'alert', role: 'alert', 'data-testid': 'error', hidden: true });
  function field(id, label, el) {
    el.id = id;
    return h('div', { class: 'f' }, [h('label', { for: id, text: label }), el]);
  }
  var nameIn = h('input', { type: 'text', autocomplete: 'name', maxlength: '100', 'data-testid': 'prechat-name' });
  var emailIn = h('input', { type: 'email', autocomplete: 'email', maxlength: '254', 'data-testid': 'prechat-email' });
  var topicIn = h('select', { 'data-testid': 'prechat-topic' });
  var nameF = field('sb-name', t('name'), nameIn), emailF = field('sb-email', t('email'), emailIn),
    topicF = field('sb-topic', t('topic'), topicIn);
  var preIntro = h('p', { text: t('prechat') });
  var pre = h('fieldset', { class: 'pre', 'data-testid': 'prechat', hidden: true }, [preIntro, nameF, emailF, topicF]);
  var input = h('textarea', { id: 'sb-input', rows: '1', placeholder: t('placeholder'), 'data-testid': 'input' });
  var fileIn = h('input', { type: 'file', hidden: true, 'aria-label': t('attach'), 'data-testid': 'file' });
  var attachBtn = h('button', { type: 'button', class: 'ib', 'data-testid': 'attach', 'aria-label': t('attach'), title: t('attach'),
    onclick: () => { fileIn.click(); } },
    [icon('M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6h-1.5z')]);
  var sendBtn = h('button', { type: 'submit', class: 'ib send', 'data-testid': 'send', 'aria-label': t('send'), title: t('send') },
    [icon('M2 21l21-9L2 3v7l15 2-15 2v7z')]);
  var chips = h('div', { class: 'chips', 'data-testid': 'staged', hidden: true });
  var form = h('form', { 'data-testid': 'composer', novalidate: true, onsubmit: (e) => { e.preventDefault(); submit(); } },
    [pre, chips, h('div', { class: 'row' }, [h('label', { for: 'sb-input', class: 'vh', text: t('input') }), input, fileIn, attachBtn, sendBtn])]);
  var panel = h('div', { id: 'sb-panel', class: 'panel', role: 'dialog', 'aria-labelledby': 'sb-title', 'data-testid': 'panel', hidden: true },
    [h('header', {}, [h('div', {}, [h('h2', { id: 'sb-title', 'data-testid': 'title', text: ds.title || t('title') }), agentEl]), closeBtn]),
      offlineEl, refusedEl, connEl, statusEl, queueEl, logEl, typingEl, alertEl, form]);
  root.appendChild(h('style', { text: CSS }));
  root.appendChild(h('div', { class: 'w' }, [panel, launcher]));

  // ---- transcript model -> DOM ----
  function stateOf(seq, facts) {
    if (facts.agentMax > seq) return 'read';
    if (facts.assignedMax > seq || facts.heldAt(seq)) return 'delivered';
    return 'sent';
  }
  function items() {
    var out = [], sorted = Array.from(entries.values()).sort((a, b) => a.seq - b.seq);
    var facts = { agentMax: 0, assignedMax: 0, spans: [] }, held = null, answered = {};
    sorted.forEach((e) => {
      if (e.kind === 'agent') facts.agentMax = e.seq;
      if (e.kind === 'assigned') { facts.assignedMax = e.seq; held = e.seq; }
      if (e.kind === 'resolved' && held != null) { facts.spans.push([held, e.seq]); held = null; }
      if (e.kind === 'csat_answer' || e.kind === 'survey_answer') answered[e.conversation_id] = 1;
    });
    if (held != null) facts.spans.push([held, Infinity]);
    // "an agent was assigned before it and no resolved since"
    facts.heldAt = (s) => facts.spans.some((p) => p[0] < s && s < p[1]);
    // Quick replies (the bot's "Did this answer your question?") stay only while they are the
    // last word and nothing of the visitor's is on its way.
    var last = sorted.filter((e) => e.kind !== 'queue').pop(), quiet = !outbox.length && !failedView.size;
    sorted.forEach((e) => {
      if (e.kind === 'queue') return;
      var mine = e.kind === 'customer';
      out.push({ key: mine && e.client_id ? 'c' + e.client_id : 's' + e.seq, e: e, seq: e.seq, o: 0,
        state: mine ? stateOf(e.seq, facts) : null, csat: e.kind === 'resolved' && e.conversation_id && surveyOf(e) && !answered[e.conversation_id],
        choices: e === last && quiet && e.choices && e.choices.length ? e.choices : null });
    });
    // Pending messages; one that already has its entry is shown once, as that entry.
    function pend(cid, p) { if (!byClient.has(cid)) { p.key = 'c' + cid; p.o = ordOf(cid); out.push(p); } }
    acked.forEach((a, cid) => { pend(cid, { item: a.item, seq: a.seq, state: stateOf(a.seq, facts) }); });
    outbox.forEach((it) => { pend(it.client_id, { item: it, seq: Infinity, state: 'sending', err: itemErr.get(it.client_id) }); });
    failedView.forEach((f, cid) => { pend(cid, { item: f.item, seq: Infinity, state: 'failed', err: f.code }); });
    return out.sort((a, b) => a.seq - b.seq || a.o - b.o);
  }
  function ordOf(cid) { if (!ord.has(cid)) ord.set(cid, ++ordN); return ord.get(cid); }
  function safeUrl(u) {
    try { var x = new URL(/^\/[^/]/.test(u) ? base + u : u, base + '/'); return /^https?:$/.test(x.protocol) ? x.href : null; } catch (e) { return null; }
  }
  function size(n) { return n >= 1048576 ? (n / 1048576).toFixed(1) + ' MB' : n >= 1024 ? Math.round(n / 1024) + ' KB' : n + ' B'; }
  function attachmentsEl(list) {
    return (list || []).map((a) => {
      var label = (a.name || 'file') + (a.size != null ? ' (' + size(a.size) + ')' : ''), href = a.url && safeUrl(a.url);
      return href ? h('a', { href: href, target: '_blank', rel: 'noopener noreferrer', 'data-testid': 'attachment', text: label })
        : h('span', { 'data-testid': 'attachment', text: label });
    });
  }
  function body(it) {
    var e = it.e, kids = [];
    if (!e || e.kind === 'customer') {
      var src = e || it.item;
      var atts = e ? e.attachments : (src.names || []).map((n) => ({ name: n }));
      kids.push(h('div', { class: 'b' }, [tx(src.text)].concat(attachmentsEl(atts))));
      kids.push(h('span', { class: 'ds', 'data-testid': 'delivery' }, [h('span', { 'aria-hidden': 'true', class: 'ic' }), h('span', { class: 'vh st' })]));
      if (it.err) kids.push(h('span', { class: 'merr', 'data-testid': 'message-error', text: t(it.err) }));
      if (it.state === 'failed' && it.item) {
        var cid = it.item.client_id;
        // Named with the start of the message: several failed messages each have a Retry.
        kids.push(h('button', { type: 'button', class: 'retry', 'data-testid': 'retry', text: t('retry'),
          'aria-label': t('retry') + ': ' + (it.item.text || '').slice(0, 40), onclick: () => { resend(cid); } }));
      }
      return { cls: 'm me', kids: kids };
    }
    var name = e.agent_name || '';
    switch (e.kind) {
      case 'agent': case 'auto':
        kids.push(h('span', { class: 'who', 'data-testid': 'author', text: e.kind === 'auto' ? t('auto') : name || t('agent') }));
        kids.push(h('div', { class: 'b' }, [linked(e.text)].concat(attachmentsEl(e.attachments))));
        if (it.choices) kids.push(choicesEl(it.choices));
        return { cls: 'm', kids: kids };
      case 'assigned':
        return { cls: 'sys', kids: [tx(t('joined', { name: name || t('agent') }))] };
      case 'resolved':
        var kind = surveyOf(e);
        kids.push(tx(t(kind === 'nps' ? 'npsAsk' : kind === 'ces' ? 'cesAsk' : kind ? 'resolved' : 'resolvedPlain')));
        if (it.csat) kids = kids.concat(surveyEl(kind, e.conversation_id));
        return { cls: 'sys', kids: kids };
      case 'csat_answer': case 'survey_answer':
        var done = e.survey === 'nps' ? 'npsRated' : e.survey === 'ces' ? 'cesRated' : 'rated';
        return { cls: 'sys', kids: [tx(e.score != null ? t(done, { n: e.score }) : t('thanks'))] };
      default: // system and kinds this widget does not know yet
        return { cls: 'sys', kids: [linked(e.text)] };
    }
  }
  function queueLine() {
    var last = null;
    Array.from(entries.values()).sort((a, b) => a.seq - b.seq).forEach((e) => {
      if (e.kind === 'queue') last = e;
      else if (e.kind === 'assigned' || e.kind === 'resolved') last = null;
    });
    queueEl.hidden = !last;
    queueEl.textContent = last ? last.text : '';
    if (last && last.queue) queueEl.setAttribute('data-position', String(last.queue.position));
  }
  function render() {
    queueLine();
    var atBottom = logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 60;
    var keep = new Set(), prev = null, active = root.activeElement, lostFocus = false;
    items().forEach((it) => {
      var node = nodes.get(it.key), e = it.e || {};
      var sig = [it.e ? 's' + it.seq : 'p' + (it.state === 'failed' ? 'f' : ''), it.err || '', it.csat ? 'q' + ((csatSent.get(e.conversation_id) || { score: '' }).score) : '', it.choices ? 'c' : ''].join('|');
      if (!node) { node = h('li', { 'data-testid': 'message' }); nodes.set(it.key, node); }
      if (node._sig !== sig) {
        if (active && node.contains(active)) lostFocus = true;
        var b = body(it);
        node.className = b.cls;
        node.textContent = '';
        b.kids.forEach((k) => { node.appendChild(k); });
        node._sig = sig;
      }
      var cid = e.client_id || (it.item && it.item.client_id);
      node.setAttribute('data-kind', it.e ? e.kind : 'customer');
      attr(node, 'data-seq', it.seq !== Infinity ? it.seq : null);
      attr(node, 'data-client-id', cid || null);
      attr(node, 'data-conversation-id', e.conversation_id || null);
      var bub = node.querySelector('.b');
      if (bub && e.at) bub.title = new Date(e.at).toLocaleString(lang);
      if (it.state) {
        node.setAttribute('data-state', it.state);
        var d = node.querySelector('.ds');
        d.title = t(it.state);
        d.querySelector('.ic').textContent = STATE_ICON[it.state];
        d.querySelector('.st').textContent = t(it.state);
      }
      keep.add(it.key);
      var at = prev ? prev.nextSibling : list.firstChild;
      if (node !== at) list.insertBefore(node, at);
      prev = node;
    });
    nodes.forEach((node, key) => {
      if (!keep.has(key)) { if (active && node.contains(active)) lostFocus = true; node.remove(); nodes.delete(key); }
    });
    if (lostFocus && isOpen) input.focus();
    if (atBottom) logEl.scrollTop = logEl.scrollHeight;
    renderChrome();
  }
  function attr(el, k, v) { if (v == null) el.removeAttribute(k); else el.setAttribute(k, v); }
  function agentName() {
    var name = null;
    Array.from(entries.values()).sort((a, b) => a.seq - b.seq).forEach((e) => {
      if (e.kind === 'assigned') name = e.agent_name || null;
      else if (e.kind === 'resolved') name = null;
      else if (e.kind === 'agent' && e.agent_name && name !== null) name = e.agent_name;
    });
    return name;
  }
  function hasSent() {
    if (outbox.length || failedView.size || acked.size) return true;
    for (var e of entries.values()) if (e.kind === 'customer') return true;
    return false;
  }
  // Offline: ask for an email unless we have one (a host-signed identity's counts); required
  // until the first message, as the server requires it then.
  function needEmail() { return !cfg.online && !S.email && !(ds.userEmail && ds.userHash); }
  function prechatOn() { return !!(cfg.prechat && !S.prechatDone && !hasSent()); }
  function renderChrome() {
    var name = agentName();
    agentEl.hidden = !name;
    agentEl.textContent = name || '';
    var fields = (cfg.prechat && cfg.prechat.fields) || ['name', 'email', 'topic'], on = prechatOn();
    // A signed-in visitor is not asked for what the site supplied (the server leaves those fields
    // out too; this covers a form remembered from before the visitor signed in).
    if (ds.userHash) fields = fields.filter((f) => !((f === 'name' && ds.userName) || (f === 'email' && ds.userEmail)));
    var topics = (cfg.prechat && cfg.prechat.topics) || [];
    preIntro.hidden = !on;
    nameF.hidden = !(on && fields.indexOf('name') >= 0);
    topicF.hidden = !(on && fields.indexOf('topic') >= 0 && topics.length);
    emailF.hidden = !((on && fields.indexOf('email') >= 0) || needEmail());
    emailIn.required = needEmail() && !hasSent();
    pre.hidden = nameF.hidden && topicF.hidden && emailF.hidden;
    if (!topicF.hidden && topicIn._topics !== topics) {
      topicIn._topics = topics;
      topicIn.textContent = '';
      topicIn.appendChild(h('option', { value: '', text: t('choose') }));
      topics.forEach((tp) => { topicIn.appendChild(h('option', { value: tp.id, text: tp.label || tp.id })); });
    }
    offlineEl.hidden = refused || cfg.online !== false;
    refusedEl.hidden = !refused;
    [input, sendBtn, nameIn, emailIn, topicIn].forEach((el) => { el.disabled = refused; });
    attachBtn.disabled = refused || uploading;
    attachBtn.hidden = !S.token || cfg.limits.max_upload_bytes === 0;
    var st = host.getAttribute('data-state');
    var why = refused || paused ? null : navigator.onLine === false && st !== 'ready' ? 'netOffline' : trouble;
    connEl.hidden = !why;
    if (connEl.textContent !== (why ? t(why) : '')) connEl.textContent = why ? t(why) : '';
    statusEl.hidden = refused || !isOpen || !t(st) || st === 'ready' || st === 'idle' || !!why;
    statusEl.textContent = statusEl.hidden ? '' : t(st);
    chips.hidden = !staged.length;
    badge.hidden = !unread || isOpen;
    badge.textContent = unread;
    launcher.setAttribute('aria-label', t('open') + (unread && !isOpen ? ' (' + unread + ' ' + t('unread') + ')' : ''));
  }
  function setState(s) { host.setAttribute('data-state', s); renderChrome(); }
  function showError(code) {
    alertEl.textContent = t(STRINGS.en[code] ? code : 'error');
    alertEl.hidden = false;
    clearTimeout(errTimer);
    errTimer = setTimeout(() => { alertEl.hidden = true; }, 8000);
  }

  // ---- connection ----
  function frame(o) { if (ws && ws.readyState === 1) { ws.send(JSON.stringify(o)); return true; } return false; }
  function connect() {
    clearTimeout(timer); timer = null;
    if (paused || refused || ws) return;
    started = true;
    setState(attempt || lastSeq ? 'reconnecting' : 'connecting');
    // pending: client ids sent on this socket and not answered yet, in the order sent.
    var c = { opened: false, synced: false, sent: new Set(), pending: [] }, s;
    try { s = new WebSocket(wsUrl); } catch (e) { return retry(c); }
    ws = s; sock = c;
    s.onopen = () => {
      c.opened = true;
      var hello = { type: 'hello', after: lastSeq, lang: lang, page: location.href };
      if (S.token) hello.token = S.token;
      if (ds.userId && ds.userHash) {
        hello.identity = { user_id: ds.userId, hash: ds.userHash };
        if (ds.userName) hello.identity.name = ds.userName;
        if (ds.userEmail) hello.identity.email = ds.userEmail;
      }
      frame(hello);
    };
    s.onmessage = (ev) => {
      if (ws !== s) return;
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m && Object.prototype.hasOwnProperty.call(handlers, m.type)) handlers[m.type](m, c);
    };
    s.onclose = (ev) => {
      if (ws !== s) return;
      ws = null; sock = null;
      if (ev.code === 4403) return refuse();
      // A frame over the server's limit: never resent. (The `error` frame_too_large before the
      // close has usually named it already; the close alone points at the first unanswered.)
      if (ev.code === 1009 && !c.tooLarge) tooLarge(c);
      if (paused) return;
      retry(c, ev.code === 4429 ? 8 : 0);
    };
  }
  // Browsers hide the HTTP status of a failed WebSocket handshake, so a socket that never opened
  // asks GET /chat/admission, which answers with the upgrade's own decision: 403 this site may
  // not chat (stop), 429 busy (retry after Retry-After, with jitter), 503 starting; 200 means the
  // server would take it, so something between (a proxy without WebSocket upgrades) or the
  // network is in the way: retry with back-off. No answer at all: offline.
  function retry(c, minAttempt) {
    ws = null;
    if (c.opened) { trouble = 'reconnecting'; return schedule(minAttempt); }
    fetch(base + '/chat/admission', { cache: 'no-store', credentials: 'omit' }).then((r) => {
      if (paused || refused) return;
      if (r.status === 403) return refuse();
      var after = Number(r.headers.get('retry-after')) || 0;
      trouble = r.status === 429 ? 'busy' : r.status === 503 ? 'reconnecting' : 'noSocket';
      schedule(minAttempt, after);
    }, () => { trouble = 'netOffline'; schedule(minAttempt); });
  }
  function schedule(minAttempt, afterSecs) {
    if (paused || refused) return;
    attempt = Math.max(attempt, minAttempt || 0) + 1;
    var d = Math.min(10000, 500 * Math.pow(2, attempt - 1));
    // At least the server's Retry-After when it gave one (a busy address: every tab behind one
    // NAT waits its turn), spread so that they do not come back at once.
    if (afterSecs > 0) d = Math.max(d, Math.min(60000, afterSecs * 1000));
    d *= 0.75 + Math.random() * 0.5;
    setState(trouble === 'busy' ? 'busy' : 'reconnecting');
    clearTimeout(timer);
    timer = setTimeout(connect, d);
  }
  // The server refused a frame as over its limit: the message it names, else (refused unread)
  // the first one sent on `c` and not answered (frames are answered in order). Marked failed, it
  // is never sent again.
  function tooLarge(c, named) {
    var cid = named || c.pending[0];
    c.tooLarge = true;
    answered(c, cid);
    if (!cid || failedView.has(cid) || !find(cid)) return;
    fail(cid, 'too_large');
    showError('too_large');
    render();
  }
  function refuse() {
    refused = true;
    clearTimeout(timer);
    if (ws) { var s = ws; ws = null; s.close(); }
    setState('refused');
  }
  var handlers = {
    welcome: (m) => {
      if (S.session && m.session && m.session !== S.session) {
        // A new session (the old token was not accepted): the transcript shown belongs to the old one.
        entries.clear(); byClient.clear(); acked.clear(); csatSent.clear(); lastSeq = 0; S.prechatDone = false;
      }
      S.token = m.token || S.token;
      S.session = m.session || S.session;
      cfg = S.cfg = { online: m.online !== false, prechat: m.prechat || null, limits: m.limits || {} };
      trouble = null;
      save();
      render();
      // Opened before the server said whether it wants a pre-chat form: focus goes to the first
      // thing to fill in, unless the visitor already went elsewhere or typed.
      if (firstFocus && isOpen) {
        firstFocus = false;
        var f = firstField();
        if (f && !input.value && (root.activeElement === input || !panel.contains(root.activeElement))) f.focus();
      }
    },
    entry: (m, c) => {
      var seq = Number(m.seq), e = m.entry;
      if (!e || !(seq > 0) || entries.has(seq)) return;
      e = Object.assign({}, e, { seq: seq });
      entries.set(seq, e);
      if (seq > lastSeq) lastSeq = seq;
      if (e.kind === 'customer' && e.client_id) {
        byClient.set(e.client_id, seq);
        settle(e.client_id);
        acked.delete(e.client_id); itemErr.delete(e.client_id);
      }
      if (e.kind === 'csat_answer' || e.kind === 'survey_answer') csatSent.delete(e.conversation_id);
      if (e.kind === 'agent' || e.kind === 'auto') {
        hideTyping();
        if (c.synced && !isOpen) unread++;
      }
      render();
    },
    synced: (m, c) => {
      c.synced = true;
      if (Number(m.seq) > lastSeq) lastSeq = Number(m.seq);
      attempt = 0;
      setState('ready');
      refresh();
      outbox.slice().forEach((it) => { if (byClient.has(it.client_id)) settle(it.client_id); });
      flush();
      csatSent.forEach((a, conv) => { frame({ type: 'survey', conversation_id: conv, survey: a.kind, score: a.score }); });
      render();
    },
    ack: (m, c) => {
      answered(c, m.client_id);
      var cid = m.client_id, it = find(cid);
      if (!it) return;
      settle(cid);
      itemErr.delete(cid);
      if (!byClient.has(cid)) acked.set(cid, { item: it, seq: Number(m.seq) || Infinity });
      render();
    },
    error: (m, c) => {
      if (m.code === 'frame_too_large') return tooLarge(c, m.client_id);
      answered(c, m.client_id);
      var code = m.code === 'rate_limited_ip' ? 'rate_limited' : m.code || 'error', cid = m.client_id, it = cid && find(cid);
      if (it) {
        c.sent.delete(cid);
        if (TRANSIENT[code]) {
          itemErr.set(cid, code);
          clearTimeout(retryTimer);
          retryTimer = setTimeout(flush, retryDelay);
          retryDelay = Math.min(retryDelay * 2, 30000);
        } else {
          fail(cid, code);
        }
        render();
      }
      showError(it || code !== 'invalid' ? code : 'error');
    },
    typing: (m) => {
      var who = m.agent_name || agentName();
      typingEl.textContent = who ? t('typing', { name: who }) : t('typingAnon');
      typingEl.hidden = false;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(hideTyping, 5000);
    }
  };
  function answered(c, cid) { if (c && cid) c.pending = c.pending.filter((x) => x !== cid); }
  function hideTyping() { clearTimeout(typingTimer); typingEl.hidden = true; typingEl.textContent = ''; }
  function find(cid) {
    return known.get(cid) || mine.items.filter((it) => it.client_id === cid)[0] || null;
  }
  // Sends every outbox item (of any tab) not yet sent on this connection, in order, once history is
  // replayed. An item another tab queued while this one watched is left to that tab for GRACE ms
  // (it is likely sending it itself); the items after it wait too, so the order is kept.
  var graceTimer = null;
  function flush() {
    var c = sock;
    if (!c || !c.synced) return;
    refresh();
    clearTimeout(graceTimer);
    var now = Date.now(), max = cfg.limits.max_text_bytes;
    for (var i = 0; i < outbox.length; i++) {
      var it = outbox[i];
      if (c.sent.has(it.client_id)) continue;
      // Queued before this page knew the limit (offline since the start): it cannot be sent.
      if (max && new TextEncoder().encode(it.text || '').length > max) { fail(it.client_id, 'too_large'); showError('too_large'); render(); return flush(); }
      var wait = seen.get(it.client_id) + GRACE - now;
      if (wait > 0 && !mine.items.some((x) => x.client_id === it.client_id)) { graceTimer = setTimeout(flush, wait + 50); return; }
      var f = { type: 'send', client_id: it.client_id, text: it.text };
      if (it.attachments) f.attachments = it.attachments;
      if (it.prechat) f.prechat = it.prechat;
      // A frame the server would refuse unread (its text escaped, or too many attachments).
      var fmax = cfg.limits.max_frame_bytes, json = JSON.stringify(f);
      if (fmax && new TextEncoder().encode(json).length > fmax) { fail(it.client_id, 'too_large'); showError('too_large'); render(); return flush(); }
      if (ws && ws.readyState === 1) { ws.send(json); c.sent.add(it.client_id); c.pending.push(it.client_id); }
    }
  }

  // ---- visitor actions ----
  function submit() {
    if (refused) return;
    var text = input.value.trim();
    if (!text && !staged.length) return;
    var max = cfg.limits.max_text_bytes;
    if (max && new TextEncoder().encode(text).length > max) { showError('too_large'); return; }
    var pc = {}, on = prechatOn();
    var email = emailIn.value.trim();
    if (!emailF.hidden && (email || emailIn.required) && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
      showError('needEmail');
      emailIn.setAttribute('aria-invalid', 'true');
      emailIn.focus();
      return;
    }
    emailIn.removeAttribute('aria-invalid');
    if (on) {
      if (!nameF.hidden && nameIn.value.trim()) pc.name = nameIn.value.trim();
      if (!topicF.hidden && topicIn.value) pc.topic = topicIn.value;
    }
    if (!emailF.hidden && email) { pc.email = email; S.email = email; }
    var it = { client_id: rid + '-' + (++n), text: text, at: Date.now() };
    if (Object.keys(pc).length) it.prechat = pc;
    if (staged.length) {
      it.attachments = staged.map((a) => a.ref);
      it.names = staged.map((a) => a.name);
      staged = []; chips.textContent = '';
    }
    if (on) S.prechatDone = true;
    ordOf(it.client_id);
    mine.items.push(it);
    writeMine();
    save();
    refresh();
    input.value = '';
    grow();
    alertEl.hidden = true;
    retryDelay = 2000;
    render();
    logEl.scrollTop = logEl.scrollHeight;
    if (!ws && !paused && !refused && !timer) connect();
    flush();
    input.focus();
  }
  // The survey a resolution asks: `survey` on the entry (`none`: no buttons); an entry from
  // before NPS and CES has none and asked CSAT.
  function surveyOf(e) {
    var k = e.survey || 'csat';
    return SCALES[k] ? k : null;
  }
  // The buttons of a survey: a group named by its scale's ends, each end button saying what it
  // means, and a caption under the scale; plain buttons, so Tab and Enter/Space work.
  function surveyEl(kind, conv) {
    var sc = SCALES[kind], chosen = csatSent.get(conv), nums = [];
    for (var n = sc[0]; n <= sc[1]; n++) nums.push(n);
    var p = kind === 'csat' ? '' : kind;
    var key = (k) => p ? p + k.charAt(0).toUpperCase() + k.slice(1) : k;
    var low = kind === 'csat' ? t('poor') : t(p + 'Low'), high = kind === 'csat' ? t('excellent') : t(p + 'High');
    var group = h('div', { class: 'csat ' + kind, role: 'group', 'aria-label': t(kind === 'csat' ? 'ratingScale' : p + 'Scale'),
      'data-testid': kind, 'data-survey': kind }, nums.map((n) => {
      return h('button', { type: 'button', 'data-testid': kind + '-' + n,
        'aria-label': n === sc[0] ? t(key('rateLow')) : n === sc[1] ? t(key('rateHigh')) : t(key('rate'), { n: n }),
        'aria-pressed': chosen && chosen.score === n ? 'true' : 'false', disabled: chosen != null,
        onclick: () => { rate(conv, kind, n); }, text: String(n) });
    }));
    return [group, h('div', { class: 'scale', 'aria-hidden': 'true', 'data-testid': kind + '-scale' },
      [h('span', { text: sc[0] + ' ' + low }), h('span', { text: high + ' ' + sc[1] })])];
  }
  // Quick-reply buttons: a press sends the label as the visitor's message, as if typed.
  function choicesEl(labels) {
    return h('div', { class: 'choices', role: 'group', 'data-testid': 'choices' }, labels.map((label, i) => {
      return h('button', { type: 'button', 'data-testid': 'choice-' + i, text: label, onclick: () => { say(label); } });
    }));
  }
  function say(text) {
    input.value = text;
    submit();
  }
  function rate(conv, kind, score) {
    csatSent.set(conv, { kind: kind, score: score });
    frame({ type: 'survey', conversation_id: conv, survey: kind, score: score });
    render();
  }
  function upload(file) {
    var lim = cfg.limits.max_upload_bytes;
    if (lim && file.size > lim) return showError('fileTooLarge');
    if (!S.token) return showError('uploadFailed');
    uploading = true;
    renderChrome();
    fetch(base + '/chat/upload?token=' + encodeURIComponent(S.token), { method: 'POST', body: file,
      headers: { 'Content-Type': file.type || 'application/octet-stream', 'X-Filename': encodeURIComponent(file.name) } })
      .then((r) => {
        if (r.ok) return r.json();
        // The refusal's `code` tells the upload limits apart (see webchat-protocol.md, Uploads).
        var byCode = { rate_limited: 'uploadRate', send_first: 'sendFirst', upload_limit: 'uploadLimit', storage_full: 'storageFull' };
        return r.json().catch(() => ({})).then((j) => {
          throw new Error(byCode[j && j.code] || (r.status === 413 ? 'fileTooLarge' : r.status === 401 ? 'unauthorized' : 'uploadFailed'));
        });
      })
      .then((j) => {
        if (!j || !j.ref) throw new Error('uploadFailed');
        stage({ ref: j.ref, name: file.name });
      })
      .catch((e) => { showError(STRINGS.en[e.message] ? e.message : 'uploadFailed'); })
      .then(() => { uploading = false; fileIn.value = ''; renderChrome(); });
  }
  function stage(a) {
    staged.push(a);
    var chip = h('span', { class: 'chip', 'data-testid': 'staged-file' }, [a.name, h('button', { type: 'button', 'aria-label': t('remove') + ': ' + a.name,
      onclick: () => { staged = staged.filter((x) => x !== a); chip.remove(); renderChrome(); input.focus(); } }, ['×'])]);
    chips.appendChild(chip);
  }
  // A message refused for good goes back into the composer and is sent again as a new message
  // (a new client_id); if it is refused here (too long), it stays in the input to be edited.
  function resend(cid) {
    var f = failedView.get(cid);
    if (!f) return;
    settle(cid);
    input.value = f.item.text || '';
    staged = []; chips.textContent = '';
    (f.item.attachments || []).forEach((ref, i) => { stage({ ref: ref, name: (f.item.names || [])[i] || 'file' }); });
    grow();
    render();
    submit();
    input.focus();
  }
  function grow() { input.style.height = ''; input.style.height = Math.min(input.scrollHeight + 2, 120) + 'px'; }

  function open(quiet) {
    isOpen = true;
    unread = 0;
    panel.hidden = false;
    host.setAttribute('data-open', '');
    launcher.setAttribute('aria-expanded', 'true');
    S.open = true; save();
    if (!started) connect();
    render();
    logEl.scrollTop = logEl.scrollHeight;
    if (quiet !== true) {
      (refused ? closeBtn : firstField() || input).focus();
      firstFocus = !sock || !sock.synced;
    }
  }
  // The first pre-chat field still to fill in, when the form is shown.
  function firstField() {
    return prechatOn() ? [nameIn, emailIn, topicIn].filter((el) => !el.parentNode.hidden && !el.value)[0] || null : null;
  }
  function close(toLauncher) {
    var inside = panel.contains(root.activeElement);
    isOpen = false;
    panel.hidden = true;
    host.removeAttribute('data-open');
    launcher.setAttribute('aria-expanded', 'false');
    S.open = false; save();
    renderChrome();
    if (toLauncher || inside) launcher.focus();
  }

  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) { e.preventDefault(); submit(); }
  });
  input.addEventListener('input', () => {
    grow();
    var now = Date.now();
    if (input.value && sock && sock.synced && now - lastTyping > 3000) { lastTyping = now; frame({ type: 'typing' }); }
  });
  panel.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.stopPropagation(); close(true); } });
  fileIn.addEventListener('change', () => { if (fileIn.files && fileIn.files[0]) upload(fileIn.files[0]); });
  window.addEventListener('online', () => { renderChrome(); if (timer) connect(); });
  window.addEventListener('offline', () => { renderChrome(); });
  // Another tab changed the outbox or the session: show its messages, send them when connected.
  window.addEventListener('storage', (e) => {
    if (e.key !== null && e.key !== KEY && e.key.indexOf(OUT) !== 0) return;
    if (e.key === KEY || e.key === null) {
      var v = readJSON(KEY) || {};
      if (!S.token && v.token) { S.token = v.token; S.session = v.session; }
      if (Array.isArray(v.outbox)) save(); // written by an older widget: adopted
    }
    // Our key was removed while we still have messages waiting: write it again.
    if ((e.key === MINE || e.key === null) && !readJSON(MINE) && (mine.items.length || Object.keys(mine.failed).length)) writeMine();
    refresh();
    render();
    flush();
    if (outbox.length && !ws && !paused && !refused && !timer && started) connect();
  });

  window.SwitchboardChat = {
    open: () => { open(); },
    close: () => { close(false); },
    debug: {
      disconnect: () => {
        paused = true;
        clearTimeout(timer); timer = null;
        if (ws) { var s = ws; ws = null; sock = null; s.close(1000); }
        setState('paused');
      },
      reconnect: () => {
        paused = false; refused = false; attempt = 0;
        if (ws) { var s = ws; ws = null; sock = null; s.close(1000); }
        connect();
      },
      state: () => {
        return { connected: !!(ws && ws.readyState === 1 && sock && sock.synced), lastSeq: lastSeq,
          outbox: outbox.length, failed: failedView.size, state: host.getAttribute('data-state') };
      }
    }
  };

  function mount() {
    document.body.appendChild(host);
    render();
    // Returning visitors (a session or unsent messages) connect at once; new ones when they open the chat.
    if (S.open) open(true); // restored open, without taking the focus from the page
    else if (S.token || outbox.length) connect();
  }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);
})();
