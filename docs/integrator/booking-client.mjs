// A tiny booking client for roomd, written from docs/mqtt.md and
// docs/asyncapi.yaml alone, with mqtt.js. It reads the room's info, starts a
// visit, extends it, waits for time_up and acknowledges it as an operator,
// ends the visit, then asks for a replay of everything and checks that
// deduplication by (room, epoch, seq) drops every replayed record.
//
// Environment: ROOMD_BROKER (mqtt://host:port), ROOMD_ROOM, ROOMD_BASE
// (default visitrooms), ROOMD_OPERATOR (default guard-7).
// Prints a JSON summary on the last line; exits 1 on any failure.
import mqtt from 'mqtt';

const url = process.env.ROOMD_BROKER;
const room = process.env.ROOMD_ROOM;
const base = process.env.ROOMD_BASE ?? 'visitrooms';
const operator = process.env.ROOMD_OPERATOR ?? 'guard-7';
if (!url || !room) {
  console.error('set ROOMD_BROKER and ROOMD_ROOM');
  process.exit(2);
}
const topic = (t) => `${base}/${room}/${t}`;
const deadline = setTimeout(() => { console.error('booking client: timed out'); process.exit(1); }, 60_000);

// Records, deduplicated by (room, epoch, seq); the same key always carries
// the same payload.
const records = new Map();
const lastSeq = new Map(); // epoch -> last seq seen, for gap detection
let duplicates = 0;
let gaps = 0;
const recordWaiters = [];
const replyWaiters = new Map(); // `${operator}/${request_id}` -> resolve
let info;
let infoWaiter;

function onRecord(text) {
  const r = JSON.parse(text);
  const key = `${r.room}/${r.epoch}/${r.seq}`;
  if (records.has(key)) {
    duplicates++;
    if (records.get(key) !== text) throw new Error(`record ${key} came back with another payload`);
    return;
  }
  records.set(key, text);
  const last = lastSeq.get(r.epoch);
  if (last !== undefined && r.seq !== last + 1) gaps++; // a real client would send replay here
  lastSeq.set(r.epoch, Math.max(last ?? 0, r.seq));
  for (const w of [...recordWaiters]) {
    if (w.pred(r)) {
      recordWaiters.splice(recordWaiters.indexOf(w), 1);
      w.resolve(r);
    }
  }
}

const waitRecord = (pred) => new Promise((resolve) => {
  for (const t of records.values()) {
    const r = JSON.parse(t);
    if (pred(r)) return resolve(r);
  }
  recordWaiters.push({ pred, resolve });
});

const client = mqtt.connect(url, { clientId: 'booking-example', clean: false, protocolVersion: 4, reconnectPeriod: 1000 });
client.on('error', (e) => { console.error(`mqtt: ${e.message}`); });
client.on('message', (t, payload, packet) => {
  const text = payload.toString('utf8');
  if (t === topic('events')) onRecord(text);
  else if (t === topic('info')) { info = JSON.parse(text); infoWaiter?.(info); }
  else if (t === topic('reply')) {
    const r = JSON.parse(text);
    const key = `${r.operator ?? ''}/${r.request_id}`;
    replyWaiters.get(key)?.(r);
    replyWaiters.delete(key);
  }
});

await new Promise((resolve, reject) => { client.once('connect', resolve); client.once('error', reject); });
await client.subscribeAsync([topic('info'), topic('events'), topic('reply'), topic('state'), topic('availability')], { qos: 1 });

let n = 0;
// send publishes a command (never retained) and waits for its reply. Every
// action that changes the room carries expires_at, a minute ahead.
async function send(action, fields = {}, op = '') {
  const request_id = `bk-${process.pid}-${++n}`;
  const cmd = { request_id, action, ...fields };
  if (action !== 'get_state' && action !== 'replay') {
    cmd.expires_at = new Date(Date.now() + 60_000).toISOString(); // three fraction digits
  }
  const reply = new Promise((resolve) => replyWaiters.set(`${op}/${request_id}`, resolve));
  await client.publishAsync(op ? topic(`cmd/${op}`) : topic('cmd'), JSON.stringify(cmd), { qos: 1, retain: false });
  const r = await reply;
  if (!r.ok) throw new Error(`${action} refused: ${r.error.code}: ${r.error.message}`);
  return r;
}

info = info ?? await new Promise((resolve) => { infoWaiter = resolve; });
if (info.version !== 2) throw new Error(`contract version ${info.version}, want 2`);
if (info.policy.extension !== 'up_to_max') throw new Error('this room forbids extensions');

const visit = `v-bk-${process.pid}`;
const started = await send('start_visit', { visit_id: visit, duration: '2s' });
const extended = await send('extend_visit', { add: '1s' });
const planned = Date.parse(extended.state.visit.ends_at) - Date.parse(started.state.visit.started_at);
if (planned !== 3000) throw new Error(`visit planned for ${planned} ms, want 3000`);

const timeUp = await waitRecord((r) => r.type === 'alert_raised' && r.alert.kind === 'time_up');
const ack = await send('ack_alert', { alert_id: timeUp.alert.id }, operator);
if (ack.operator !== operator) throw new Error('the reply does not name the operator');
const acked = await waitRecord((r) => r.type === 'alert_acked' && r.alert.id === timeUp.alert.id);
await send('end_visit');
const ended = await waitRecord((r) => r.type === 'visit_ended' && r.visit_id === visit);

// Ask again for everything seen in this epoch: every replayed record is a
// duplicate.
const unique = records.size;
const epoch = ended.epoch;
const seqs = [...records.values()].map((t) => JSON.parse(t)).filter((r) => r.epoch === epoch).map((r) => r.seq);
const replay = await send('replay', { epoch, from_seq: Math.min(...seqs), to_seq: Math.max(...seqs) });
if (records.size !== unique) throw new Error('replay brought records never seen before');
if (duplicates < replay.replay.count) throw new Error(`${duplicates} duplicates dropped, replay sent ${replay.replay.count}`);

clearTimeout(deadline);
await client.endAsync();
console.log(JSON.stringify({
  started: started.ok, extended: extended.ok, alert: timeUp.alert.id, acked_by: acked.by, ended: ended.reason,
  unique, duplicates, replayed: replay.replay.count, gaps,
}));
