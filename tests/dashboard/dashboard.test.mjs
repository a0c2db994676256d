// dashboard.test.mjs — drives vigil's live alert dashboard in headless
// Chromium (playwright-core, the system /usr/bin/chromium; no browser
// download) against a running `vigil serve`, started by test_dashboard.sh.
//
// What it proves: the page loads from the binary with no internet; it
// connects its live feed (SSE); an event POSTed to /v1/events that triggers
// the test rule makes an alert row appear WITHOUT a reload, with the rule
// counter and the total at 1; clicking the row opens the detail panel with
// the matched event's evidence; and the page logs no errors (CSP violations
// included). It then feeds a few more events so that the screenshot saved for
// humans (tests/artifacts/dashboard.png) shows a realistic feed.
//
// With --viewer-token (the server has tokens), it first proves the sign-in:
// the assets load without a token and the page asks for one; an unknown
// token and an ingest token are refused with a message; the viewer token
// opens the live feed and is kept in sessionStorage (not in the URL), so a
// reload needs no second prompt. Events are then POSTed with --ingest-token.
//
// Usage: node dashboard.test.mjs --url http://127.0.0.1:PORT [--screenshot FILE]
//          [--viewer-token T --ingest-token T]
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
const chromePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!base) {
  console.error('usage: node dashboard.test.mjs --url http://127.0.0.1:PORT [--screenshot FILE]');
  process.exit(2);
}

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

async function postEvent(ev) {
  const r = await fetch(base + '/v1/events', {
    method: 'POST',
    headers: ingestToken ? { 'Content-Type': 'application/json', Authorization: 'Bearer ' + ingestToken }
                         : { 'Content-Type': 'application/json' },
    body: JSON.stringify(ev),
  });
  const body = await r.text();
  assert(r.status === 202, `POST /v1/events answered ${r.status}: ${body}`);
}

const profile = mkdtempSync(join(tmpdir(), 'vigil-chromium-'));
let browser;
let exitCode = 1;
try {
  // A persistent context is how playwright takes a fresh --user-data-dir.
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
  // with tokens, the sign-in's refused requests are expected (Chromium logs them as errors)
  let signingIn = !!viewerToken;
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (signingIn && /status of 40[13]/.test(m.text())) return;
    problems.push('console error: ' + m.text());
  });
  page.on('requestfailed', (r) => {
    // the SSE request is aborted when the page closes; anything else is a problem
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
      // a locator, not waitForFunction: the page's CSP forbids the eval that one needs
      await page.locator('#token-error', { hasText: /not accepted/ }).waitFor({ timeout: 10000 });
      assert(await page.locator('#token-dialog[open]').count() === 1, 'the dialog closed');
    });
    await check('an ingest token is refused: it lacks the viewer role', async () => {
      await page.fill('#token-input', ingestToken);
      await page.click('#token-submit');
      await page.locator('#token-error', { hasText: /viewer/ }).waitFor({ timeout: 10000 });
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
    signingIn = false;
  }

  await check('dashboard loads and its live feed connects', async () => {
    const resp = await page.goto(base + '/', { waitUntil: 'domcontentloaded', timeout: 15000 });
    assert(resp && resp.status() === 200, `GET / answered ${resp && resp.status()}`);
    await page.waitForSelector('#conn-status[data-state="live"]', { timeout: 15000 });
    assert((await page.title()).includes('vigil'), 'unexpected page title');
  });

  await check('an alert triggered by a POSTed event appears without reload', async () => {
    const before = await page.locator('#alerts tbody tr.alert-row').count();
    assert(before === 0, `expected an empty feed at start, found ${before} rows`);
    await page.evaluate(() => { window.__vigilNoReload = 'still here'; });
    await postEvent({ id: 'e1', ts: 1700000000000, card_id: 'c1', amount: 500 });
    const row = page.locator('#alerts tbody tr.alert-row[data-alert-id]').first();
    await row.waitFor({ state: 'visible', timeout: 15000 });
    assert(await page.evaluate(() => window.__vigilNoReload) === 'still here', 'the page was reloaded');
    const text = await row.innerText();
    for (const want of ['big_amount', 'card_id=c1', 'e1']) {
      assert(text.includes(want), `row lacks "${want}": ${JSON.stringify(text)}`);
    }
    const id = await row.getAttribute('data-alert-id');
    assert(id && id.length > 0, 'row has no data-alert-id');
  });

  await check('per-rule counter and total show 1', async () => {
    const counter = page.locator('#rule-counts [data-rule="big_amount"] .count');
    await counter.waitFor({ timeout: 5000 });
    assert((await counter.innerText()).trim() === '1', `rule counter is ${await counter.innerText()}`);
    assert((await page.locator('#total-count').innerText()).trim() === '1', 'total is not 1');
  });

  await check('clicking the row shows the alert detail with its evidence', async () => {
    await page.locator('#alerts tbody tr.alert-row').first().click();
    await page.waitForSelector('#detail.open', { timeout: 5000 });
    const evidence = await page.locator('#detail-evidence').innerText();
    assert(evidence.includes('"card_id": "c1"') && evidence.includes('500'),
      `evidence does not show the event: ${evidence.slice(0, 200)}`);
    const events = await page.locator('#detail-events').innerText();
    assert(events.includes('e1'), 'matched events do not list e1');
    await page.locator('#detail-close').click();
    await page.waitForSelector('#detail:not(.open)', { timeout: 5000 });
  });

  if (viewerToken) {
    await check('after a reload the kept token is used: no prompt, the alert is listed', async () => {
      await page.reload({ waitUntil: 'domcontentloaded', timeout: 15000 });
      await page.waitForSelector('#conn-status[data-state="live"]', { timeout: 15000 });
      assert(await page.locator('#token-dialog[open]').count() === 0, 'the page asked again');
      await page.locator('#alerts tbody tr.alert-row').first().waitFor({ timeout: 10000 });
    });
  }

  await check('the page logged no errors', async () => {
    assert(problems.length === 0, problems.join('; '));
  });

  if (shot) {
    // More traffic for a screenshot that shows what the feed looks like.
    const more = [
      { id: 'e2', ts: 1700000060000, card_id: 'c7', amount: 1250 },
      { id: 'e3', ts: 1700000120000, card_id: 'c3', amount: 130 },
      { id: 'e4', ts: 1700000180000, card_id: 'c7', amount: 2600 },
      { id: 'e5', ts: 1700000240000, card_id: 'c9', amount: 740 },
    ];
    try {
      for (const ev of more) await postEvent(ev);
      await page.locator('#alerts tbody tr.alert-row').nth(4).waitFor({ timeout: 10000 });
      await page.waitForTimeout(2000);   // let the arrival highlight fade
    } catch (e) {
      console.log('note: screenshot traffic incomplete: ' + e.message);
    }
    mkdirSync(dirname(shot), { recursive: true });
    await page.screenshot({ path: shot });
    console.log('screenshot: ' + shot);
    // and one with an alert's detail open
    const detailShot = shot.replace(/\.png$/, '') + '-detail.png';
    try {
      await page.locator('#alerts tbody tr.alert-row').nth(1).click();
      await page.waitForSelector('#detail.open', { timeout: 5000 });
      await page.waitForTimeout(400);    // the panel slides in
      await page.screenshot({ path: detailShot });
      console.log('screenshot: ' + detailShot);
    } catch (e) {
      console.log('note: no detail screenshot: ' + e.message);
    }
  }
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
