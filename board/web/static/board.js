// Guard station board: draws the tiles from the board's live stream
// (Server-Sent Events), sounds the alarms by priority (IEC 60601-1-8),
// and sends the guard's actions. Every word comes from the board's
// catalogue in the guard's language (/api/i18n). No library, no build step.
// Every text from a room or an operator goes in as text (textContent,
// setAttribute), never as HTML.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const body = document.body;

  // ---- state ----
  const rooms = new Map();   // room id -> view (from the board)
  const tiles = new Map();   // room id -> tile parts
  let session = null;        // {operator, csrf, title, sim_driver, link_cutter, lang}
  let lastId = '';           // id of the last update seen (resume point)
  let snapshots = 0;         // how many snapshots the page took (a resume takes none)
  let brokerConnected = null;
  let brokerSince = '';
  let streamOpen = false;
  let streamLostAt = 0;
  const logIds = new Set();
  const logEntries = [];     // the log's entries, newest last (redrawn on a change of language)
  let testerRoom = '';
  let testerDrawn = '';
  let busy = false;
  let unknownRooms = [];
  const stats = {room: 0, log: 0, link: 0, snapshot: 0, logTypes: {}};

  // ---- words: the catalogue of the guard's language ----
  let lang = 'en';
  let locale = 'en';
  let words = {};
  const missing = new Set();
  // t returns the message id in the guard's language, its {{.Name}}
  // placeholders filled from data (as text: the result goes into
  // textContent). A missing id shows as itself and is counted.
  function t(id, data) {
    let s = words[id];
    if (s === undefined) {
      missing.add(id);
      body.dataset.missingWords = [...missing].join(' ');
      return id;
    }
    if (data) s = s.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_, k) => (data[k] === undefined ? '' : String(data[k])));
    return s;
  }
  function localeFor(l) {
    for (const n of navigator.languages || []) if (n.toLowerCase().split('-')[0] === l) return n;
    return l;
  }
  async function loadWords(l) {
    const r = await fetch(`/api/i18n?lang=${encodeURIComponent(l || '')}`, {credentials: 'same-origin'});
    const c = await r.json();
    lang = c.lang;
    words = c.messages;
    locale = localeFor(lang);
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    $('lang').value = lang;
    $('lang').setAttribute('aria-label', t('header.language'));
    $('tiles').setAttribute('aria-label', t('tiles.label'));
    $('log').setAttribute('aria-label', t('log.label'));
    $('tester').setAttribute('aria-label', t('tester.label'));
    $('records').setAttribute('aria-label', t('records.label'));
  }
  const fmtCache = new Map();
  function fmt(opts) {
    const k = locale + JSON.stringify(opts);
    if (!fmtCache.has(k)) fmtCache.set(k, new Intl.DateTimeFormat(locale, opts));
    return fmtCache.get(k);
  }
  function timeText(ms) { return isNaN(ms) ? '' : fmt({hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23'}).format(new Date(ms)); }
  function hhmm(ms) { return isNaN(ms) ? '' : fmt({hour: '2-digit', minute: '2-digit', hourCycle: 'h23'}).format(new Date(ms)); }
  function dateTimeText(ms) { return isNaN(ms) ? '' : fmt({dateStyle: 'short', timeStyle: 'short', hourCycle: 'h23'}).format(new Date(ms)); }
  const iso = (s) => Date.parse(s);

  // ---- clock: the board's time, corrected for this computer's clock ----
  // Every tick (1 s) carries the board's time. A sample is board time minus
  // this computer's time at arrival, i.e. the true offset minus the network
  // delay; the largest sample of the last 30 is the one with the least
  // delay, so it is the offset used.
  const offsets = [];
  let offset = 0;
  function sampleClock(boardNow) {
    const v = Date.parse(boardNow);
    if (isNaN(v)) return;
    offsets.push(v - Date.now());
    if (offsets.length > 30) offsets.shift();
    offset = Math.max(...offsets);
    body.dataset.clockOffsetMs = String(Math.round(offset));
  }
  const boardNow = () => Date.now() + offset;

  // ---- DOM helpers ----
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  function setText(el, s) { if (el.textContent !== s) el.textContent = s; }
  function setAttr(el, k, v) {
    if (v === null || v === undefined || v === false) { if (el.hasAttribute(k)) el.removeAttribute(k); return; }
    if (el.getAttribute(k) !== String(v)) el.setAttribute(k, String(v));
  }
  function show(el, on) { if (el.hidden === on) el.hidden = !on; }
  function setClass(el, c) { if (el.className !== c) el.className = c; }
  // reconcile keeps container's children keyed: an element whose key is
  // still wanted is updated in place (a button under the pointer keeps its
  // click), new ones are made, gone ones removed, and the order kept.
  function reconcile(container, items, keyOf, make, update) {
    const have = new Map();
    for (const el of container.children) have.set(el.dataset.k, el);
    const keep = new Set();
    items.forEach((it, i) => {
      const k = keyOf(it);
      keep.add(k);
      let el = have.get(k);
      if (!el) { el = make(it); el.dataset.k = k; }
      update(el, it);
      if (container.children[i] !== el) container.insertBefore(el, container.children[i] || null);
    });
    for (const [k, el] of have) if (!keep.has(k)) el.remove();
  }

  function clockText(sec) {
    sec = Math.max(0, Math.floor(sec));
    const hh = Math.floor(sec / 3600), mm = Math.floor(sec % 3600 / 60), ss = sec % 60;
    return `${hh}:${String(mm).padStart(2, '0')}:${String(ss).padStart(2, '0')}`;
  }
  function ageText(sec) {
    sec = Math.max(0, Math.floor(sec));
    if (sec < 60) return t('age.s', {S: sec});
    if (sec < 3600) return t('age.min', {M: Math.floor(sec / 60), S: String(sec % 60).padStart(2, '0')});
    return t('age.h', {H: Math.floor(sec / 3600), M: String(Math.floor(sec % 3600 / 60)).padStart(2, '0')});
  }
  function spanText(sec) {
    sec = Math.abs(Math.round(sec));
    if (sec < 3600) return t('span.min', {M: Math.floor(sec / 60), S: String(sec % 60).padStart(2, '0')});
    if (sec < 86400) return t('span.h', {H: Math.floor(sec / 3600), M: String(Math.floor(sec % 3600 / 60)).padStart(2, '0')});
    return t('span.d', {D: Math.floor(sec / 86400), H: Math.floor(sec % 86400 / 3600)});
  }

  // ---- what a tile says ----
  const SHAPES = {critical: '◆', warning: '▲', no_contact: '⊗', acked: '✓', overtime: '◔', visit: '●', idle: '○',
    out_of_service: '⊘', offline: '✕'};
  const CAT_ORDER = Object.keys(SHAPES);
  const KINDS = new Set(['panic', 'door_locked', 'time_up', 'sensor_fault', 'not_vacated', 'welfare_check', 'system_fault',
    'output_fault', 'function_test_due', 'line_drift']);
  const SEVS = new Set(['critical', 'warning', 'info']);
  const PHASES = new Set(['idle', 'in_visit', 'overtime', 'inspection', 'out_of_service']);
  const DOORS = new Set(['open', 'closed', 'unknown']);
  const BOLTS = new Set(['locked', 'unlocked', 'unknown']);
  const LINKS = new Set(['online', 'offline', 'stale', 'unknown']);
  // Privacy: presence is shown only in these phases, whatever the board sent.
  const SHOWS_PRESENCE = new Set(['idle', 'out_of_service']);
  const WATCHED = new Set(['in_visit', 'overtime', 'inspection']);

  const sev = (a) => (SEVS.has(a.severity) ? a.severity : 'critical');
  const kindName = (k) => (KINDS.has(k) ? t(`kind.${k}`) : String(k).toUpperCase());
  function alertWhat(a) {
    let s = kindName(a.kind);
    if (a.point) s += ' ' + t('alert.at_point', {Point: a.point});
    const part = a.input || a.output || a.source;
    if (part) s += ` (${part})`;
    return s;
  }
  function catLabel(v) {
    if (v.category === 'critical' || v.category === 'warning') {
      const top = v.alerts.find((a) => !a.acked);
      if (top) return t(`cat.${v.category}_kind`, {Kind: kindName(top.kind)});
      if (v.no_contact) return t('cat.no_contact_new');
    }
    if (v.category === 'offline') {
      if (v.link === 'stale') return t('cat.stale');
      if (v.link === 'unknown' || !v.phase) return t('cat.no_data');
    }
    if (v.category === 'visit' && v.phase === 'inspection') return t('cat.inspection');
    if (v.category === 'idle' && v.alerts.length) return t('cat.idle_not_ready');
    return t(`cat.${CAT_ORDER.includes(v.category) ? v.category : 'offline'}`);
  }
  // The room's time: the board's corrected by how far the room's clock is
  // (clock_offset_s), so that a countdown never contradicts the phase.
  const roomNow = (v) => boardNow() + (v.clock_offset_s || 0) * 1000;

  // ---- audio paused (this screen) ----
  const PAUSE_MS = 60000;
  let pausedUntil = 0;
  let pausedKeys = new Set(); // the alarms sounding when the pause began
  const paused = () => pausedUntil > performance.now();

  function alertState(v, a) {
    if (!a.acked && paused()) return 'paused';
    return a.state || (a.acked ? 'acked' : 'raised');
  }

  // ---- tiles: built once, updated in place ----
  function makeTile(room) {
    const p = {};
    p.el = h('article', {'data-room': room});
    p.h2 = h('h2', {class: 'room-id'});
    p.h2.textContent = room;
    p.staff = h('span', {class: 'staff', 'data-staff': '', hidden: true});
    p.link = h('span', {class: 'link'});
    p.shape = h('span', {class: 'shape', 'aria-hidden': 'true'});
    p.label = h('span', {class: 'label'});
    p.cat = h('div', {class: 'cat'}, p.shape, p.label);
    p.contact = h('div', {class: 'contact', hidden: true});
    p.contactText = h('p', {class: 'contact-text'});
    p.contactAck = h('p', {class: 'ackedby'});
    p.contactBtn = h('button', {class: 'primary', type: 'button', 'data-key': 'ack-contact', 'data-action': 'ack_contact',
      onclick: () => act(room, 'ack_contact', {})});
    p.contact.append(p.contactText, p.contactAck, p.contactBtn);
    p.lastState = h('div', {class: 'facts last-state', hidden: true});
    p.phase = h('div', {class: 'facts phase'});
    p.countdown = h('div', {class: 'countdown', 'aria-live': 'off', hidden: true});
    p.cdBefore = h('span', {class: 'cd-word'});
    p.cdTime = h('span', {class: 'cd-time'});
    p.cdAfter = h('span', {class: 'cd-word'});
    p.countdown.append(p.cdBefore, p.cdTime, p.cdAfter);
    p.doorbolt = h('div', {class: 'facts doorbolt'});
    p.clock = h('div', {class: 'facts clock-note', hidden: true});
    p.unsynced = h('div', {class: 'facts unsynced', hidden: true});
    p.alerts = h('ul', {class: 'alerts'});
    p.actions = h('div', {class: 'actions'});
    p.reply = h('div', {class: 'reply', role: 'status', 'data-reply': ''});
    p.el.append(h('header', {}, p.h2, p.staff, p.link), p.cat, p.contact, p.lastState, p.phase, p.countdown, p.doorbolt,
      p.clock, p.unsynced, p.alerts, p.actions, p.reply);
    return p;
  }

  function updateTile(v) {
    let p = tiles.get(v.room);
    if (!p) { p = makeTile(v.room); tiles.set(v.room, p); }
    const cat = CAT_ORDER.includes(v.category) ? v.category : 'offline';
    const inVisit = v.phase === 'in_visit' || v.phase === 'overtime';
    setClass(p.el, `tile cat-${cat}${v.staff ? ' staff-present' : ''}`);
    setAttr(p.el, 'data-category', cat);
    setAttr(p.el, 'data-link', v.link);
    setAttr(p.el, 'data-phase', v.phase || '');
    setAttr(p.el, 'aria-label', t('tile.label', {Room: v.room}));
    show(p.staff, !!v.staff);
    setText(p.staff, `◉ ${t('tile.staff')}`);
    const link = LINKS.has(v.link) ? v.link : 'unknown';
    setClass(p.link, `link link-${link}`);
    setAttr(p.link, 'data-link', link);
    setText(p.link, t(`link.${link}`));
    setAttr(p.cat, 'data-category', cat);
    setText(p.shape, SHAPES[cat]);
    setText(p.label, catLabel(v));

    // No contact during a visit: the board's own alarm.
    const c = v.no_contact;
    show(p.contact, !!c);
    if (c) {
      const since = c.since ? hhmm(iso(c.since)) : '';
      setText(p.contactText, since ? t('contact.text', {Room: v.room, Since: since}) : t('contact.text_never', {Room: v.room}));
      setAttr(p.contact, 'data-acked', c.acked_by ? 'true' : 'false');
      show(p.contactBtn, !c.acked_by);
      setText(p.contactBtn, t('action.ack'));
      show(p.contactAck, !!c.acked_by);
      if (c.acked_by) setText(p.contactAck, `✓ ${t('contact.acked', {By: c.acked_by, At: timeText(iso(c.acked_at))})}`);
    }
    const lost = v.link === 'stale' || v.link === 'offline';
    show(p.lastState, lost && !c);
    if (lost && !c) setText(p.lastState, v.last_state ? t('tile.last_heard', {At: timeText(iso(v.last_state))}) : t('tile.never_heard'));
    setAttr(p.lastState, 'data-last-state', v.last_state || '');

    show(p.phase, !!v.phase);
    if (v.phase) {
      let s = `${t('tile.phase')} ${PHASES.has(v.phase) ? t(`phase.${v.phase}`) : v.phase}`;
      if (v.phase === 'out_of_service' && v.service_reason) s += ` (${v.service_reason})`;
      setText(p.phase, s);
    }
    const ends = v.visit && v.visit.ends_at;
    show(p.countdown, !!ends);
    setAttr(p.countdown, 'data-ends-at', ends || null);
    const door = DOORS.has(v.door) ? t(`door.${v.door}`) : (v.door || '?');
    const bolt = BOLTS.has(v.lock) ? t(`bolt.${v.lock}`) : (v.lock || '?');
    let db = `${t('tile.door')} ${door} · ${t('tile.bolt')} ${bolt}`;
    const presence = v.presence && SHOWS_PRESENCE.has(v.phase) ? v.presence : '';
    if (presence) db += ` · ${t('tile.presence')} ${t(`presence.${presence === 'present' ? 'present' : presence === 'absent' ? 'absent' : 'unknown'}`)}`;
    show(p.doorbolt, !!(v.door || v.lock));
    setText(p.doorbolt, db);
    setAttr(p.doorbolt, 'data-presence', presence || null);
    // A room's clock that is off says so in words; one merely not set by a
    // time server, in a quieter line.
    show(p.clock, !!v.clock_offset_s);
    if (v.clock_offset_s) setText(p.clock, t(v.clock_offset_s > 0 ? 'tile.clock_ahead' : 'tile.clock_behind', {Span: spanText(v.clock_offset_s)}));
    show(p.unsynced, !!(v.has_info && !v.clock_synced));
    setText(p.unsynced, t('tile.clock_unsynced'));

    reconcile(p.alerts, v.alerts, (a) => `a:${a.id}`, makeAlert, (li, a) => updateAlert(li, a, v));

    const acts = [];
    if (inVisit && v.extension !== 'forbidden') acts.push({k: 'extend', cls: '', label: 'action.extend', go: () => confirmExtend(v.room)});
    if (inVisit) acts.push({k: 'end', cls: 'danger', label: 'action.end', go: () => confirmAct(v.room, 'end_visit', {}, t('confirm.end.title'), t('confirm.end.text', {Room: v.room}))});
    if (v.phase === 'inspection') acts.push({k: 'ready', cls: '', label: 'action.ready', go: () => confirmAct(v.room, 'set_ready', {}, t('confirm.ready.title'), t('confirm.ready.text', {Room: v.room}))});
    if (v.phase === 'idle' || v.phase === 'inspection') acts.push({k: 'oos', cls: '', label: 'action.oos', go: () => confirmOutOfService(v.room)});
    if (v.phase === 'out_of_service') acts.push({k: 'bis', cls: '', label: 'action.bis', go: () => act(v.room, 'back_in_service', {})});
    const ACTION = {extend: 'extend_visit', end: 'end_visit', ready: 'set_ready', oos: 'out_of_service', bis: 'back_in_service'};
    reconcile(p.actions, acts, (a) => a.k, (a) => {
      const b = h('button', {type: 'button', 'data-key': a.k, 'data-action': ACTION[a.k]});
      b.addEventListener('click', () => b.go());
      return b;
    }, (b, a) => { b.go = a.go; setClass(b, a.cls); setText(b, t(a.label)); });
  }

  function makeAlert(a) {
    const li = h('li', {});
    li.parts = {
      shape: h('span', {class: 'shape', 'aria-hidden': 'true'}),
      what: h('span', {class: 'what'}),
      sev: h('span', {class: 'sev'}),
      age: h('span', {class: 'age'}),
      state: h('span', {class: 'state-words'}),
      ackedby: h('span', {class: 'ackedby'}),
      btn: h('button', {class: 'primary', type: 'button', 'data-action': 'ack_alert'}),
    };
    li.parts.btn.addEventListener('click', () => act(li.room, 'ack_alert', {alert_id: li.alertId}));
    li.append(...Object.values(li.parts));
    return li;
  }
  const STATE_SHAPE = {raised: '', repeating: '↻', acked: '✓', awaiting_reset: '◈', paused: '‖'};
  function updateAlert(li, a, v) {
    const s = sev(a);
    const st = alertState(v, a);
    li.room = v.room;
    li.alertId = a.id;
    setClass(li, `alert sev-${s} state-${st} ${a.acked ? 'acked' : 'unacked'}`);
    setAttr(li, 'data-alert', a.id);
    setAttr(li, 'data-kind', a.kind);
    setAttr(li, 'data-acked', a.acked ? 'true' : 'false');
    setAttr(li, 'data-state', st);
    const q = li.parts;
    setText(q.shape, `${s === 'critical' ? '◆' : s === 'warning' ? '▲' : '●'}${STATE_SHAPE[st] ? ' ' + STATE_SHAPE[st] : ''}`);
    setText(q.what, alertWhat(a));
    setText(q.sev, t(`sev.${s}`));
    setAttr(q.age, 'data-raised-at', a.raised_at);
    let words = '';
    switch (st) {
      case 'repeating':
        words = a.reannounced ? t('alert.reannounced', {By: a.prev_acked_by || t('alert.someone')})
          : t('alert.repeated', {N: a.announcements}); break;
      case 'awaiting_reset': words = t('alert.awaiting_reset'); break;
      case 'acked': words = a.resignal_at ? t('alert.acked_active_until', {At: hhmm(iso(a.resignal_at))}) : t('alert.acked_active'); break;
      case 'paused': words = t('alert.paused'); break;
      default: words = t('alert.new');
    }
    setText(q.state, words);
    setAttr(q.state, 'data-resignal-at', a.resignal_at || null);
    show(q.ackedby, !!a.acked);
    setAttr(q.ackedby, 'data-acked-by', a.acked ? (a.acked_by || '') : null);
    if (a.acked) {
      const who = a.acked_by_seen ? (a.acked_by || t('alert.by_booking')) : t('alert.by_before');
      setText(q.ackedby, `✓ ${t('alert.acked_by', {By: who})}${a.acked_at ? ' ' + t('alert.acked_at', {At: timeText(iso(a.acked_at))}) : ''}`);
    }
    show(q.btn, !a.acked);
    setAttr(q.btn, 'data-key', `ack:${a.id}`);
    setText(q.btn, t('action.ack'));
  }

  let orderDirty = false;
  function reorder() {
    orderDirty = false;
    const main = $('tiles');
    const views = [...rooms.values()].sort(less);
    views.forEach((v, i) => {
      const el = tiles.get(v.room).el;
      if (main.children[i] !== el) main.insertBefore(el, main.children[i] || null);
    });
    const counts = {};
    for (const v of views) counts[v.category] = (counts[v.category] || 0) + 1;
    reconcile($('counts'), CAT_ORDER.filter((k) => counts[k]), (k) => k,
      (k) => h('span', {class: `count count-${k}`, 'data-count': k}),
      (el, k) => setText(el, `${SHAPES[k]} ${t(`count.${k}`)}: ${counts[k]}`));
    refreshTimes();
    renderTester();
  }
  const rank = (v) => (typeof v.rank === 'number' ? v.rank : CAT_ORDER.length);
  function oldestUnacked(v) {
    let x = Infinity;
    if (v.no_contact && (!v.no_contact.acked_by || v.category === 'no_contact')) x = iso(v.no_contact.raised_at);
    for (const a of v.alerts) if (!a.acked) x = Math.min(x, iso(a.raised_at));
    return x;
  }
  // The board's order (board.Less in Go): the rank the board gave, then
  // the oldest alarm first, then the room id.
  function less(a, b) {
    if (rank(a) !== rank(b)) return rank(a) - rank(b);
    if (['critical', 'warning', 'no_contact'].includes(a.category)) {
      const ta = oldestUnacked(a), tb = oldestUnacked(b);
      if (ta !== tb) return ta - tb;
    }
    return a.room < b.room ? -1 : a.room > b.room ? 1 : 0;
  }

  function applyRoom(v, arrived) {
    if (!SHOWS_PRESENCE.has(v.phase)) delete v.presence;
    if (!Array.isArray(v.alerts)) v.alerts = [];
    rooms.set(v.room, v);
    updateTile(v);
    noteAlarms(v, arrived || performance.now());
    // The sound follows at once: a higher priority must not wait for the
    // next frame or tick.
    updateSound();
    if (!orderDirty) { orderDirty = true; requestAnimationFrame(reorder); }
  }
  function redrawAll() {
    for (const v of rooms.values()) updateTile(v);
    reorder();
    renderLog();
    renderUnknown();
    updateBanner();
    updatePause();
    if (!$('records').hidden) loadRecords();
  }

  // ---- countdowns and ages, four times a second ----
  function refreshTimes() {
    const now = boardNow();
    for (const p of tiles.values()) {
      const v = rooms.get(p.el.dataset.room);
      if (!v || !v.visit || !v.visit.ends_at || p.countdown.hidden) continue;
      let left = (iso(v.visit.ends_at) - roomNow(v)) / 1000;
      // Never contradict the phase: a room in overtime is over time, a
      // visit still running has time left (however the clocks differ).
      if (v.phase === 'overtime') left = Math.min(left, 0);
      else if (v.phase === 'in_visit') left = Math.max(left, 0);
      // The time big, the words around it small: "0:44:15 left".
      const id = left > 0 || v.phase === 'in_visit' ? 'countdown.left' : 'countdown.over';
      const [before, after] = t(id, {T: '\u0000'}).split('\u0000');
      setText(p.cdBefore, before || '');
      setText(p.cdTime, left > 0 || v.phase === 'in_visit' ? clockText(Math.ceil(left)) : clockText(-left));
      setText(p.cdAfter, after || '');
      p.countdown.dataset.remainingS = String(Math.round(left));
      p.countdown.classList.toggle('over', left < 0 || v.phase === 'overtime');
    }
    for (const el of document.querySelectorAll('[data-raised-at]')) {
      setText(el, t('age.ago', {Age: ageText((now - Date.parse(el.dataset.raisedAt)) / 1000)}));
    }
    setText($('clock'), timeText(now));
    const off = $('clock-offset');
    const big = Math.abs(offset) > 2000;
    setText(off, big ? `⚠ ${t('header.clock_off', {S: Math.round(-offset / 1000)})}` : '');
    off.classList.toggle('off', big);
    updateBanner();
    updatePause();
  }

  // ---- stale banner ----
  function updateBanner() {
    const ban = $('stale-banner');
    let text = '';
    if (!streamOpen) {
      text = streamLostAt ? t('banner.stale.page_lost', {At: timeText(streamLostAt)}) : t('banner.stale.connecting');
    } else if (brokerConnected === false) {
      text = t('banner.stale.broker_lost', {At: timeText(iso(brokerSince))});
    }
    body.dataset.stale = text ? 'true' : 'false';
    show(ban, text !== '');
    if (text) setText($('stale-text'), text);
  }

  // ---- pagers banner ----
  let pagers = [];
  function setPagers(list) {
    pagers = list || [];
    const down = pagers.filter((p) => p.down);
    show($('pager-banner'), down.length > 0);
    body.dataset.pagers = down.length ? 'down' : 'ok';
    const why = (p) => (['paging_down', 'offline'].includes(p.state) ? t(`pager.${p.state}`) : p.state);
    setText($('pager-text'), down.map((p) => `${p.gateway}: ${why(p)}${p.detail ? ' (' + p.detail + ')' : ''}`).join('; '));
  }

  // ---- unknown rooms: ids heard of that are not rooms of this board ----
  function renderUnknown() {
    const sec = $('unknown');
    show(sec, unknownRooms.length > 0);
    if (!unknownRooms.length) return;
    sec.replaceChildren(h('p', {}, h('strong', {text: t('unknown.title')}), ' ', t('unknown.text')),
      h('ul', {}, unknownRooms.map((id) => h('li', {'data-unknown-room': id, text: id}))));
  }

  // ---- sound: IEC 60601-1-8 priorities, armed once per shift ----
  // high: 10 pulses (3+2, 3+2), 880 Hz with harmonics, every ~3 s after a
  // burst; medium: 3 pulses, 660 Hz, every 6 s; low: 2 pulses, 440 Hz,
  // every 20 s. A higher priority interrupts a lower one at once.
  let audio = null;
  let beeps = 0;
  let ticks = 0;
  const PRI = {off: 0, low: 1, medium: 2, high: 3};
  const LEVEL_NAME = {0: 'off', 1: 'info', 2: 'warning', 3: 'critical'};
  const PATTERNS = {
    3: {freq: 880, gain: 0.5, pulse: 0.15, pulses: [0, 0.25, 0.5, 0.9, 1.15, 2.0, 2.25, 2.5, 2.9, 3.15], pause: 3.0},
    2: {freq: 660, gain: 0.3, pulse: 0.2, pulses: [0, 0.4, 0.8], pause: 6.0},
    1: {freq: 440, gain: 0.15, pulse: 0.2, pulses: [0, 0.4], pause: 20.0},
  };
  let playing = {pri: 0, nodes: [], nextAt: 0};
  const rings = [];          // every burst started: what a test reads
  const firstSeen = new Map(); // alarm key -> {arrived, pri}: when it first reached this page
  let wave = null;

  function arm() {
    if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
    audio.resume().then(updateSound);
    body.dataset.sound = 'off';
    show($('sound-banner'), false);
    show($('pause'), true);
    updateSound();
    toast(t('toast.armed'));
  }

  // alarms lists what should sound now: each alarm's key and priority.
  function alarms() {
    const out = [];
    for (const v of rooms.values()) {
      if (v.no_contact && !v.no_contact.acked_by) {
        const k = `${v.room}/no_contact@${v.no_contact.raised_at}`;
        out.push({key: k, base: k, pri: PRI.high});
      }
      for (const a of v.alerts) {
        if (a.acked) continue;
        const s = sev(a);
        // Staff at the room see its warnings for themselves; a critical
        // alert sounds whoever is there.
        if (s !== 'critical' && v.staff) continue;
        out.push({key: `${v.room}/${a.id}/${a.announcements}`, base: `${v.room}/${a.id}`, pri: s === 'critical' ? PRI.high : s === 'warning' ? PRI.medium : PRI.low});
      }
    }
    // The board's own fault, and deaf handsets, sound too.
    if (body.dataset.stale === 'true') out.push({key: 'board/stale', base: 'board/stale', pri: PRI.medium});
    if (body.dataset.pagers === 'down') out.push({key: 'board/pagers', base: 'board/pagers', pri: PRI.medium});
    return out;
  }
  function noteAlarms(v, arrived) {
    const now = performance.now();
    for (const al of alarms()) {
      if (!firstSeen.has(al.key)) firstSeen.set(al.key, {arrived, dom: now, pri: al.pri});
    }
  }

  function pulseWave() {
    if (wave) return wave;
    // Not a pure tone: the fundamental and four harmonics (IEC 60601-1-8).
    const real = new Float32Array([0, 1, 0.6, 0.45, 0.3, 0.2]);
    wave = audio.createPeriodicWave(real, new Float32Array(real.length));
    return wave;
  }
  function stopPlaying() {
    const now = audio ? audio.currentTime : 0;
    for (const n of playing.nodes) {
      try { n.g.gain.cancelScheduledValues(now); n.g.gain.setValueAtTime(0, now); n.o.stop(now + 0.01); } catch (e) { /* already stopped */ }
    }
    playing.nodes = [];
  }
  // ctxToPerf maps a time of the audio context to performance.now(): when
  // that sample leaves for the speaker.
  function ctxToPerf(tc) {
    const ts = audio.getOutputTimestamp ? audio.getOutputTimestamp() : null;
    if (ts && ts.performanceTime > 0) return ts.performanceTime + (tc - ts.contextTime) * 1000;
    return performance.now() + (tc - audio.currentTime + (audio.outputLatency || audio.baseLatency || 0)) * 1000;
  }
  function startBurst(pri, trigger) {
    const p = PATTERNS[pri];
    const t0 = audio.currentTime + 0.005;
    for (const off of p.pulses) {
      const o = audio.createOscillator(), g = audio.createGain();
      o.setPeriodicWave(pulseWave());
      o.frequency.value = p.freq;
      const s = t0 + off, e = s + p.pulse;
      g.gain.setValueAtTime(0, s);
      g.gain.linearRampToValueAtTime(p.gain, s + 0.015);
      g.gain.setValueAtTime(p.gain, e - 0.02);
      g.gain.linearRampToValueAtTime(0, e);
      o.connect(g).connect(audio.destination);
      o.start(s);
      o.stop(e + 0.01);
      playing.nodes.push({o, g});
    }
    const len = p.pulses[p.pulses.length - 1] + p.pulse;
    playing.pri = pri;
    playing.nextAt = performance.now() + (len + p.pause) * 1000;
    beeps++;
    body.dataset.beeps = String(beeps);
    body.dataset.lastRing = LEVEL_NAME[pri];
    const first = ctxToPerf(t0);
    const r = {level: LEVEL_NAME[pri], started: first, decided: performance.now()};
    if (trigger) Object.assign(r, {key: trigger.key, arrived: trigger.arrived, dom: trigger.dom});
    rings.push(r);
    if (rings.length > 200) rings.shift();
    body.dataset.lastRingMs = trigger ? String(Math.round(first - trigger.dom)) : '';
  }
  function updateSound() {
    const all = alarms();
    let pri = 0, top = null;
    for (const al of all) {
      if (al.pri > pri || (al.pri === pri && top && (firstSeen.get(al.key) || {arrived: 0}).arrived > (firstSeen.get(top.key) || {arrived: 0}).arrived)) { pri = al.pri; top = al; }
    }
    // A new alarm ends the pause: the pause was for the alarms sounding
    // then (an alert merely repeated is not new; one announced again after
    // its acknowledgement is).
    if (paused() && all.some((al) => al.pri >= PRI.medium && !pausedKeys.has(al.base))) endPause();
    if (paused()) pri = 0;
    body.dataset.alarm = LEVEL_NAME[pri];
    if (!audio) { body.dataset.sound = 'unarmed'; return; }
    body.dataset.audioState = audio.state;
    body.dataset.sound = LEVEL_NAME[pri];
    if (audio.state !== 'running') { if (audio.state === 'suspended') audio.resume(); return; }
    const now = performance.now();
    if (pri !== playing.pri) {
      // Higher: interrupt at once. Lower (acknowledged): stop at once,
      // and the lower pattern starts.
      stopPlaying();
      playing.pri = pri;
      if (pri > 0) startBurst(pri, top && firstSeen.get(top.key) ? {key: top.key, ...firstSeen.get(top.key)} : null);
      return;
    }
    if (pri > 0 && now >= playing.nextAt) startBurst(pri, null);
  }

  function pauseAudio() {
    if (!audio) return;
    pausedUntil = performance.now() + PAUSE_MS;
    pausedKeys = new Set(alarms().map((al) => al.base));
    updatePause();
    updateSound();
    for (const v of rooms.values()) updateTile(v);
  }
  function endPause() {
    pausedUntil = 0;
    pausedKeys = new Set();
    updatePause();
    for (const v of rooms.values()) updateTile(v);
  }
  function updatePause() {
    const on = paused();
    if (!on && pausedUntil) { endPause(); updateSound(); return; }
    body.dataset.paused = on ? 'true' : 'false';
    show($('pause-banner'), on);
    if (on) setText($('pause-text'), t('banner.paused.text', {T: clockText(Math.ceil((pausedUntil - performance.now()) / 1000))}));
  }

  // ---- actions ----
  function toast(msg) {
    const el = $('toast');
    el.textContent = msg;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.textContent = ''; }, 6000);
  }
  const BOARD_CODES = new Set(['csrf', 'no_reply', 'not_connected', 'unknown_room', 'no_contact_alarm', 'network']);
  const ACTIONS = new Set(['ack_alert', 'ack_contact', 'extend_visit', 'end_visit', 'set_ready', 'out_of_service', 'back_in_service']);
  function showReply(room, res) {
    const p = tiles.get(room);
    const what = ACTIONS.has(res.action) ? t(`done.${res.action}`) : String(res.action || '');
    let text;
    if (res.ok) {
      text = `✓ ${t('reply.ok', {What: what, By: res.operator})}`;
    } else {
      // The board's own refusals in the guard's words; a room's, in its own.
      const msg = BOARD_CODES.has(res.code) ? t(`error.${res.code}`) : res.message;
      text = `✕ ${t('reply.refused', {What: what, Code: res.code || 'error'})}${msg ? ' — ' + msg : ''}`;
      if (res.blockers && res.blockers.length) text += ` (${t('reply.blockers', {List: res.blockers.join(', ')})})`;
    }
    if (p) {
      setClass(p.reply, `reply ${res.ok ? 'ok' : 'err'}`);
      p.reply.textContent = text;
      p.reply.dataset.code = res.ok ? 'ok' : (res.code || 'error');
    }
    toast(`${room}: ${text}`);
  }
  async function act(room, action, payload) {
    if (!session) return;
    busy = true;
    window.guardboard.clicks++;
    try {
      const resp = await fetch(`/api/rooms/${encodeURIComponent(room)}/action/${action}`, {
        method: 'POST', credentials: 'same-origin',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf},
        body: JSON.stringify(payload || {}),
      });
      if (resp.status === 401) { location.href = '/login'; return; }
      let res;
      try { res = await resp.json(); } catch { res = {ok: false, code: `http_${resp.status}`, message: resp.statusText}; }
      res.action = res.action || action;
      showReply(room, res);
    } catch (e) {
      showReply(room, {ok: false, action, code: 'network', message: String(e)});
    } finally {
      busy = false;
    }
  }

  let pending = null;
  function openConfirm(title, text, extra, onOK) {
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-extra').replaceChildren(...(extra || []));
    pending = onOK;
    const d = $('confirm');
    d.returnValue = '';
    d.showModal();
    $('confirm-cancel').focus();
  }
  $('confirm').addEventListener('close', () => {
    const d = $('confirm');
    const f = pending;
    pending = null;
    if (d.returnValue === 'ok' && f) f();
  });
  function confirmAct(room, action, payload, title, text) {
    openConfirm(title, text, [], () => act(room, action, payload));
  }
  function confirmExtend(room) {
    const v = rooms.get(room) || {};
    const sel = h('select', {id: 'extend-by', 'aria-label': t('confirm.extend.by')},
      [5, 10, 15, 30, 60].map((m) => h('option', {value: `${m}m`, text: t('confirm.extend.minutes', {M: m})})));
    sel.value = '15m';
    const max = v.visit && v.visit.max_s ? ' ' + t('confirm.extend.max', {M: Math.round(v.visit.max_s / 60)}) : '';
    openConfirm(t('confirm.extend.title'), t('confirm.extend.text', {Room: room}) + max, [sel],
      () => act(room, 'extend_visit', {add: sel.value}));
  }
  function confirmOutOfService(room) {
    const inp = h('input', {id: 'oos-reason', maxlength: '200', 'aria-label': t('confirm.oos.reason'), placeholder: t('confirm.oos.reason')});
    openConfirm(t('confirm.oos.title'), t('confirm.oos.text', {Room: room}), [inp],
      () => act(room, 'out_of_service', {reason: inp.value}));
  }

  // ---- alert log ----
  const LOG_TYPES = new Set(['alert_raised', 'alert_escalated', 'alert_repeated', 'alert_reannounced', 'alert_acked',
    'alert_cleared', 'service_changed', 'link_offline', 'link_stale', 'link_online', 'link_unknown', 'records_lost',
    'state_lost', 'contact_lost', 'contact_acked', 'contact_back']);
  function logText(e) {
    let text = `${timeText(iso(e.at))}  ${e.room || t('log.board')}  `;
    if (e.alert) text += `${sev(e.alert) === 'critical' ? '◆' : '▲'} ${alertWhat(e.alert)} `;
    text += LOG_TYPES.has(e.type) ? t(`log.${e.type}`) : e.type;
    if (e.by) text += ' ' + t('log.by', {By: e.by === 'on_site' ? t('log.on_site') : e.by});
    if (e.type === 'service_changed' && e.detail) text += ` — ${e.detail}`;
    if (e.type === 'records_lost' && e.detail) text += ` — ${e.detail}`;
    if (e.late) text += ' ' + t('log.late');
    return text;
  }
  function logItem(e) {
    return h('li', {class: `sev-${e.severity === 'critical' || e.severity === 'warning' ? e.severity : 'notice'}`, 'data-log-type': e.type,
      'data-log-room': e.room || '', 'data-log-alert': e.alert ? e.alert.id : ''}, logText(e));
  }
  function addLog(e, id) {
    if (id && logIds.has(id)) return;
    if (id) logIds.add(id);
    logEntries.push(e);
    if (logEntries.length > 200) logEntries.shift();
    const list = $('log-list');
    list.prepend(logItem(e));
    while (list.children.length > 200) list.lastChild.remove();
  }
  function renderLog() {
    $('log-list').replaceChildren(...logEntries.slice().reverse().map(logItem));
  }

  // ---- response-time records (EN 50134-7) ----
  let recordsDays = 1;
  async function loadRecords() {
    const r = await fetch(`/api/records?days=${recordsDays}`, {credentials: 'same-origin'});
    if (!r.ok) return;
    renderRecords(await r.json());
  }
  const SVG = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, text) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }
  function axisText(sec) {
    sec = Math.round(sec);
    return sec < 120 ? t('age.s', {S: sec}) : t('axis.min', {M: Math.round(sec / 60)});
  }
  // chart draws the time to acknowledge of each alert against the hour of
  // the day it was raised (this screen's time zone), with each hour's median.
  function chart(alerts) {
    const W = 960, H = 300, L = 96, B = 40, T = 10, R = 10;
    const acked = alerts.filter((a) => a.ack_s >= 0);
    const top = Math.max(60, ...acked.map((a) => a.ack_s));
    const x = (hr) => L + (W - L - R) * hr / 24;
    const y = (sec) => H - B - (H - B - T) * Math.min(sec, top) / top;
    const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': t('records.chart'),
      'data-points': acked.length});
    svg.append(s('rect', {x: L, y: T, width: W - L - R, height: H - B - T, class: 'plot'}));
    for (let hr = 0; hr <= 24; hr += 3) {
      svg.append(s('line', {x1: x(hr), x2: x(hr), y1: T, y2: H - B, class: 'grid'}));
      svg.append(s('text', {x: x(hr), y: H - B + 18, 'text-anchor': 'middle', class: 'axis'}, String(hr).padStart(2, '0')));
    }
    for (const f of [0, 0.5, 1]) {
      svg.append(s('line', {x1: L, x2: W - R, y1: y(top * f), y2: y(top * f), class: 'grid'}));
      svg.append(s('text', {x: L - 6, y: y(top * f) + 5, 'text-anchor': 'end', class: 'axis'}, axisText(top * f)));
    }
    svg.append(s('text', {x: (W + L) / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis-title'}, t('records.x_axis')));
    svg.append(s('text', {x: 14, y: (H - B) / 2, 'text-anchor': 'middle', class: 'axis-title', transform: `rotate(-90 14 ${(H - B) / 2})`}, t('records.y_axis')));
    const byHour = new Map();
    for (const a of acked) {
      const d = new Date(iso(a.raised_at));
      const hr = d.getHours() + d.getMinutes() / 60;
      if (!byHour.has(d.getHours())) byHour.set(d.getHours(), []);
      byHour.get(d.getHours()).push(a.ack_s);
      const c = s('circle', {cx: x(hr), cy: y(a.ack_s), r: 6, class: `pt sev-${sev(a)}`, 'data-room': a.room, 'data-ack-s': a.ack_s});
      c.append(s('title', {}, `${a.room} ${kindName(a.kind)} ${dateTimeText(iso(a.raised_at))}: ${spanText(a.ack_s)} ${t('records.by', {By: a.acked_by || '?'})}`));
      svg.append(c);
    }
    for (const [hr, v] of byHour) {
      v.sort((p, q) => p - q);
      const med = v[Math.floor((v.length - 1) / 2)];
      svg.append(s('line', {x1: x(hr) + 2, x2: x(hr + 1) - 2, y1: y(med), y2: y(med), class: 'median', 'data-hour': hr, 'data-median-s': med}));
    }
    return svg;
  }
  function renderRecords(d) {
    const sec = $('records');
    const sel = h('select', {id: 'records-days', 'aria-label': t('records.period'), 'data-key': 'records-days',
      onchange: (e) => { recordsDays = Number(e.target.value); loadRecords(); }},
      [[1, 'records.day'], [7, 'records.week'], [31, 'records.month']].map(([n, k]) => h('option', {value: n, text: t(k)})));
    sel.value = String(recordsDays);
    const csv = h('a', {href: `/api/records.csv?days=${recordsDays}`, download: `response-times-${recordsDays}d.csv`, class: 'button', id: 'records-csv'}, t('records.csv'));
    const cell = (v) => h('td', {}, v);
    const shiftRows = d.shifts.map((x) => h('tr', {'data-shift-room': x.room},
      cell(dateTimeText(Date.parse(x.shift))), cell(x.room), cell(String(x.alerts)), cell(String(x.acked)),
      cell(x.ack_p50_s >= 0 ? spanText(x.ack_p50_s) : '—'), cell(x.ack_max_s >= 0 ? spanText(x.ack_max_s) : '—'), cell(String(x.nuisance))));
    const roomRows = d.rooms.map((x) => h('tr', {'data-room-total': x.room, 'data-nuisance': x.nuisance},
      cell(x.room), cell(String(x.alerts)), cell(String(x.nuisance)), cell(`${Math.round(x.nuisance_rate * 100)} %`)));
    const th = (...ks) => h('tr', {}, ks.map((k) => h('th', {scope: 'col'}, t(k))));
    sec.replaceChildren(
      h('h2', {}, t('records.title'), ' ', sel, ' ', csv),
      h('p', {class: 'hint'}, t('records.hint')),
      chart(d.alerts),
      h('div', {class: 'tables'},
        h('table', {}, h('caption', {}, t('records.per_shift')),
          h('thead', {}, th('records.col.shift', 'records.col.room', 'records.col.alerts', 'records.col.acked', 'records.col.ack_p50', 'records.col.ack_max', 'records.col.nuisance')),
          h('tbody', {}, shiftRows)),
        h('table', {}, h('caption', {}, t('records.per_room')),
          h('thead', {}, th('records.col.room', 'records.col.alerts', 'records.col.nuisance', 'records.col.nuisance_rate')),
          h('tbody', {}, roomRows))));
    sec.dataset.loaded = String(d.alerts.length);
  }
  function toggleRecords() {
    const sec = $('records');
    sec.hidden = !sec.hidden;
    $('records-toggle').setAttribute('aria-expanded', String(!sec.hidden));
    if (!sec.hidden) loadRecords();
  }

  // ---- tester panel (simulated rooms) ----
  const LAMPS = ['in_use', 'warning', 'alarm_light', 'alarm_sounder', 'reassurance'];
  function simRooms() {
    return [...rooms.values()].filter((v) => v.backend === 'sim').map((v) => v.room).sort();
  }
  // The tester's clicks reach the room in the order they were made: each
  // is sent when the one before it has been answered.
  let simQueue = Promise.resolve();
  let simPending = 0;
  function simSet(room, path, control) {
    simPending++;
    body.dataset.simPending = String(simPending);
    simQueue = simQueue.then(() => simSend(room, path, control)).finally(() => {
      simPending--;
      body.dataset.simPending = String(simPending);
    });
  }
  async function simSend(room, path, control) {
    try {
      const resp = await fetch(`/api/rooms/${encodeURIComponent(room)}/${path}`, {
        method: 'POST', credentials: 'same-origin', signal: AbortSignal.timeout(10000),
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf},
        body: JSON.stringify(control),
      });
      const res = await resp.json().catch(() => ({}));
      if (!resp.ok) toast(`${t('tester.error')}: ${res.error || resp.status}`);
    } catch (e) {
      toast(`${t('tester.error')}: ${e}`);
    }
  }
  function renderTester() {
    const sec = $('tester');
    const btn = $('tester-toggle');
    const list = simRooms();
    btn.hidden = !(session && session.sim_driver && list.length);
    if (sec.hidden) return;
    if (!list.includes(testerRoom)) testerRoom = list[0] || '';
    const v = rooms.get(testerRoom);
    // The panel is built again only when what it offers changes; a change
    // of the room's state updates it in place: a panel rebuilt between a
    // click's press and its release loses the click.
    const key = JSON.stringify([testerRoom, list, lang, !!v, v && v.panic_points,
      !!(v && session.link_cutter && (session.cuttable || []).includes(v.room))]);
    if (key === testerDrawn && sec.childElementCount) {
      updateTester(sec, v);
      return;
    }
    testerDrawn = key;
    const focusKey = sec.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    const sel = h('select', {id: 'tester-room', 'aria-label': t('tester.room'), 'data-key': 'room',
      onchange: (e) => { testerRoom = e.target.value; renderTester(); }},
      list.map((r) => h('option', {value: r, text: r})));
    sel.value = testerRoom;
    const kids = [h('h2', {}, t('tester.title'), ' ', sel)];
    if (v) {
      const b = (k, label, control, path) => h('button', {type: 'button', 'data-key': k, 'data-sim': k,
        onclick: () => simSet(v.room, path || 'sim', control)}, label);
      const groups = [
        h('fieldset', {}, h('legend', {'data-legend': 'door'}), b('door-open', t('tester.door_open'), {door: 'open'}), b('door-closed', t('tester.door_close'), {door: 'closed'})),
        h('fieldset', {}, h('legend', {'data-legend': 'bolt'}), b('lock-locked', t('tester.bolt_throw'), {lock: 'locked'}), b('lock-unlocked', t('tester.bolt_draw'), {lock: 'unlocked'})),
        h('fieldset', {}, h('legend', {}, t('tester.presence')), b('presence-on', t('tester.presence_on'), {presence: true}), b('presence-off', t('tester.presence_off'), {presence: false})),
      ];
      const points = v.panic_points && v.panic_points.length ? v.panic_points : ['panic'];
      const pg = h('fieldset', {}, h('legend', {}, t('tester.points')));
      for (const pt of points) {
        pg.append(b(`panic-press-${pt}`, t('tester.press', {Point: pt}), {points: {[pt]: 'pressed'}}),
          b(`panic-release-${pt}`, t('tester.release', {Point: pt}), {points: {[pt]: 'released'}}));
        // What an attacker does to the wires: a bridge (a supervised loop
        // reports it; a plain contact goes silent), a cut; mend undoes both.
        const wire = (w) => ({wire: {[`panic:${pt}`]: w}});
        pg.append(b(`panic-bridge-${pt}`, t('tester.bridge', {Point: pt}), wire('bridged')),
          b(`panic-cut-${pt}`, t('tester.cut', {Point: pt}), wire('cut')),
          b(`panic-mend-${pt}`, t('tester.mend', {Point: pt}), wire('sound')));
      }
      groups.push(pg);
      groups.push(h('fieldset', {}, h('legend', {}, t('tester.staff')), b('staff-on', t('tester.staff_on'), {staff: true}), b('staff-off', t('tester.staff_off'), {staff: false})));
      if (session.link_cutter && (session.cuttable || []).includes(v.room)) {
        groups.push(h('fieldset', {}, h('legend', {}, t('tester.link')), b('link-cut', t('tester.link_cut'), {cut: true}, 'link'),
          b('link-restore', t('tester.link_restore'), {cut: false}, 'link')));
      }
      kids.push(h('div', {class: 'controls'}, groups));
      const lamps = h('div', {class: 'lamps', 'aria-label': t('tester.lamps')});
      for (const k of LAMPS) {
        lamps.append(h('div', {class: 'lamp', 'data-lamp': k},
          h('div', {class: 'bulb', 'aria-hidden': 'true'}), h('span', {text: t(`lamp.${k}`)}), h('b')));
      }
      kids.push(lamps);
    }
    sec.replaceChildren(...kids);
    updateTester(sec, v);
    if (focusKey) {
      const f = sec.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
      if (f) f.focus();
    }
  }
  // updateTester writes what the room's state says into the panel as
  // built: the door's and the bolt's legends, the lamps.
  function updateTester(sec, v) {
    if (!v) return;
    const door = DOORS.has(v.door) ? t(`door.${v.door}`) : '?';
    const bolt = BOLTS.has(v.lock) ? t(`bolt.${v.lock}`) : '?';
    const set = (el, text) => { if (el && el.textContent !== text) el.textContent = text; };
    set(sec.querySelector('legend[data-legend="door"]'), t('tester.door', {Now: door}));
    set(sec.querySelector('legend[data-legend="bolt"]'), t('tester.bolt', {Now: bolt}));
    for (const k of LAMPS) {
      const lamp = sec.querySelector(`.lamp[data-lamp="${k}"]`);
      if (!lamp) continue;
      const mode = (v.lamps && v.lamps[k]) || 'unknown';
      if (lamp.dataset.mode !== mode) lamp.dataset.mode = mode;
      set(lamp.querySelector('b'), mode);
    }
  }
  function toggleTester() {
    const sec = $('tester');
    sec.hidden = !sec.hidden;
    $('tester-toggle').setAttribute('aria-expanded', String(!sec.hidden));
    renderTester();
  }

  // ---- the live stream ----
  let es = null;
  function setLink(l) {
    brokerConnected = l.connected;
    brokerSince = l.since;
    body.dataset.broker = l.connected ? 'connected' : 'lost';
    updateBanner();
    updateSound();
  }
  function track(e) { if (e.lastEventId) lastId = e.lastEventId; body.dataset.lastEventId = lastId; }
  function connect() {
    if (es) es.close();
    const url = '/api/events' + (lastId ? `?last_event_id=${encodeURIComponent(lastId)}` : '');
    es = new EventSource(url);
    es.addEventListener('open', () => { streamOpen = true; body.dataset.stream = 'open'; updateBanner(); updateSound(); });
    es.addEventListener('snapshot', (e) => {
      const arrived = performance.now();
      track(e);
      const snap = JSON.parse(e.data);
      snapshots++;
      body.dataset.snapshots = String(snapshots);
      sampleClock(snap.now);
      const seen = new Set();
      for (const v of snap.rooms) { applyRoom(v, arrived); seen.add(v.room); }
      for (const r of [...rooms.keys()]) if (!seen.has(r)) { rooms.delete(r); tiles.get(r).el.remove(); tiles.delete(r); }
      logEntries.length = 0;
      logIds.clear();
      for (const l of snap.log) addLog(l, '');
      renderLog();
      unknownRooms = snap.unknown || [];
      renderUnknown();
      setLink(snap.link);
      setPagers(snap.pagers);
    });
    es.addEventListener('pagers', (e) => { track(e); setPagers(JSON.parse(e.data)); updateSound(); });
    es.addEventListener('unknown', (e) => { track(e); unknownRooms = JSON.parse(e.data) || []; renderUnknown(); });
    es.addEventListener('room', (e) => { const arrived = performance.now(); track(e); stats.room++; applyRoom(JSON.parse(e.data), arrived); });
    es.addEventListener('log', (e) => {
      track(e);
      const l = JSON.parse(e.data);
      stats.log++;
      stats.logTypes[l.type] = (stats.logTypes[l.type] || 0) + 1;
      addLog(l, e.lastEventId);
    });
    es.addEventListener('link', (e) => { track(e); stats.link++; setLink(JSON.parse(e.data)); });
    es.addEventListener('tick', (e) => { sampleClock(JSON.parse(e.data).now); });
    es.addEventListener('error', () => {
      if (streamOpen) streamLostAt = Date.now();
      streamOpen = false;
      body.dataset.stream = es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting';
      updateBanner();
      updateSound();
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error): ask again ourselves, with
        // the last id in the URL, unless the session is over.
        setTimeout(async () => {
          const r = await fetch('/api/session', {credentials: 'same-origin'}).catch(() => null);
          if (r && r.status === 401) { location.href = '/login'; return; }
          connect();
        }, 1000);
      }
    });
  }

  // ---- start ----
  async function setLanguage(l) {
    await fetch('/api/prefs', {method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf}, body: JSON.stringify({lang: l})}).catch(() => null);
    await loadWords(l);
    fmtCache.clear();
    drawHeader();
    redrawAll();
  }
  function drawHeader() {
    setText($('operator'), t('header.operator', {Op: session.operator}));
    const title = t('header.title', {Site: session.title});
    setText($('title'), title);
    document.title = title;
  }
  async function start() {
    const r = await fetch('/api/session', {credentials: 'same-origin'});
    if (r.status === 401) { location.href = '/login'; return; }
    session = await r.json();
    await loadWords(session.lang);
    drawHeader();
    $('arm').addEventListener('click', arm);
    $('pause').addEventListener('click', pauseAudio);
    $('resume').addEventListener('click', () => { endPause(); updateSound(); });
    $('tester-toggle').addEventListener('click', toggleTester);
    $('records-toggle').addEventListener('click', toggleRecords);
    $('lang').addEventListener('change', (e) => setLanguage(e.target.value));
    $('logout').addEventListener('click', async () => {
      await fetch('/logout', {method: 'POST', credentials: 'same-origin', headers: {'X-CSRF-Token': session.csrf}});
      location.href = '/login';
    });
    document.addEventListener('keydown', (e) => {
      if (e.target.closest('input, select, textarea, dialog') || e.ctrlKey || e.metaKey || e.altKey) return;
      const k = e.key.toLowerCase();
      if (k === 'a') { e.preventDefault(); arm(); }
      if (k === 'p' && audio) { e.preventDefault(); pauseAudio(); }
      if (k === 'r') { e.preventDefault(); toggleRecords(); }
      if (k === 't' && !$('tester-toggle').hidden) { e.preventDefault(); toggleTester(); }
    });
    connect();
    setInterval(() => { ticks++; refreshTimes(); updateSound(); }, 250);
  }
  // What a test or a supervisor's script may read.
  window.guardboard = {
    rooms, get offset() { return offset; }, get snapshots() { return snapshots; }, get lastId() { return lastId; },
    get audioState() { return audio ? audio.state : 'none'; }, get beeps() { return beeps; }, get ticks() { return ticks; },
    get busy() { return busy; }, stats, rings, clicks: 0, get lang() { return lang; }, get missingWords() { return [...missing]; },
    get paused() { return paused(); },
    // Draw a tile from a view as if the board had sent it (the page's own
    // privacy filter applies).
    apply: (v) => applyRoom(v),
  };
  start();
})();
