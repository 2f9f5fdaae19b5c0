// Guard station board: draws the tiles from the board's live stream
// (Server-Sent Events), rings until alerts are acknowledged, and sends the
// guard's actions. No library, no build step.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const body = document.body;

  // ---- state ----
  const rooms = new Map();   // room id -> view (from the board)
  const tiles = new Map();   // room id -> <article>
  let session = null;        // {operator, csrf, title, sim_driver}
  let lastId = '';           // id of the last update seen (resume point)
  let snapshots = 0;         // how many snapshots the page took (a resume takes none)
  let brokerConnected = null;
  let brokerSince = '';
  let streamOpen = false;
  let streamLostAt = 0;
  const logIds = new Set();
  let testerRoom = '';
  let testerDrawn = '';     // what the tester panel was drawn from
  let busy = false;          // an action is in flight
  const stats = {room: 0, log: 0, link: 0, snapshot: 0, logTypes: {}}; // updates received, by kind

  // ---- clock: the board's time, corrected for this computer's clock ----
  // Every tick (1 s) carries the board's time. A sample is board time minus
  // this computer's time at arrival, i.e. the true offset minus the network
  // delay; the largest sample of the last 30 is the one with the least
  // delay, so it is the offset used. Countdowns are ends_at minus the
  // board's time so estimated (rooms and board keep NTP time: info.clock_synced).
  const offsets = [];
  let offset = 0;
  function sampleClock(boardNow) {
    const t = Date.parse(boardNow);
    if (isNaN(t)) return;
    offsets.push(t - Date.now());
    if (offsets.length > 30) offsets.shift();
    offset = Math.max(...offsets);
    body.dataset.clockOffsetMs = String(Math.round(offset));
  }
  const boardNow = () => Date.now() + offset;

  // ---- small DOM helper ----
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k.startsWith('data-')) el.setAttribute(k, String(v));
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }

  function clockText(sec) {
    sec = Math.max(0, Math.floor(sec));
    const hh = Math.floor(sec / 3600), mm = Math.floor(sec % 3600 / 60), ss = sec % 60;
    return `${hh}:${String(mm).padStart(2, '0')}:${String(ss).padStart(2, '0')}`;
  }
  function ageText(sec) {
    sec = Math.max(0, Math.floor(sec));
    if (sec < 60) return `${sec} s`;
    if (sec < 3600) return `${Math.floor(sec / 60)} min ${String(sec % 60).padStart(2, '0')} s`;
    return `${Math.floor(sec / 3600)} h ${String(Math.floor(sec % 3600 / 60)).padStart(2, '0')} min`;
  }
  function hhmmss(iso) {
    const d = new Date(iso);
    return isNaN(d) ? '' : d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false});
  }

  // ---- what a tile says ----
  const CATS = {
    critical: {shape: '◆', label: 'CRITICAL ALERT'},
    warning: {shape: '▲', label: 'WARNING'},
    overtime: {shape: '⧗', label: 'OVERTIME'},
    visit: {shape: '●', label: 'IN VISIT'},
    idle: {shape: '○', label: 'READY'},
    out_of_service: {shape: '⊘', label: 'OUT OF SERVICE'},
    offline: {shape: '✕', label: 'OFFLINE'},
  };
  const CAT_ORDER = ['critical', 'warning', 'overtime', 'visit', 'idle', 'out_of_service', 'offline'];
  const LINKS = {
    online: '● online', offline: '✕ OFFLINE (last will)', stale: '⧗ STALE', unknown: '? no availability',
  };
  const KIND = {
    panic: 'PANIC', door_locked: 'DOOR BOLTED', time_up: 'TIME UP', sensor_fault: 'SENSOR FAULT',
    not_vacated: 'NOT VACATED', welfare_check: 'WELFARE CHECK', system_fault: 'SYSTEM FAULT', output_fault: 'OUTPUT FAULT',
    line_drift: 'LINE DRIFT',
  };
  const PHASE = {
    idle: 'idle', in_visit: 'visit running', overtime: 'visit over time', inspection: 'inspection after the visit',
    out_of_service: 'out of service',
  };
  // Privacy: presence is shown only in these phases, whatever the board sent.
  const SHOWS_PRESENCE = new Set(['idle', 'out_of_service']);

  function alertWhat(a) {
    let s = KIND[a.kind] || a.kind.toUpperCase();
    if (a.point) s += ` at ${a.point}`;
    if (a.input) s += ` (${a.input})`;
    if (a.output) s += ` (${a.output})`;
    if (a.source) s += ` (${a.source})`;
    return s;
  }

  function catLabel(v) {
    if (v.category === 'critical' || v.category === 'warning') {
      const top = v.alerts.find((a) => !a.acked);
      if (top) return `${v.category === 'critical' ? 'CRITICAL' : 'WARNING'}: ${KIND[top.kind] || top.kind}`;
    }
    if (v.category === 'offline') {
      if (v.link === 'stale') return 'STALE — NO DATA';
      if (v.link === 'unknown' || !v.phase) return 'NO DATA';
    }
    if (v.category === 'visit' && v.phase === 'inspection') return 'INSPECTION';
    if (v.category === 'idle' && v.alerts.length) return 'IDLE — NOT READY (alert active)';
    return CATS[v.category].label;
  }

  function oldestUnacked(v) {
    let t = Infinity;
    for (const a of v.alerts) if (!a.acked) t = Math.min(t, Date.parse(a.raised_at));
    return t;
  }
  // The board's order (the same as board.Less in Go).
  function less(a, b) {
    const ca = CAT_ORDER.indexOf(a.category), cb = CAT_ORDER.indexOf(b.category);
    if (ca !== cb) return ca - cb;
    if (a.category === 'critical' || a.category === 'warning') {
      const ta = oldestUnacked(a), tb = oldestUnacked(b);
      if (ta !== tb) return ta - tb;
    }
    return a.room < b.room ? -1 : a.room > b.room ? 1 : 0;
  }

  // A room whose link is lost (offline or stale) while a visit or the
  // inspection after one is running: nothing from it reaches the board,
  // its panic points included. The board rings (warning) until a guard at
  // this screen says it has been seen; a new loss rings again.
  const lostSeen = new Set(); // lostKey of losses seen on this screen
  const WATCHED = new Set(['in_visit', 'overtime', 'inspection']);
  function lostWhileWatched(v) {
    return (v.link === 'offline' || v.link === 'stale') && WATCHED.has(v.phase);
  }
  function lostKey(v) { return `${v.room}@${v.last_state || ''}`; }
  function seeLoss(v) {
    lostSeen.add(lostKey(v));
    drawn.delete(v.room);
    updateTile(v);
    updateSound();
  }

  function renderTile(v) {
    const inVisit = v.phase === 'in_visit' || v.phase === 'overtime';
    const cat = CATS[v.category] || CATS.offline;
    const kids = [];
    kids.push(h('header', {},
      h('h2', {text: v.room}),
      h('span', {class: `link link-${v.link}`, 'data-link': v.link, text: LINKS[v.link] || v.link})));
    kids.push(h('div', {class: 'cat', 'data-category': v.category},
      h('span', {class: 'shape', 'aria-hidden': 'true', text: cat.shape}), h('span', {text: catLabel(v)})));
    if (v.link === 'stale' || v.link === 'offline') {
      const last = v.last_state ? `last state ${hhmmss(v.last_state)}` : 'no state yet';
      kids.push(h('div', {class: 'facts', 'data-last-state': v.last_state || ''},
        `${last}; a state is due every ${v.heartbeat_s} s (stale after ${2 * v.heartbeat_s} s)`));
    }
    if (v.phase) kids.push(h('div', {class: 'facts'}, 'Phase: ', h('b', {text: PHASE[v.phase] || v.phase}),
      v.phase === 'out_of_service' && v.service_reason ? ` (${v.service_reason})` : ''));
    if (v.visit && v.visit.ends_at) {
      kids.push(h('div', {class: 'countdown', 'data-ends-at': v.visit.ends_at, 'aria-live': 'off'}));
    }
    if (v.door || v.lock) {
      const facts = h('div', {class: 'facts'}, 'Door: ', h('b', {text: v.door || '?'}), ' · Lock: ', h('b', {text: v.lock || '?'}));
      if (v.presence && SHOWS_PRESENCE.has(v.phase)) facts.append(' · Presence: ', h('b', {'data-presence': '', text: v.presence}));
      kids.push(facts);
    }
    if (v.has_info && !v.clock_synced) kids.push(h('div', {class: 'facts'}, '⚠ room clock not synchronised'));
    const list = h('ul', {class: 'alerts'});
    if (lostWhileWatched(v)) {
      const seen = lostSeen.has(lostKey(v));
      const li = h('li', {class: `alert sev-warning ${seen ? 'acked' : 'unacked'}`, 'data-kind': 'link_lost',
        'data-acked': seen ? 'true' : 'false'},
        h('span', {class: 'shape', 'aria-hidden': 'true', text: '▲'}),
        h('span', {class: 'what', text: `Link lost during the ${v.phase === 'inspection' ? 'inspection' : 'visit'}: nothing from this room reaches the board, its panic points included. Send someone to the room.`}));
      if (seen) li.append(h('span', {class: 'ackedby'}, '✓ seen on this screen'));
      else li.append(h('button', {class: 'primary', 'data-key': 'seen-link', 'data-action': 'see_link_lost',
        onclick: () => seeLoss(v)}, 'Seen'));
      list.append(li);
    }
    for (const a of v.alerts) {
      const crit = a.severity === 'critical';
      const li = h('li', {class: `alert sev-${a.severity} ${a.acked ? 'acked' : 'unacked'}`, 'data-alert': a.id,
        'data-kind': a.kind, 'data-acked': a.acked ? 'true' : 'false'},
        h('span', {class: 'shape', 'aria-hidden': 'true', text: crit ? '◆' : '▲'}),
        h('span', {class: 'what', text: alertWhat(a)}),
        h('span', {text: crit ? 'critical' : a.severity}),
        h('span', {class: 'age', 'data-raised-at': a.raised_at}),
        a.announcements > 1 ? h('span', {text: `×${a.announcements}`}) : null);
      if (a.kind === 'panic' && a.acked && !a.reset && v.panic_reset === 'on_site') li.append(h('span', {text: '(reset at the room with the staff key)'}));
      if (a.acked) {
        const who = a.acked_by_seen ? (a.acked_by || 'the booking system') : 'before this board saw it';
        li.append(h('span', {class: 'ackedby', 'data-acked-by': a.acked_by || ''}, `✓ acknowledged by ${who}`,
          a.acked_at ? ` at ${hhmmss(a.acked_at)}` : ''));
      } else {
        li.append(h('button', {class: 'primary', 'data-key': `ack:${a.id}`, 'data-action': 'ack_alert',
          onclick: () => act(v.room, 'ack_alert', {alert_id: a.id}, null)}, 'Acknowledge'));
      }
      list.append(li);
    }
    if (list.children.length) kids.push(list);
    const actions = h('div', {class: 'actions'});
    if (inVisit && v.extension !== 'forbidden') {
      actions.append(h('button', {'data-key': 'extend', 'data-action': 'extend_visit', onclick: () => confirmExtend(v)}, 'Extend…'));
    }
    if (inVisit) actions.append(h('button', {class: 'danger', 'data-key': 'end', 'data-action': 'end_visit',
      onclick: () => confirmAct(v.room, 'end_visit', {}, 'End the visit',
        `End the visit in ${v.room} now? The occupants are told and the door must be opened.`)}, 'End visit…'));
    if (v.phase === 'inspection') actions.append(h('button', {'data-key': 'ready', 'data-action': 'set_ready',
      onclick: () => confirmAct(v.room, 'set_ready', {}, 'Room ready',
        `Has ${v.room} been searched and cleaned? It becomes ready for the next visit.`)}, 'Set ready…'));
    if (v.phase === 'idle' || v.phase === 'inspection') actions.append(h('button', {'data-key': 'oos', 'data-action': 'out_of_service',
      onclick: () => confirmOutOfService(v)}, 'Out of service…'));
    if (v.phase === 'out_of_service') actions.append(h('button', {'data-key': 'bis', 'data-action': 'back_in_service',
      onclick: () => act(v.room, 'back_in_service', {}, null)}, 'Back in service'));
    kids.push(actions);
    kids.push(h('div', {class: 'reply', role: 'status', 'data-reply': ''}));
    return kids;
  }

  const drawn = new Map();    // room id -> what its tile was drawn from (JSON, lamps aside)
  function updateTile(v) {
    // Redraw only what changed: a button replaced under the pointer loses
    // the click.
    const key = JSON.stringify({...v, lamps: undefined});
    if (drawn.get(v.room) === key && tiles.has(v.room)) return;
    drawn.set(v.room, key);
    let el = tiles.get(v.room);
    const reply = el ? el.querySelector('[data-reply]') : null;
    const focusKey = el && el.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    if (!el) {
      el = h('article', {'data-room': v.room, 'aria-label': `room ${v.room}`});
      tiles.set(v.room, el);
    }
    el.className = `tile cat-${v.category}${lostWhileWatched(v) && !lostSeen.has(lostKey(v)) ? ' lost-watched' : ''}`;
    el.dataset.category = v.category;
    el.dataset.link = v.link;
    el.dataset.phase = v.phase || '';
    el.replaceChildren(...renderTile(v));
    if (reply && reply.textContent) {
      const r = el.querySelector('[data-reply]');
      r.className = reply.className;
      r.textContent = reply.textContent;
      for (const [k, val] of Object.entries(reply.dataset)) r.dataset[k] = val;
    }
    if (focusKey) {
      const f = el.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
      (f || el.querySelector('button') || el).focus();
    }
  }

  let orderDirty = false;
  function reorder() {
    orderDirty = false;
    const main = $('tiles');
    const views = [...rooms.values()].sort(less);
    views.forEach((v, i) => {
      const el = tiles.get(v.room);
      if (main.children[i] !== el) main.insertBefore(el, main.children[i] || null);
    });
    const counts = {};
    for (const v of views) counts[v.category] = (counts[v.category] || 0) + 1;
    const c = $('counts');
    c.replaceChildren(...CAT_ORDER.filter((k) => counts[k]).map((k) =>
      h('span', {class: `count count-${k}`, 'data-count': k}, `${CATS[k].shape} ${counts[k]} ${CATS[k].label.toLowerCase()}`)));
    refreshTimes();
    updateSound();
    renderTester();
  }

  function applyRoom(v) {
    if (!SHOWS_PRESENCE.has(v.phase)) delete v.presence;
    rooms.set(v.room, v);
    updateTile(v);
    // One reorder per frame, however many tiles changed in it.
    if (!orderDirty) { orderDirty = true; requestAnimationFrame(reorder); }
  }

  // ---- countdowns and ages, every half second ----
  function refreshTimes() {
    const now = boardNow();
    for (const el of document.querySelectorAll('[data-ends-at]')) {
      const left = (Date.parse(el.dataset.endsAt) - now) / 1000;
      const txt = left >= 0 ? `${clockText(Math.ceil(left))} left` : `+${clockText(-left)} over time`;
      if (el.textContent !== txt) el.textContent = txt;
      el.dataset.remainingS = String(Math.round(left));
      el.classList.toggle('over', left < 0);
    }
    for (const el of document.querySelectorAll('[data-raised-at]')) {
      const txt = `${ageText((now - Date.parse(el.dataset.raisedAt)) / 1000)} ago`;
      if (el.textContent !== txt) el.textContent = txt;
    }
    const ck = $('clock');
    const t = new Date(now).toLocaleTimeString([], {hour12: false});
    if (ck.textContent !== t) ck.textContent = t;
    const off = $('clock-offset');
    const big = Math.abs(offset) > 2000;
    off.textContent = big ? `⚠ this computer's clock is ${Math.round(-offset / 1000)} s off the board's (corrected)` : '';
    off.classList.toggle('off', big);
    updateBanner();
  }

  // ---- stale banner ----
  function updateBanner() {
    const ban = $('stale-banner');
    let text = '';
    if (!streamOpen) {
      text = streamLostAt ? `connection to the board lost at ${new Date(streamLostAt).toLocaleTimeString([], {hour12: false})}, reconnecting` : 'connecting to the board';
    } else if (brokerConnected === false) {
      text = `the board lost the broker at ${hhmmss(brokerSince)}, reconnecting`;
    }
    body.dataset.stale = text ? 'true' : 'false';
    if ((text === '') !== ban.hidden) ban.hidden = text === '';
    if (text && $('stale-text').textContent !== text) $('stale-text').textContent = text;
  }

  // ---- pagers banner: a paging gateway (roompager) whose handsets are deaf ----
  function setPagers(list) {
    const down = (list || []).filter((p) => p.down);
    const ban = $('pager-banner');
    ban.hidden = down.length === 0;
    body.dataset.pagers = down.length ? 'down' : 'ok';
    const why = {paging_down: 'the paging system does not answer', offline: 'the gateway is offline'};
    $('pager-text').textContent = down.map((p) => `${p.gateway}: ${why[p.state] || p.state}${p.detail ? ' (' + p.detail + ')' : ''}`).join('; ');
  }

  // ---- sound: Web Audio, armed once per shift ----
  let audio = null;
  let nextBeep = 0;
  let beeps = 0;
  let ticks = 0; // the page's own clock: times redrawn and sound decided, every 250 ms
  function arm() {
    if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
    audio.resume().then(updateSound);
    body.dataset.sound = 'off';
    $('sound-banner').hidden = true;
    updateSound();
    toast('Sound armed. Alarms ring until acknowledged.');
  }
  function level() {
    let lvl = 'off';
    for (const v of rooms.values()) {
      for (const a of v.alerts) {
        if (a.acked) continue;
        if (a.severity === 'critical') return 'critical';
        lvl = 'warning';
      }
    }
    if (lvl === 'off' && (body.dataset.stale === 'true' || body.dataset.pagers === 'down')) lvl = 'warning'; // the board's own fault, and deaf handsets, ring too
    if (lvl === 'off') {
      for (const v of rooms.values()) {
        if (lostWhileWatched(v) && !lostSeen.has(lostKey(v))) return 'warning';
      }
    }
    return lvl;
  }
  function tone(freq, start, dur, type, gain) {
    const o = audio.createOscillator(), g = audio.createGain();
    o.type = type; o.frequency.value = freq;
    g.gain.setValueAtTime(0, start);
    g.gain.linearRampToValueAtTime(gain, start + 0.01);
    g.gain.setValueAtTime(gain, start + dur - 0.02);
    g.gain.linearRampToValueAtTime(0, start + dur);
    o.connect(g).connect(audio.destination);
    o.start(start); o.stop(start + dur + 0.01);
  }
  function ring(lvl) {
    const t = audio.currentTime + 0.02;
    if (lvl === 'critical') {
      // Hi-lo two-tone, four times: the board's alarm.
      for (let i = 0; i < 8; i++) tone(i % 2 ? 660 : 990, t + i * 0.2, 0.19, 'square', 0.25);
    } else {
      // Two soft chimes: attention, not alarm.
      tone(523, t, 0.3, 'sine', 0.35);
      tone(659, t + 0.4, 0.45, 'sine', 0.35);
    }
    beeps++;
    body.dataset.beeps = String(beeps);
    body.dataset.lastRing = lvl;
  }
  function updateSound() {
    const lvl = level();
    body.dataset.alarm = lvl;
    if (!audio) { body.dataset.sound = 'unarmed'; return; }
    body.dataset.audioState = audio.state;
    body.dataset.sound = lvl;
    if (lvl === 'off') { nextBeep = 0; return; }
    const now = performance.now();
    if (now >= nextBeep && audio.state === 'running') {
      ring(lvl);
      nextBeep = now + (lvl === 'critical' ? 2000 : 6000);
    } else if (audio.state === 'suspended') {
      audio.resume();
    }
  }

  // ---- actions ----
  function toast(msg) {
    const t = $('toast');
    t.textContent = msg;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.textContent = ''; }, 6000);
  }
  function showReply(room, res) {
    const el = tiles.get(room);
    const r = el && el.querySelector('[data-reply]');
    let text;
    if (res.ok) {
      text = `✓ ${res.action.replaceAll('_', ' ')} done (by ${res.operator})`;
    } else {
      text = `✕ ${res.action ? res.action.replaceAll('_', ' ') + ' refused: ' : ''}${res.code || 'error'}${res.message ? ' — ' + res.message : ''}`;
      if (res.blockers && res.blockers.length) text += ` (blocked by: ${res.blockers.join(', ')})`;
    }
    if (r) {
      r.className = `reply ${res.ok ? 'ok' : 'err'}`;
      r.textContent = text;
      r.dataset.code = res.ok ? 'ok' : (res.code || 'error');
    }
    toast(`${room}: ${text}`);
  }
  async function act(room, action, payload) {
    if (!session) return;
    busy = true;
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
  function confirmExtend(v) {
    const sel = h('select', {id: 'extend-by', 'aria-label': 'extend by'},
      ['5m', '10m', '15m', '30m', '1h'].map((d) => h('option', {value: d, text: d.replace('m', ' min').replace('1h', '1 hour')})));
    sel.value = '15m';
    const max = v.visit && v.visit.max_s ? ` The rules allow at most ${Math.round(v.visit.max_s / 60)} minutes in all.` : '';
    openConfirm('Extend the visit', `Extend the visit in ${v.room} by:${max}`, [sel],
      () => act(v.room, 'extend_visit', {add: sel.value}));
  }
  function confirmOutOfService(v) {
    const inp = h('input', {id: 'oos-reason', maxlength: '200', 'aria-label': 'reason', placeholder: 'reason (shown on the board)'});
    openConfirm('Out of service', `Take ${v.room} out of service? No visit can start until it is back in service.`, [inp],
      () => act(v.room, 'out_of_service', {reason: inp.value}));
  }

  // ---- alert log ----
  const LOG_TYPES = {
    alert_raised: 'raised', alert_escalated: 'escalated', alert_repeated: 'repeated, unacknowledged',
    alert_reannounced: 'still active, unacknowledged again', alert_acked: 'acknowledged', alert_cleared: 'cleared',
    service_changed: 'service changed', link_offline: '✕ went OFFLINE', link_stale: '⧗ went STALE',
    link_online: '● back online', link_unknown: '? link unknown', records_lost: '⚠ records lost',
    state_lost: '⚠ the board lost its place in the records',
  };
  function addLog(e, id) {
    if (id && logIds.has(id)) return;
    if (id) logIds.add(id);
    const list = $('log-list');
    let text = `${hhmmss(e.at)}  ${e.room || 'board'}  `;
    if (e.alert) text += `${e.alert.severity === 'critical' ? '◆' : '▲'} ${alertWhat(e.alert)} (${e.alert.id}) `;
    text += LOG_TYPES[e.type] || e.type;
    if (e.by) text += ` by ${e.by}`;
    if (e.detail && !e.alert) text += ` — ${e.detail}`;
    if (e.late) text += ' (arrived late)';
    list.prepend(h('li', {class: `sev-${e.severity || 'notice'}`, 'data-log-type': e.type, 'data-log-room': e.room || '',
      'data-log-alert': e.alert ? e.alert.id : ''}, text));
    while (list.children.length > 200) list.lastChild.remove();
  }

  // ---- tester panel (simulated rooms) ----
  function simRooms() {
    return [...rooms.values()].filter((v) => v.backend === 'sim').map((v) => v.room).sort();
  }
  // The tester's clicks reach the room in the order they were made: each
  // is sent when the one before it has been answered (two requests in
  // flight could overtake each other). body[data-sim-pending] counts those
  // not yet answered.
  let simQueue = Promise.resolve();
  let simPending = 0;
  function simSet(room, control) {
    simPending++;
    body.dataset.simPending = String(simPending);
    simQueue = simQueue.then(() => simSend(room, control)).finally(() => {
      simPending--;
      body.dataset.simPending = String(simPending);
    });
  }
  async function simSend(room, control) {
    try {
      // A request that hangs gives up, so that it cannot hold back the
      // clicks after it.
      const resp = await fetch(`/api/rooms/${encodeURIComponent(room)}/sim`, {
        method: 'POST', credentials: 'same-origin', signal: AbortSignal.timeout(10000),
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf},
        body: JSON.stringify(control),
      });
      const res = await resp.json().catch(() => ({}));
      if (!resp.ok) toast(`tester: ${res.error || resp.status}`);
    } catch (e) {
      toast(`tester: ${e}`);
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
    const key = JSON.stringify([testerRoom, list, v]);
    if (key === testerDrawn && sec.childElementCount) return;
    testerDrawn = key;
    const focusKey = sec.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    const sel = h('select', {id: 'tester-room', 'aria-label': 'simulated room', 'data-key': 'room',
      onchange: (e) => { testerRoom = e.target.value; renderTester(); }},
      list.map((r) => h('option', {value: r, text: r})));
    sel.value = testerRoom;
    const kids = [h('h2', {}, 'Tester panel — simulated room ', sel)];
    if (v) {
      const b = (key, label, control) => h('button', {'data-key': key, 'data-sim': key,
        onclick: () => simSet(v.room, control)}, label);
      const groups = [
        h('fieldset', {}, h('legend', {}, `Door (now ${v.door || '?'})`), b('door-open', 'Open door', {door: 'open'}), b('door-closed', 'Close door', {door: 'closed'})),
        h('fieldset', {}, h('legend', {}, `Bolt (now ${v.lock || '?'})`), b('lock-locked', 'Throw bolt', {lock: 'locked'}), b('lock-unlocked', 'Draw bolt', {lock: 'unlocked'})),
        h('fieldset', {}, h('legend', {}, 'Presence (PIR)'), b('presence-on', 'Somebody in', {presence: true}), b('presence-off', 'Nobody', {presence: false})),
      ];
      const points = v.panic_points && v.panic_points.length ? v.panic_points : ['panic'];
      const pg = h('fieldset', {}, h('legend', {}, 'Panic points'));
      for (const p of points) {
        pg.append(b(`panic-press-${p}`, `Press ${p}`, {points: {[p]: 'pressed'}}), b(`panic-release-${p}`, `Release ${p}`, {points: {[p]: 'released'}}));
        // What an attacker does to the wires: a bridge (a supervised loop
        // reports it; a plain contact goes silent), a cut; mend undoes both.
        const wire = (w) => ({wire: {[`panic:${p}`]: w}});
        pg.append(b(`panic-bridge-${p}`, `Bridge ${p}`, wire('bridged')), b(`panic-cut-${p}`, `Cut ${p}`, wire('cut')),
          b(`panic-mend-${p}`, `Mend ${p}`, wire('sound')));
      }
      groups.push(pg);
      groups.push(h('fieldset', {}, h('legend', {}, 'Staff key'), b('staff-on', 'Turn key', {staff: true}), b('staff-off', 'Release key', {staff: false})));
      kids.push(h('div', {class: 'controls'}, groups));
      const lamps = h('div', {class: 'lamps', 'aria-label': 'lamps'});
      const names = {in_use: 'in use', warning: 'warning', alarm_light: 'alarm light', alarm_sounder: 'alarm sounder', reassurance: 'reassurance'};
      for (const [k, label] of Object.entries(names)) {
        const mode = (v.lamps && v.lamps[k]) || 'unknown';
        lamps.append(h('div', {class: 'lamp', 'data-lamp': k, 'data-mode': mode},
          h('div', {class: 'bulb', 'aria-hidden': 'true'}), h('span', {text: label}), h('b', {text: mode})));
      }
      kids.push(lamps);
    }
    sec.replaceChildren(...kids);
    if (focusKey) {
      const f = sec.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
      if (f) f.focus();
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
      track(e);
      const s = JSON.parse(e.data);
      snapshots++;
      body.dataset.snapshots = String(snapshots);
      sampleClock(s.now);
      const seen = new Set();
      for (const v of s.rooms) { applyRoom(v); seen.add(v.room); }
      for (const r of [...rooms.keys()]) if (!seen.has(r)) { rooms.delete(r); tiles.get(r).remove(); tiles.delete(r); drawn.delete(r); }
      $('log-list').replaceChildren();
      logIds.clear();
      for (const l of s.log) addLog(l, '');
      setLink(s.link);
      setPagers(s.pagers);
    });
    es.addEventListener('pagers', (e) => { track(e); setPagers(JSON.parse(e.data)); });
    es.addEventListener('room', (e) => { track(e); stats.room++; applyRoom(JSON.parse(e.data)); });
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
  async function start() {
    const r = await fetch('/api/session', {credentials: 'same-origin'});
    if (r.status === 401) { location.href = '/login'; return; }
    session = await r.json();
    $('operator').textContent = `operator: ${session.operator}`;
    $('title').textContent = `${session.title} — guard station`;
    document.title = `${session.title} — guard station`;
    $('arm').addEventListener('click', arm);
    $('tester-toggle').addEventListener('click', toggleTester);
    $('logout').addEventListener('click', async () => {
      await fetch('/logout', {method: 'POST', credentials: 'same-origin', headers: {'X-CSRF-Token': session.csrf}});
      location.href = '/login';
    });
    document.addEventListener('keydown', (e) => {
      if (e.target.closest('input, select, textarea, dialog') || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === 'a' || e.key === 'A') { e.preventDefault(); arm(); }
      if ((e.key === 't' || e.key === 'T') && !$('tester-toggle').hidden) { e.preventDefault(); toggleTester(); }
    });
    connect();
    setInterval(() => { ticks++; refreshTimes(); updateSound(); }, 250);
  }
  // What a test or a supervisor's script may read.
  window.guardboard = {
    rooms, get offset() { return offset; }, get snapshots() { return snapshots; }, get lastId() { return lastId; },
    get audioState() { return audio ? audio.state : 'none'; }, get beeps() { return beeps; }, get ticks() { return ticks; },
    get busy() { return busy; }, stats,
    // Draw a tile from a view as if the board had sent it (the page's own
    // privacy filter applies).
    apply: (v) => applyRoom(v),
  };
  start();
})();
