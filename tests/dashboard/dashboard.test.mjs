// dashboard.test.mjs — drives vigil's dashboard in headless Chromium
// (playwright-core, the system /usr/bin/chromium; no browser download)
// against a running `vigil serve`, started by test_dashboard.sh with the
// rules big_amount (sliding count), card_testing (a pattern),
// compromised_terminal (a window counting fraud reports) and fraud_report
// (one alert per report).
//
// Without tokens (--feed): the page loads from the binary with no internet
// and connects its live feed; a POSTed event's alert appears without a
// reload; after a known feed every count on the page equals the server's
// (/v1/rules counters, GET /v1/alerts total, /v1/stats); the chart draws
// (pixels of the first series' colour on its canvas, and its data equal
// GET /v1/alerts/timeline); filters and pages are the server's; an alert's
// detail shows its evidence as a table with the pattern steps named, a
// window alert's contributing events (the two reports, with their evidence
// from fraud_report's alerts) and its aggregates
// by readable names; the key view renders GET /v1/keys/…; the health tiles
// equal GET /v1/stats; a disposition set in the page changes the rule's
// precision (equal to the server's); a rule's mode toggles; at 390 px the
// key column is visible; nothing is logged as an error (CSP included).
// Screenshots at 1440 and 390 px go next to --screenshot.
//
// With --viewer-token (the server has tokens): the sign-in (assets load
// without a token, the page asks once, unknown and ingest tokens are
// refused, the viewer token is kept in sessionStorage only), then a viewer
// is refused a mode toggle and a disposition and the page says so; then
// "Forget token", sign in as --analyst-token, and the toggle works.
//
// Usage: node dashboard.test.mjs --url http://127.0.0.1:PORT [--screenshot FILE]
//          [--viewer-token T --ingest-token T --analyst-token T]
// Exit status 0 when every check passed; prints "N passed, M failed".
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const base = arg('--url');
const shot = arg('--screenshot', null);
const viewerToken = arg('--viewer-token', null);
const ingestToken = arg('--ingest-token', null);
const analystToken = arg('--analyst-token', null);
const chromePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!base) {
  console.error('usage: node dashboard.test.mjs --url http://127.0.0.1:PORT [--screenshot FILE]');
  process.exit(2);
}
const shotPath = (suffix) => shot.replace(/\.png$/, '') + suffix + '.png';

const results = [];
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name}: ${e && e.message ? e.message : e}`);
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function post(body, ndjson) {
  const headers = { 'Content-Type': ndjson ? 'application/x-ndjson' : 'application/json' };
  if (ingestToken) headers.Authorization = 'Bearer ' + ingestToken;
  const r = await fetch(base + '/v1/events', { method: 'POST', headers, body });
  const text = await r.text();
  assert(r.status === 202, `POST /v1/events answered ${r.status}: ${text}`);
}
const postEvent = (ev) => post(JSON.stringify(ev), false);
const postEvents = (evs) => post(evs.map((e) => JSON.stringify(e)).join('\n') + '\n', true);

async function putRule(name, src, mode) {
  const tok = analystToken;
  const headers = { 'Content-Type': 'text/x-lua' };
  if (tok) headers.Authorization = 'Bearer ' + tok;
  const r = await fetch(base + '/v1/rules/' + name + (mode ? '?mode=' + mode : ''), { method: 'PUT', headers, body: src });
  const text = await r.text();
  assert(r.status === 200 || r.status === 201, `PUT /v1/rules/${name} answered ${r.status}: ${text}`);
  return JSON.parse(text);
}

// the server's view, with the most powerful token the test has
async function api(path) {
  const tok = analystToken || viewerToken;
  const r = await fetch(base + path, { headers: tok ? { Authorization: 'Bearer ' + tok } : {} });
  assert(r.ok, `GET ${path} answered ${r.status}`);
  return r.json();
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

// page.waitForFunction with an argument evaluates a string in the page,
// which the dashboard's CSP (no 'unsafe-eval') refuses: poll page.evaluate
async function waitIn(page, fn, arg, opts) {
  const ms = (opts && opts.timeout) || 10000;
  const t0 = Date.now();
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() - t0 > ms) throw new Error('timed out waiting for ' + fn.toString().replace(/\s+/g, ' ').slice(0, 140));
    await sleep(100);
  }
}

// wait until fn() (in node) is true, polling
async function until(fn, ms, what) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < ms) {
    try { last = await fn(); if (last === true) return; } catch (e) { last = e.message; }
    await sleep(200);
  }
  throw new Error(`timed out: ${what}${last !== undefined && last !== false ? ' (' + last + ')' : ''}`);
}

const T0 = 1700000000000;
function knownFeed() {
  const evs = [];
  for (let i = 0; i < 30; i++) evs.push({ id: 'b' + i, ts: T0 + 1000 + i, card_id: 'card' + (i % 7), amount: 150 + i });
  evs.push({ id: 'p1', ts: T0 + 5000, card_id: 'c5', type: 'auth', amount: 1 });
  evs.push({ id: 'p2', ts: T0 + 5001, card_id: 'c5', type: 'auth', amount: 1 });
  evs.push({ id: 'p3', ts: T0 + 5002, card_id: 'c5', type: 'auth', amount: 90 });
  evs.push({ id: 'r1', ts: T0 + 6000, terminal_id: 'T1', type: 'report', customer_id: 'cust-a' });
  evs.push({ id: 'r2', ts: T0 + 6001, terminal_id: 'T1', type: 'report', customer_id: 'cust-b' });
  evs.push({ id: 'tx9', ts: T0 + 6002, terminal_id: 'T1', type: 'tx', customer_id: 'cust-z' });
  return evs;
}

// the page's own refresh, then settle
async function refreshPage(page) {
  await page.evaluate(() => window.Vigil.refreshAll(false));
  await sleep(150);
}

// a failed check must not leave a panel over the next one's clicks
async function closePanels(page) {
  await page.evaluate(() => { window.Vigil.hideKey(); window.Vigil.hideDetail(); });
  await sleep(250);
}

async function openAlert(page, rule) {
  await closePanels(page);
  await page.selectOption('#filter-rule', rule);
  await waitIn(page, (r) => {
    const rows = document.querySelectorAll('#alerts tbody tr.alert-row');
    return rows.length > 0 && Array.from(rows).every((x) => x.dataset.rule === r);
  }, rule, { timeout: 10000 });
  await page.locator('#alerts tbody tr.alert-row').first().click();
  await page.waitForSelector('#detail.open', { timeout: 5000 });
}

async function closeDetail(page) {
  await page.locator('#detail-close').click();
  await page.waitForSelector('#detail:not(.open)', { timeout: 5000 });
}

const profile = mkdtempSync(join(tmpdir(), 'vigil-chromium-'));
let browser;
let exitCode = 1;
try {
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1440, height: 900 },
    timeout: 30000,
  });
  const page = browser.pages()[0] || await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  // refused requests are expected while signing in and when a viewer tries an analyst's action
  let refusalsExpected = !!viewerToken;
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (refusalsExpected && /status of 40[13]/.test(m.text())) return;
    problems.push('console error: ' + m.text());
  });
  page.on('requestfailed', (r) => {
    if (!r.url().includes('/v1/alerts/stream')) problems.push('request failed: ' + r.url());
  });

  if (viewerToken) {
    await check('without a token the assets load and the page asks for a token', async () => {
      const resp = await page.goto(base + '/', { waitUntil: 'domcontentloaded', timeout: 15000 });
      assert(resp && resp.status() === 200, `GET / answered ${resp && resp.status()}`);
      await page.waitForSelector('#token-dialog[open]', { timeout: 15000 });
      const st = await page.getAttribute('#conn-status', 'data-state');
      assert(st === 'signed-out', `connection state is ${st}, not signed-out`);
    });
    await check('an unknown token is refused with a message', async () => {
      await page.fill('#token-input', 'not-a-token');
      await page.click('#token-submit');
      await waitIn(page, () => /not accepted/.test(document.getElementById('token-error').textContent),
        null, { timeout: 10000 });
      assert(await page.locator('#token-dialog[open]').count() === 1, 'the dialog closed');
    });
    await check('an ingest token is refused: it lacks the viewer role', async () => {
      await page.fill('#token-input', ingestToken);
      await page.click('#token-submit');
      await waitIn(page, () => /viewer/.test(document.getElementById('token-error').textContent),
        null, { timeout: 10000 });
    });
    await check('the viewer token opens the live feed and stays in sessionStorage only', async () => {
      await page.fill('#token-input', viewerToken);
      await page.click('#token-submit');
      await page.waitForSelector('#conn-status[data-state="live"]', { timeout: 15000 });
      assert(await page.locator('#token-dialog[open]').count() === 0, 'the dialog is still open');
      const kept = await page.evaluate(() => [sessionStorage.getItem('vigil.token'), localStorage.length,
        document.cookie, window.location.href]);
      assert(kept[0] === viewerToken, 'the token is not in sessionStorage');
      assert(kept[1] === 0 && kept[2] === '', 'the token leaked to localStorage or a cookie');
      assert(!kept[3].includes(viewerToken), 'the token is in the page URL');
      assert(await page.locator('#token-forget').isVisible(), '"Forget token" is not shown');
    });
  }

  await check('dashboard loads and its live feed connects', async () => {
    const resp = await page.goto(base + '/', { waitUntil: 'domcontentloaded', timeout: 15000 });
    assert(resp && resp.status() === 200, `GET / answered ${resp && resp.status()}`);
    await page.waitForSelector('#conn-status[data-state="live"]', { timeout: 15000 });
    assert((await page.title()).includes('vigil'), 'unexpected page title');
  });

  await check('an alert triggered by a POSTed event appears without reload', async () => {
    const before = await page.locator('#alerts tbody tr.alert-row').count();
    assert(before === 0, `expected an empty list at start, found ${before} rows`);
    await page.evaluate(() => { window.__vigilNoReload = 'still here'; });
    await postEvent({ id: 'e1', ts: T0, card_id: 'c1', amount: 500 });
    const row = page.locator('#alerts tbody tr.alert-row[data-alert-id]').first();
    await row.waitFor({ state: 'visible', timeout: 15000 });
    assert(await page.evaluate(() => window.__vigilNoReload) === 'still here', 'the page was reloaded');
    const text = await row.innerText();
    for (const want of ['big_amount', 'card_id=c1', 'e1']) {
      assert(text.includes(want), `row lacks "${want}": ${JSON.stringify(text)}`);
    }
    // both times: the event's (2023) and the detection's (today)
    assert(await row.locator('td.time').innerText() !== await row.locator('td.detected').innerText(),
      'event time and detection time are the same cell text');
  });

  if (viewerToken) {
    await check('a viewer is refused a mode toggle and a disposition, and the page says so', async () => {
      await page.waitForSelector('#rule-counts tr[data-rule="big_amount"]', { timeout: 10000 });
      await page.locator('#rule-counts tr[data-rule="big_amount"] .mode-toggle').click();
      await waitIn(page, () => /refused/.test(document.getElementById('rules-msg').textContent), null,
        { timeout: 10000 });
      const rule = await api('/v1/rules/big_amount');
      assert(rule.mode === 'active', `the server's mode changed to ${rule.mode}`);
      await page.locator('#alerts tbody tr.alert-row').first().click();
      await page.waitForSelector('#detail.open', { timeout: 5000 });
      await page.locator('#triage [data-disposition="confirmed"]').click();
      await waitIn(page, () => /refused/.test(document.getElementById('triage-msg').textContent), null,
        { timeout: 10000 });
      await closeDetail(page);
    });
    await check('"Forget token", then an analyst token: the mode toggle works', async () => {
      await page.locator('#token-forget').click();
      await page.waitForSelector('#token-dialog[open]', { timeout: 15000 });
      await page.fill('#token-input', analystToken);
      await page.click('#token-submit');
      await page.waitForSelector('#conn-status[data-state="live"]', { timeout: 15000 });
      refusalsExpected = false;
    });
  }

  await check('mode toggle: the rules table switches big_amount to shadow and back, as the server says', async () => {
    const row = '#rule-counts tr[data-rule="big_amount"]';
    await page.waitForSelector(row, { timeout: 10000 });
    await page.locator(row + ' .mode-toggle').click();
    await page.waitForSelector(row + '[data-mode="shadow"]', { timeout: 10000 });
    assert((await api('/v1/rules/big_amount')).mode === 'shadow', 'the server did not switch to shadow');
    await page.locator(row + ' .mode-toggle').click();
    await page.waitForSelector(row + '[data-mode="active"]', { timeout: 10000 });
    assert((await api('/v1/rules/big_amount')).mode === 'active', 'the server did not switch back');
    await waitIn(page, () => /done/.test(document.getElementById('rules-msg').textContent), null, { timeout: 5000 });
  });

  await check('after a known feed the page shows the server\'s counts (rules, list total, tiles)', async () => {
    await postEvents(knownFeed());
    await until(async () => {
      const rules = (await api('/v1/rules')).rules;
      const by = Object.fromEntries(rules.map((r) => [r.name, r.alerts]));
      return by.big_amount === 31 && by.compromised_terminal === 1 && by.card_testing === 1 &&
        by.fraud_report === 2 || JSON.stringify(by);
    }, 15000, 'the server counts 31 big_amount, 1 compromised_terminal, 1 card_testing, 2 fraud_report');
    await refreshPage(page);
    const rules = (await api('/v1/rules')).rules;
    for (const r of rules) {
      const shown = (await page.locator(`#rule-counts tr[data-rule="${r.name}"] .count`).innerText()).trim();
      assert(shown === String(r.alerts), `${r.name}: page ${shown}, server ${r.alerts}`);
    }
    assert(rules.length === 4 && await page.locator('#rule-counts tbody tr').count() === 4, 'not every rule is listed');
    const list = await api('/v1/alerts?limit=1');
    assert((await page.locator('#alerts-total').innerText()).trim() === String(list.total),
      `list total ${await page.locator('#alerts-total').innerText()} vs server ${list.total}`);
    const stats = await api('/v1/stats');
    assert((await page.locator('#total-count').innerText()).trim() === String(stats.alerts.total),
      `alerts tile ${await page.locator('#total-count').innerText()} vs server ${stats.alerts.total}`);
  });

  await check('filters and pages are the server\'s: rule filter total, older page, back', async () => {
    await page.selectOption('#filter-rule', 'big_amount');
    const server = await api('/v1/alerts?rule=big_amount&limit=1');
    await waitIn(page, (n) => document.getElementById('alerts-total').textContent === String(n), server.total,
      { timeout: 10000 });
    assert(await page.locator('#alerts tbody tr.alert-row').count() === 25, 'the first page does not hold 25 rows');
    const first = await page.locator('#alerts tbody tr.alert-row').first().getAttribute('data-alert-id');
    await page.locator('#page-older').click();
    await waitIn(page, (n) => document.querySelectorAll('#alerts tbody tr.alert-row').length === n,
      server.total - 25, { timeout: 10000 });
    await page.locator('#page-newer').click();
    await waitIn(page, (id) => document.querySelector('#alerts tbody tr.alert-row').dataset.alertId === id,
      first, { timeout: 10000 });
    await page.selectOption('#filter-rule', '');
    await waitIn(page, (n) => document.getElementById('alerts-total').textContent === String(n),
      (await api('/v1/alerts?limit=1')).total, { timeout: 10000 });
  });

  await check('the chart draws the server\'s timeline (uPlot series pixels)', async () => {
    await refreshPage(page);
    const tl = await api('/v1/alerts/timeline?bucket=60&buckets=60');
    const got = await page.evaluate(() => window.Vigil.chartData);
    assert(got && JSON.stringify(got.rules) === JSON.stringify(Object.keys(tl.rules).sort()),
      `chart rules ${got && got.rules} vs server ${Object.keys(tl.rules)}`);
    const sums = got.data.slice(1).map((s) => s.reduce((x, y) => x + y, 0));
    const want = Object.keys(tl.rules).sort().map((k) => tl.rules[k].reduce((x, y) => x + y, 0));
    assert(JSON.stringify(sums) === JSON.stringify(want), `chart sums ${sums} vs server ${want}`);
    // the first series' colour (#58a6ff) on the plot's canvas
    const px = await page.evaluate(() => {
      const c = document.querySelector('#chart canvas');
      if (!c) return -1;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4)
        if (d[i + 3] > 200 && Math.abs(d[i] - 88) < 30 && Math.abs(d[i + 1] - 166) < 30 && Math.abs(d[i + 2] - 255) < 30) n++;
      return n;
    });
    assert(px > 50, `the first series drew ${px} pixels`);
  });

  await check('a window alert: the two reports as contributing events, aggregates by readable names', async () => {
    await openAlert(page, 'compromised_terminal');
    const wtext = await page.locator('#detail-window-events').innerText();
    assert(/r1/.test(wtext) && /r2/.test(wtext), `window events: ${wtext}`);
    assert(await page.locator('#detail-window-events tr[data-event-id="r1"]').count() === 1, 'no row for r1');
    // their evidence: fraud_report's alerts carried the reports (GET /v1/alerts/evidence)
    await waitIn(page, () => /cust-a/.test(document.querySelector('#detail-window-events tr[data-event-id="r1"]').textContent) &&
      /cust-b/.test(document.querySelector('#detail-window-events tr[data-event-id="r2"]').textContent), null, { timeout: 10000 });
    const ev = await page.locator('#detail-evidence table').innerText();
    assert(ev.includes('tx9') && ev.includes('T1'), `evidence table: ${ev}`);
    const aggs = await page.locator('#detail-aggregates').innerText();
    assert(aggs.includes('distinct customer_id where type = report') && /\b2\b/.test(aggs), `aggregates: ${aggs}`);
    assert(!aggs.includes('{filtered}'), 'an aggregate is still named {filtered}');
    if (shot) await page.screenshot({ path: shotPath('-window-alert') });
  });

  await check('the key view renders GET /v1/keys/terminal_id/T1', async () => {
    await page.locator('#detail-key-link').click();
    await page.waitForSelector('#key-view.open section.key-rule[data-rule="compromised_terminal"]', { timeout: 10000 });
    const text = await page.locator('#key-view-body').innerText();
    assert(/entries/.test(text) && /distinct customer_id where type = report/.test(text), `key view: ${text.slice(0, 300)}`);
    if (shot) await page.screenshot({ path: shotPath('-key') });
    await page.locator('#key-view-close').click();
    await page.waitForSelector('#key-view:not(.open)', { timeout: 5000 });
    await closeDetail(page);
  });

  await check('a pattern alert: its evidence table names the matched steps', async () => {
    await openAlert(page, 'card_testing');
    const rows = await page.locator('#detail-evidence tbody tr').allInnerTexts();
    assert(rows.length === 3, `${rows.length} evidence rows`);
    assert(rows[0].startsWith('probe') && rows[1].startsWith('probe') && rows[2].startsWith('cashout'),
      `steps: ${rows.map((r) => r.split('\t')[0])}`);
    await closeDetail(page);
    await page.selectOption('#filter-rule', '');
  });

  await check('health tiles equal GET /v1/stats', async () => {
    await sleep(1200);   // the server's stats thread samples once a second
    await refreshPage(page);
    const shown = await page.evaluate(() => window.Vigil.lastStats);
    const st = await api('/v1/stats');
    const tile = async (s) => (await page.locator(`#health [data-stat="${s}"] .tile-value`).innerText()).trim();
    assert(await tile('alerts_total') === String(st.alerts.total), 'alerts tile');
    assert(await tile('state_keys') === String(st.state.keys), `state keys ${await tile('state_keys')} vs ${st.state.keys}`);
    assert(await tile('status') === `${st.status.store} · ${st.status.nats} · ${st.status.jetstream}`, 'status tile');
    assert(await tile('webhooks') === `${st.webhooks.backlog} · ${st.webhooks.dead_letters}`, 'webhooks tile');
    assert(await tile('lag') === String(st.lag.queued), 'lag tile');
    // rates and latency move with time: the page shows what it fetched
    assert(await tile('events_per_second') === String(shown.rates.events_per_second), 'events/s tile');
    const href = await page.getAttribute('#health [data-stat="webhooks"]', 'href');
    assert(href === '/v1/deadletters', 'the webhooks tile does not link to the dead letters');
    for (const s of ['events_per_second', 'latency', 'lag', 'watermark', 'state_keys', 'status', 'alerts_total'])
      assert(await page.getAttribute(`#health [data-stat="${s}"]`, 'href'), `tile ${s} links nowhere`);
  });

  await check('a disposition set in the page changes the rule\'s precision', async () => {
    const before = (await api('/v1/rules/big_amount')).precision;
    assert(before === null, `precision before any triage: ${before}`);
    await openAlert(page, 'big_amount');
    await page.fill('#triage-note', 'card reported stolen');
    await page.locator('#triage [data-disposition="confirmed"]').click();
    await waitIn(page, () => /Marked confirmed/.test(document.getElementById('triage-msg').textContent), null,
      { timeout: 10000 });
    await waitIn(page, () => document.querySelector('#rule-counts tr[data-rule="big_amount"] .precision')
      .textContent === '100%', null, { timeout: 10000 });
    await page.locator('#alerts tbody tr.alert-row').nth(1).click();
    await page.locator('#triage [data-disposition="false_positive"]').click();
    await waitIn(page, () => document.querySelector('#rule-counts tr[data-rule="big_amount"] .precision')
      .textContent === '50%', null, { timeout: 10000 });
    const server = await api('/v1/rules/big_amount');
    assert(server.precision === 0.5 && server.dispositions.confirmed === 1 && server.dispositions.false_positive === 1,
      `server: ${JSON.stringify(server.dispositions)} ${server.precision}`);
    const row = await page.locator('#alerts tbody tr.alert-row').nth(1).innerText();
    assert(/false positive/.test(row), `the row does not show its triage: ${row}`);
    await closeDetail(page);
    await page.selectOption('#filter-disposition', 'confirmed');
    await waitIn(page, () => document.getElementById('alerts-total').textContent === '1', null, { timeout: 10000 });
    await page.selectOption('#filter-disposition', '');
  });

  await check('rules table: versions\' sources, shadow compare, promote, roll back (analyst)', async () => {
    await closePanels(page);
    const row = '#rule-counts tr[data-rule="fraud_report"]';
    await page.locator(row + ' .name-link').click();
    await page.waitForSelector('#rule-source:not([hidden]) section.version[data-version="1"]', { timeout: 10000 });
    assert(/name\s*=\s*"fraud_report"/.test(await page.locator('#rule-source-body').innerText()), 'no source shown');
    await page.locator('#rule-source-close').click();
    await putRule('fraud_report', 'rule { name = "fraud_report", severity = "low", key = "customer_id",\n' +
      '  where = { type = "report" }, window = sliding("1h"), when = ge(count(), 2) }\n', 'shadow');
    await refreshPage(page);
    await page.locator(row + ' .compare').click();
    await waitIn(page, () => /shadow v2 only \d+ · both \d+/.test(document.getElementById('rules-msg').textContent), null,
      { timeout: 10000 });
    await page.locator(row + ' .promote').click();
    await waitIn(page, () => document.querySelector('#rule-counts tr[data-rule="fraud_report"] .version').textContent === 'v2',
      null, { timeout: 10000 });
    assert((await api('/v1/rules/fraud_report')).version === 2, 'the server did not promote version 2');
    await page.selectOption(row + ' .rollback-version', '1');
    await page.locator(row + ' .rollback').click();
    await waitIn(page, () => document.querySelector('#rule-counts tr[data-rule="fraud_report"] .version').textContent === 'v3',
      null, { timeout: 10000 });
    const r = await api('/v1/rules/fraud_report');
    assert(r.version === 3 && /ge\(count\(\), 1\)/.test(r.versions.find((v) => v.version === 3).source),
      'version 3 is not version 1\'s source');
  });

  if (shot) {
    await check('screenshots at 1440 px', async () => {
      await closePanels(page);
      mkdirSync(dirname(shot), { recursive: true });
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: shot, fullPage: true });
      await page.locator('#alerts tbody tr.alert-row').nth(2).click();
      await page.waitForSelector('#detail.open', { timeout: 5000 });
      await page.waitForTimeout(400);   // the panel slides in
      await page.screenshot({ path: shotPath('-detail') });
      await closeDetail(page);
    });
  }

  await check('at 390 px the list keeps its key column visible', async () => {
    await closePanels(page);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload({ waitUntil: 'domcontentloaded', timeout: 15000 });
    await page.waitForSelector('#conn-status[data-state="live"]', { timeout: 15000 });
    const key = page.locator('#alerts tbody tr.alert-row td.key').first();
    await key.waitFor({ state: 'visible', timeout: 10000 });
    const box = await key.boundingBox();
    assert(box && box.x >= 0 && box.x + box.width <= 390 + 1, `key cell at ${JSON.stringify(box)}`);
    assert(/detected/.test(await page.locator('#alerts tbody tr.alert-row td.time').first().innerText()),
      'the detection time is not shown at 390 px');
    const rule = await page.locator('#alerts tbody tr.alert-row td.rule').first().boundingBox();
    assert(rule && rule.x + rule.width <= 391, 'the rule column is off screen');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert(overflow <= 392, `the page is ${overflow} px wide at 390`);
    if (shot) await page.screenshot({ path: shotPath('-390'), fullPage: true });
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  await check('the page logged no errors', async () => {
    assert(problems.length === 0, problems.join('; '));
  });
  exitCode = results.every((r) => r.ok) && results.length > 0 ? 0 : 1;
} catch (e) {
  console.log('FAIL browser session: ' + (e && e.message ? e.message : e));
  results.push({ name: 'browser session', ok: false });
  exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
const passed = results.filter((r) => r.ok).length;
console.log(`checks: ${passed} passed, ${results.length - passed} failed`);
process.exit(exitCode);
