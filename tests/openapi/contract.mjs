// contract.mjs — docs/openapi.yaml against a real `vigil serve`, both ways
// (started with tokens of every role by test_contract.sh).
//
// (a) The spec's operations answer as it says. Each operation is called
//     with a valid request (the fixtures below, made in an order that makes
//     the resources exist first; their bodies and parameters are checked
//     against the spec too) and a token of exactly its x-vigil-role.
//     Every answer's status must be one the spec lists for the operation
//     and never 404/405 (unless the fixture is marked `absent`, the spec
//     lists 404, and it is a deliberate call for a missing resource); its
//     Content-Type must be one the spec gives for that status; a JSON body
//     (2xx and problem+json alike) must validate against the spec's schema
//     (ajv, JSON Schema 2020-12). Then the roles: without a token every
//     non-public operation answers 401 with WWW-Authenticate: Bearer, with a
//     token just below its role 403 — both listed in the spec; a public one
//     (none) answers without a token. An operation marked
//     `x-vigil-status: planned` may be missing (404/405); once it answers,
//     the test fails until the marker is removed.
// (b) Every route the server serves is in the spec: the routes are read
//     from the source (each vigil_http_route(h, "METHOD", "/path", prefix,
//     …) call under server/), each must match a spec operation (exact path,
//     or for a prefix route a spec path under it) that answered in (a); the
//     fallback (the dashboard's assets) serves every file of dashboards/web/
//     (and of its vendor/ folder, as GET /vendor/{file});
//     and every spec operation that is not planned is served by some route.
//
// Usage: node contract.mjs --url http://127.0.0.1:PORT --tokens FILE.json
//   (FILE.json: {"ingest","viewer","analyst","admin","metrics"} tokens)
// Prints one line per check and "N passed, M failed"; exit 1 on any failure.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT, loadSpec, operations, deref, schemaCompiler } from './spec.mjs';

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const BASE = arg('--url');
const TOKENS = JSON.parse(readFileSync(arg('--tokens'), 'utf8'));
if (!BASE) {
  console.error('usage: node contract.mjs --url http://127.0.0.1:PORT --tokens FILE.json');
  process.exit(2);
}

const spec = loadSpec();
const ops = operations(spec);
const byKey = new Map(ops.map((o) => [o.key, o]));
const sc = schemaCompiler(spec);
const SRC_ROOT = process.env.VIGIL_SOURCE_ROOT || ROOT;

let passed = 0, failed = 0;
function check(name, problems) {
  if (problems.length === 0) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}`);
    for (const p of problems) console.log(`     ${p}`);
  }
}

// ---- requests ---------------------------------------------------------------------------

const roleToken = (role) => (role === 'none' ? null : TOKENS[role]);
// a token whose role is just short of `role` (403), per vigil_auth_role_for's nesting
const BELOW = { ingest: 'viewer', viewer: 'ingest', analyst: 'viewer', admin: 'analyst', metrics: 'viewer' };

function fill(path, params = {}) {
  return path.replace(/\{([^}]+)\}/g, (_, k) => {
    if (!(k in params)) throw new Error(`no value for {${k}} in ${path}`);
    return encodeURIComponent(params[k]);
  });
}

async function send(method, url, { token, headers = {}, body, type, stream } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (type) h['Content-Type'] = type;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), stream ? 8000 : 15000);
  try {
    const res = await fetch(BASE + url, { method, headers: h, body, signal: ctl.signal });
    let text = '';
    if (stream && res.status === 200) {
      // an SSE stream never ends: read until the first alert frame, then hang up
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      while (!/\n\n/.test(text.split('event: alert')[1] || '')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += dec.decode(value, { stream: true });
      }
      ctl.abort();
    } else {
      text = await res.text();
    }
    return { status: res.status, headers: res.headers, text };
  } catch (e) {
    return { status: 0, headers: new Headers(), text: '', error: String(e.message || e) };
  } finally {
    clearTimeout(timer);
  }
}

// ---- checking one answer against the spec ------------------------------------------------

const answered = new Map();   // op key → [status…] of its fixture calls

function mediaBase(t) {
  return (t || '').split(';')[0].trim().toLowerCase();
}

// Problems of answer r to operation o (empty: it matches the spec).
function conform(o, r, { absent = false } = {}) {
  const p = [];
  if (r.error) return [`no answer: ${r.error}`];
  const codes = Object.keys(o.op.responses || {});
  const code = String(r.status);
  if (!codes.includes(code) && !codes.includes('default')) {
    p.push(`answered ${code}, which the spec does not list (it lists ${codes.join(', ')}); body: ${r.text.slice(0, 200)}`);
    return p;
  }
  if ((r.status === 404 || r.status === 405) && !absent) p.push(`answered ${code}: ${r.text.slice(0, 200)}`);
  const resp = deref(spec, o.op.responses[code] || o.op.responses.default);
  const content = resp.content || {};
  const got = mediaBase(r.headers.get('content-type'));
  if (Object.keys(content).length === 0) {
    if (r.text.length) p.push(`${code}: the spec gives no body, the server sent ${r.text.length} bytes`);
  } else if (!content[got]) {
    p.push(`${code}: Content-Type ${got || '(none)'}, the spec gives ${Object.keys(content).join(', ')}`);
  } else if ((got === 'application/json' || got === 'application/problem+json') && content[got].schema) {
    let body;
    try {
      body = JSON.parse(r.text);
    } catch (e) {
      p.push(`${code}: the body is not JSON: ${r.text.slice(0, 200)}`);
    }
    if (body !== undefined) {
      const v = sc.compile(content[got].schema);
      if (!v(body)) p.push(`${code}: the body does not fit the spec's schema: ${sc.ajv.errorsText(v.errors)}; body: ${r.text.slice(0, 300)}`);
    }
  }
  for (const [name, h] of Object.entries(resp.headers || {})) {
    const hv = r.headers.get(name);
    if (hv === null) p.push(`${code}: no ${name} header`);
    else {
      const hs = deref(spec, h).schema;
      if (hs?.const !== undefined && hv !== hs.const) p.push(`${code}: ${name} is ${hv}, expected ${hs.const}`);
    }
  }
  return p;
}

// The fixture's request against the spec: a declared content type, a JSON
// body that fits its schema, path and query values that fit theirs (so the
// fixtures are valid examples of the operation, not whatever the server takes).
function requestProblems(o, f) {
  const p = [];
  const body = deref(spec, o.op.requestBody);
  if (f.body !== undefined && body) {
    const media = body.content?.[f.type];
    if (!media) p.push(`request: Content-Type ${f.type} is not one the spec gives (${Object.keys(body.content || {}).join(', ')})`);
    else if (f.type === 'application/json' && media.schema && !f.invalid) {
      const v = sc.compile(media.schema);
      if (!v(JSON.parse(f.body))) p.push(`request: the body does not fit the spec: ${sc.ajv.errorsText(v.errors)}`);
    }
  } else if (body?.required && f.body === undefined) p.push('request: the spec requires a body');
  const q = new URLSearchParams(f.query || '');
  for (const prm of o.params) {
    const val = prm.in === 'path' ? f.params?.[prm.name] : prm.in === 'query' ? q.get(prm.name) : f.headers?.[prm.name];
    if (val === undefined || val === null || f.invalid || !prm.schema) continue;
    const sch = deref(spec, prm.schema);
    const v = sc.compile(prm.schema);
    const typed = sch?.type === 'integer' && /^-?\d+$/.test(val) ? Number(val) : val;
    if (!v(typed)) p.push(`request: ${prm.in} parameter ${prm.name}=${val} does not fit the spec: ${sc.ajv.errorsText(v.errors)}`);
  }
  for (const k of q.keys())
    if (!o.params.some((prm) => prm.in === 'query' && prm.name === k)) p.push(`request: query parameter ${k} is not in the spec`);
  return p;
}

// One fixture call: op 'METHOD /path', path params, query string, body.
async function call(key, f = {}) {
  const o = byKey.get(key);
  if (!o) {
    check(`fixture ${key}`, [`the spec has no operation ${key}`]);
    return null;
  }
  const url = fill(o.path, f.params) + (f.query ? `?${f.query}` : '');
  const token = f.token !== undefined ? f.token : roleToken(o.op['x-vigil-role']);
  const r = await send(o.method, url, { token, headers: f.headers, body: f.body, type: f.type, stream: f.stream });
  const shown = url.replace(/access_token=[^&]*/, 'access_token=…');   // no token in the output
  const name = `${key}${f.label ? ` (${f.label})` : ''}: ${o.method} ${shown} → ${r.status}`;
  if (o.op['x-vigil-status'] === 'planned') {
    const missing = r.status === 404 || r.status === 405;
    if (!answered.has(key)) answered.set(key, []);
    answered.get(key).push(r.status);
    check(`${name} (planned)`, missing ? [] :
      [`${key} is marked x-vigil-status: planned but the server serves it now (${r.status}): remove the marker`]);
    return r;
  }
  const p = [...requestProblems(o, f), ...conform(o, r, { absent: f.absent })];
  if (f.expect && !f.expect.includes(r.status)) p.push(`expected ${f.expect.join(' or ')}`);
  if (f.absent && !(o.op.responses || {})['404']) p.push('marked absent but the spec lists no 404 for it');
  if (!f.absent) {
    if (!answered.has(key)) answered.set(key, []);
    answered.get(key).push(r.status);
  }
  check(name, p);
  return r;
}

const json = (r) => {
  try {
    return JSON.parse(r.text);
  } catch {
    return null;
  }
};
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

// ---- (a) the fixtures, in an order that makes each resource exist first -------------------

const RULE = 'contract_api';
const ruleSrc = (amount) => `-- the contract test's rule
rule {
  name        = "${RULE}",
  description = "A payment over ${amount} on a card",
  severity    = "low",
  key         = "card_id",
  where       = { amount = gt(${amount}) },
  window      = sliding("1h"),
  when        = ge(count(), 1),
}
`;
const now = Date.now();
const ev = (id, card, amount, dt = 0) => ({ id, ts: now + dt, card_id: card, amount, type: 'payment' });

// public
await call('GET /healthz');
await call('GET /readyz');
await call('GET /metrics');
const doc = await call('GET /v1/openapi.yaml');
check('GET /v1/openapi.yaml serves docs/openapi.yaml as it is in the tree',
  doc && doc.text === readFileSync(join(ROOT, 'docs', 'openapi.yaml'), 'utf8') ? [] : ['the served document differs (rebuild?)']);
await call('GET /');
await call('GET /{asset}', { params: { asset: 'app.js' } });
await call('GET /vendor/{file}', { params: { file: 'uPlot.iife.min.js' } });
await call('GET /vendor/{file}', { params: { file: 'no-such-file.js' }, absent: true, expect: [404], label: 'an unknown file' });
await call('GET /{asset}', { params: { asset: 'no-such-file.css' }, absent: true, expect: [404], label: 'an unknown file' });

// rules: create, the same again, a shadow beside it, compare, promote, modes, rollback, snooze
await call('PUT /v1/rules/{name}', { params: { name: RULE }, body: ruleSrc(1000), type: 'text/x-lua', expect: [201] });
await call('PUT /v1/rules/{name}', { params: { name: RULE }, body: ruleSrc(1000), type: 'text/x-lua', expect: [200], label: 'the same source' });
await call('PUT /v1/rules/{name}', { params: { name: RULE }, query: 'mode=shadow', body: ruleSrc(500), type: 'text/x-lua', expect: [200], label: 'a shadow beside' });
await call('GET /v1/rules/{name}/compare', { params: { name: RULE }, expect: [200] });
await call('POST /v1/rules/{name}/promote', { params: { name: RULE }, expect: [200] });
await call('POST /v1/rules/{name}/mode', { params: { name: RULE }, body: JSON.stringify({ mode: 'shadow' }), type: 'application/json', expect: [200] });
await call('POST /v1/rules/{name}/mode', { params: { name: RULE }, body: JSON.stringify({ mode: 'active' }), type: 'application/json', expect: [200] });
await call('POST /v1/rules/{name}/rollback', { params: { name: RULE }, body: JSON.stringify({ version: 1 }), type: 'application/json', expect: [200, 201] });
await call('POST /v1/rules/{name}/snooze', { params: { name: RULE }, body: JSON.stringify({ key: 'c9', until: '2099-01-01T00:00:00Z', reason: 'contract test' }), type: 'application/json', expect: [200] });
// errors with their shapes
await call('PUT /v1/rules/{name}', { params: { name: RULE }, body: 'rule { name = "contract_api", key = ', type: 'text/x-lua', expect: [422], label: 'a source that does not compile' });
await call('PUT /v1/rules/{name}', { params: { name: 'contract_other' }, body: ruleSrc(1000), type: 'text/x-lua', expect: [409], label: 'a source naming another rule' });
await call('GET /v1/rules/{name}', { params: { name: 'contract_none' }, absent: true, expect: [404], label: 'no such rule' });

// events: an NDJSON batch, one event with ?wait, a bad line
const nd = [ev('c-e1', 'c1', 250), ev('c-e2', 'c1', 3, 1000)].map((e) => JSON.stringify(e)).join('\n') + '\n';
await call('POST /v1/events', { body: nd, type: 'application/x-ndjson', expect: [202] });
const waited = await call('POST /v1/events', { query: 'wait=5000', body: JSON.stringify(ev('c-e3', 'c2', 300, 2000)), type: 'application/json', expect: [200], label: '?wait' });
check('POST /v1/events?wait answers with the alert the event produced',
  (json(waited)?.alerts || []).some((a) => a.rule === 'big_amount' && a.event === 'c-e3') ? [] : [`no big_amount alert for c-e3: ${waited?.text.slice(0, 300)}`]);
const bad = await call('POST /v1/events', { body: `${JSON.stringify(ev('c-e4', 'c3', 1))}\n{"id": "c-e5", "ts": \n`, type: 'application/x-ndjson', expect: [400], label: 'a bad line' });
check('a bad NDJSON line is named (line 2, offset, reason)',
  json(bad)?.line === 2 && typeof json(bad)?.offset === 'number' && json(bad)?.reason ? [] : [`got ${bad?.text}`]);

// alerts: wait for the batch's alert, list, filter, stream
let alertId = null;
for (let i = 0; i < 100 && !alertId; i++) {   // 10 s: an ASan build on a busy machine
  const r = await send('GET', '/v1/alerts?rule=big_amount&key=c1', { token: TOKENS.viewer });
  alertId = json(r)?.alerts?.[0]?.id || null;
  if (!alertId) await sleep(100);
}
check('the NDJSON batch made its alert (GET /v1/alerts?rule=big_amount&key=c1)', alertId ? [] : ['no alert within 10 s']);
await call('GET /v1/alerts', { expect: [200] });
await call('GET /v1/alerts', { query: `rule=big_amount&key=c1&since=${encodeURIComponent(new Date(now - 60000).toISOString())}&limit=10`, expect: [200], label: 'filtered' });
await call('GET /v1/alerts', { query: 'limit=0', expect: [400], label: 'a bad limit', invalid: true });
const sse = await call('GET /v1/alerts/stream', {
  token: null, query: `access_token=${encodeURIComponent(TOKENS.viewer)}`, headers: { 'Last-Event-ID': '0' }, stream: true, expect: [200],
});
{
  const m = /id: (\d+)\nevent: alert\ndata: (.*)\n\n/.exec(sse?.text || '');
  const p = [];
  if (!m) p.push(`no alert frame in: ${JSON.stringify((sse?.text || '').slice(0, 300))}`);
  else {
    const v = sc.compile({ $ref: '#/components/schemas/Alert' });
    let a = null;
    try { a = JSON.parse(m[2]); } catch { p.push('the data line is not JSON'); }
    if (a && !v(a)) p.push(`the alert does not fit Alert: ${sc.ajv.errorsText(v.errors)}`);
  }
  check('GET /v1/alerts/stream (?access_token=, Last-Event-ID: 0) replays an alert frame whose data is an Alert', p);
}

// triage (DESIGN §6), the list's filters and pages, the chart's timeline, window events' evidence
await call('PUT /v1/alerts/{id}/disposition', {
  params: { id: alertId || '0'.repeat(32) }, body: JSON.stringify({ disposition: 'false_positive', note: 'contract test' }), type: 'application/json', expect: [200],
});
await call('PUT /v1/alerts/{id}/disposition', {
  params: { id: alertId || '0'.repeat(32) }, body: JSON.stringify({ disposition: 'maybe' }), type: 'application/json', expect: [422], label: 'an unknown disposition', invalid: true,
});
await call('PUT /v1/alerts/{id}/disposition', {
  params: { id: 'f'.repeat(32) }, body: JSON.stringify({ disposition: 'benign' }), type: 'application/json', absent: true, expect: [404], label: 'no such alert',
});
await call('GET /v1/alerts', { query: 'disposition=false_positive&severity=low&mode=active&until=4102444800000&limit=1', expect: [200], label: 'triaged, by severity, mode and time' });
const page1 = await call('GET /v1/alerts', { query: 'limit=1', expect: [200], label: 'one per page' });
if (json(page1)?.next) await call('GET /v1/alerts', { query: `limit=1&before=${json(page1).next}`, expect: [200], label: 'the next page' });
await call('GET /v1/alerts', { query: 'mode=sideways', expect: [400], label: 'a bad mode', invalid: true });
await call('GET /v1/alerts/timeline', { query: 'bucket=60&buckets=10', expect: [200] });
await call('GET /v1/alerts/timeline', { query: 'bucket=0', expect: [400], label: 'a bad bucket', invalid: true });
await call('GET /v1/alerts/evidence', { query: 'ids=c-e1,nope', expect: [200] });
await call('GET /v1/alerts/evidence', { expect: [400], label: 'no ids', invalid: true });

// keys, dry runs, reads
await call('GET /v1/keys/{field}/{value}', { params: { field: 'card_id', value: 'c1' }, expect: [200] });
await call('GET /v1/keys/{field}/{value}', { params: { field: 'card_id', value: 'no-such-card' }, absent: true, expect: [404], label: 'a key with no state' });
await call('POST /v1/rules:test', {
  body: JSON.stringify({ source: ruleSrc(100).replace(RULE, 'dry_run'), events: [ev('d1', 'c1', 250), ev('d2', 'c1', 5)] }), type: 'application/json', expect: [200],
});
await call('POST /v1/rules:test', { body: JSON.stringify({ source: 'rule {', events: [] }), type: 'application/json', expect: [422], label: 'a source that does not compile', invalid: true });
await call('GET /v1/rules', { expect: [200] });
await call('GET /v1/rules/{name}', { params: { name: RULE }, expect: [200] });
await call('PUT /v1/lists/{name}', { params: { name: 'contract_list' }, body: 'a\nb\n', type: 'text/plain', expect: [201] });
await call('GET /v1/lists', { expect: [200] });
await call('GET /v1/lists/{name}', { params: { name: 'contract_list' }, expect: [200] });
await call('GET /v1/stats', { expect: [200] });
await call('GET /v1/audit', { query: 'limit=50', expect: [200] });
await call('GET /v1/deadletters', { expect: [200] });
await call('DELETE /v1/rules/{name}', { params: { name: RULE }, expect: [204] });

// the spec's own request examples work: every operation whose body has an
// example, called with it (and its path parameters' examples), answers 2xx
for (const o of ops) {
  const body = deref(spec, o.op.requestBody);
  const entry = Object.entries(body?.content || {}).find(([, m]) => m.example !== undefined);
  if (!entry) continue;
  const [type, media] = entry;
  const params = {};
  for (const prm of o.params) if (prm.in === 'path') params[prm.name] = prm.example;
  if ('id' in params && alertId) params.id = alertId;   // an alert that exists (the example's id is made up)
  const ok2xx = Object.keys(o.op.responses || {}).filter((c) => /^2/.test(c)).map(Number);
  await call(o.key, {
    params, type, label: "the spec's example",
    body: typeof media.example === 'string' ? media.example : JSON.stringify(media.example), expect: ok2xx,
  });
}

// a planned query parameter (x-vigil-status: planned on the parameter): the server ignores it today;
// once it answers 400 to a value outside the parameter's enum, it checks it, and the marker must go
for (const o of ops) {
  for (const prm of o.params) {
    if (prm['x-vigil-status'] !== 'planned' || prm.in !== 'query') continue;
    const r = await send(o.method, `${sampleUrl(o)}?${prm.name}=not-a-valid-value`, { token: roleToken(o.op['x-vigil-role']) });
    check(`${o.key} ?${prm.name}= (planned): the server does not check it yet (${r.status})`,
      r.status === 400 ? [`it answers 400 to ${prm.name}=not-a-valid-value: it is served now, remove x-vigil-status: planned from the parameter`] : []);
  }
}

// every operation was called with a valid request and answered (planned ones may be missing)
{
  const p = [];
  for (const o of ops) {
    const st = answered.get(o.key);
    if (o.op['x-vigil-status'] === 'planned' || o.op['x-vigil-mode'] === 'cluster') continue;   // cluster only: tests/integration/test_cluster.c
    if (!st) p.push(`${o.key}: no fixture calls it (add one to contract.mjs)`);
    else if (!st.some((s) => s !== 404 && s !== 405)) p.push(`${o.key}: only answered ${st.join(', ')}`);
  }
  check(`every operation of the spec (${ops.length}) answered a valid request`, p);
}

// the roles: no token → 401 (WWW-Authenticate: Bearer), a token just below the role → 403
for (const o of ops) {
  const role = o.op['x-vigil-role'];
  const sample = sampleUrl(o);
  const p = [];
  const r0 = await send(o.method, sample, {});
  if (role === 'none') {
    if (r0.status === 401 || r0.status === 403) p.push(`public (none), but without a token it answered ${r0.status}`);
  } else {
    const c0 = conform(o, r0, { absent: true });
    if (r0.status !== 401) p.push(`without a token: ${r0.status}, expected 401`);
    else p.push(...c0.map((x) => `without a token: ${x}`));
    const r1 = await send(o.method, sample, { token: TOKENS[BELOW[role]] });
    if (r1.status !== 403) p.push(`with a ${BELOW[role]} token: ${r1.status}, expected 403 (x-vigil-role ${role})`);
    else p.push(...conform(o, r1, { absent: true }).map((x) => `with a ${BELOW[role]} token: ${x}`));
  }
  check(`${o.key}: x-vigil-role ${role} is what the server enforces`, p);
}

function sampleUrl(o) {
  const params = {};
  for (const prm of o.params) if (prm.in === 'path') params[prm.name] = prm.example ?? deref(spec, prm.schema)?.examples?.[0] ?? 'x';
  return fill(o.path, params);
}

// ---- (b) every route the server serves is in the spec -----------------------------------

function sourceFiles(dir) {
  const out = [];
  for (const n of readdirSync(dir)) {
    const f = join(dir, n);
    if (statSync(f).isDirectory()) out.push(...sourceFiles(f));
    else if (n.endsWith('.c')) out.push(f);
  }
  return out;
}
const routes = [];
let fallback = null;
for (const f of sourceFiles(join(SRC_ROOT, 'server'))) {
  const text = readFileSync(f, 'utf8');
  const re = /vigil_http_route\(\s*[^,]+,\s*"([A-Z]+)",\s*"([^"]+)",\s*(\d+)\s*,/g;
  let m;
  while ((m = re.exec(text))) {
    const line = text.slice(0, m.index).split('\n').length;
    routes.push({ method: m[1], path: m[2], prefix: m[3] !== '0', where: `${relative(SRC_ROOT, f)}:${line}` });
  }
  const fb = /^[ \t]+vigil_http_fallback\(/m.exec(text);   /* a call (indented), not the definition */
  if (fb) fallback = `${relative(SRC_ROOT, f)}:${text.slice(0, fb.index).split('\n').length}`;
}
check(`the routes are read from the source (${routes.length} vigil_http_route calls${fallback ? ', a fallback' : ''})`,
  routes.length >= 10 ? [] : ['fewer than 10 vigil_http_route calls found: the parser no longer matches the source']);

const covers = (rt, o) => rt.method === o.method && (rt.prefix ? o.path.startsWith(rt.path) : o.path === rt.path);
const byFallback = (o) => fallback && o.method === 'GET' && !o.path.startsWith('/v1/') && !routes.some((rt) => covers(rt, o));
{
  const p = [];
  for (const rt of routes) {
    const mine = ops.filter((o) => covers(rt, o) && o.op['x-vigil-status'] !== 'planned');
    const desc = `${rt.method} ${rt.path}${rt.prefix ? ' (prefix)' : ''} [${rt.where}]`;
    if (!mine.length) p.push(`${desc}: served, but no operation of the spec describes it`);
    else if (!mine.every((o) => o.op['x-vigil-mode'] === 'cluster') &&
             !mine.some((o) => (answered.get(o.key) || []).some((s) => s && s !== 404 && s !== 405)))
      p.push(`${desc}: described, but never answered on the server`);
  }
  check('every route the source registers is in the spec and answers', p);
}
{
  const p = [];
  for (const o of ops) {
    const served = routes.some((rt) => covers(rt, o)) || byFallback(o);
    if (o.op['x-vigil-status'] === 'planned') {
      const rt = routes.find((x) => covers(x, o));
      if (rt) p.push(`${o.key}: marked planned, but ${rt.method} ${rt.path} [${rt.where}] serves it now: remove x-vigil-status`);
    } else if (!served) p.push(`${o.key}: in the spec, but no vigil_http_route serves it (and it is not a dashboard asset)`);
  }
  check('every operation of the spec is served by a route of the source (planned ones excepted)', p);
}
{
  // the fallback serves the dashboard's files: every one answers 200 at /<file> (index.html at / too)
  const p = [];
  const web = join(SRC_ROOT, 'dashboards', 'web');
  const files = [];
  for (const n of readdirSync(web)) {
    if (!statSync(join(web, n)).isDirectory()) files.push(n);
    else if (n === 'vendor') for (const v of readdirSync(join(web, n))) files.push(`vendor/${v}`);
    else p.push(`dashboards/web/${n}/: a folder the spec does not describe`);
  }
  for (const n of files) {
    const r = await send('GET', `/${n}`, {});
    const o = byKey.get(n === 'index.html' ? 'GET /' : n.startsWith('vendor/') ? 'GET /vendor/{file}' : 'GET /{asset}');
    const c = o ? conform(o, r) : [`no spec operation for /${n}`];
    if (r.status !== 200) p.push(`/${n}: ${r.status}`);
    else if (n !== 'index.html') p.push(...c.map((x) => `/${n}: ${x}`));
  }
  check(`the fallback [${fallback}] serves every file of dashboards/web/ as GET /{asset} describes`, p);
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
