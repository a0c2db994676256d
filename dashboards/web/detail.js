// detail.js — one alert in the side panel and one key's explain view: the
// alert's fields (event time and detection time), its evidence as a table
// of events with the pattern step each matched, a window alert's
// contributing events (window_events, with their evidence where some alert
// the page holds carried it: vigil keeps ids, not the events), its
// aggregates by readable names, the triage buttons (PUT
// /v1/alerts/{id}/disposition, analyst), and the key view (GET
// /v1/keys/{field}/{value}, analyst: partial matches, window, why no
// alert). Split from app.js so each file holds one part of the page.
// Everything from the server goes in with textContent, never innerHTML.
'use strict';

(function () {
  const V = window.Vigil = window.Vigil || {};
  const $ = (id) => document.getElementById(id);
  const el = (t, c, x) => V.el(t, c, x);
  const MAX_COLS = 10;

  // The step of each matched event: details.steps lists the steps in match
  // order with how many events each took (pattern alerts).
  function stepsOf(a) {
    const steps = a.details && a.details.steps;
    const out = [];
    if (steps && typeof steps === 'object') {
      Object.keys(steps).forEach((name) => {
        for (let i = 0; i < Number(steps[name]) || 0; i++) out.push(name);
      });
    }
    return out;
  }

  function cellText(v) {
    if (v === null || v === undefined) return '';
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  }

  // A table of event objects; first column the label each row gets.
  function eventTable(rows, labelHead) {
    const cols = [];
    rows.forEach((r) => {
      if (r.ev && typeof r.ev === 'object') Object.keys(r.ev).forEach((k) => { if (!cols.includes(k)) cols.push(k); });
    });
    cols.splice(MAX_COLS);
    const t = el('table', 'events-table');
    const hr = el('tr');
    hr.appendChild(el('th', null, labelHead));
    cols.forEach((c) => hr.appendChild(el('th', null, c)));
    const thead = el('thead');
    thead.appendChild(hr);
    t.appendChild(thead);
    const tb = el('tbody');
    rows.forEach((r) => {
      const tr = el('tr');
      if (r.id) tr.dataset.eventId = r.id;
      tr.appendChild(el('td', 'step', r.label));
      if (r.ev) cols.forEach((c) => tr.appendChild(el('td', null, cellText(r.ev[c]))));
      else {
        const td = el('td', 'muted', r.missing || '');
        td.colSpan = Math.max(1, cols.length);
        tr.appendChild(td);
      }
      tb.appendChild(tr);
    });
    t.appendChild(tb);
    return t;
  }

  // an event object some alert the page holds carried, by its id
  function findEvidence(id) {
    for (const a of V.alertsById.values()) {
      for (const ev of Array.isArray(a.evidence) ? a.evidence : []) {
        if (ev && typeof ev === 'object' && Object.keys(ev).some((k) => /id$/.test(k) && String(ev[k]) === id)) return ev;
      }
    }
    return null;
  }

  function fieldList(a) {
    const dl = $('detail-fields');
    dl.replaceChildren();
    const add = (k, v, cls) => {
      if (v === undefined || v === null || v === '') return;
      dl.appendChild(el('dt', null, k));
      const dd = el('dd', cls, v);
      dl.appendChild(dd);
      return dd;
    };
    add('id', a.id);
    add('rule', a.rule + (a.rule_version != null ? ' (v' + a.rule_version + ')' : ''));
    const sev = add('severity', ' ');
    if (sev) { sev.textContent = ''; sev.appendChild(el('span', 'sev sev-' + V.severityOf(a), V.severityOf(a))); }
    add('mode', a.mode);
    add('key', (a.key_field || 'key') + '=' + (a.key == null ? '' : a.key));
    add('event time', a.ts, 'ts');
    add('detected at', a.detected_at, 'detected');
    add('event', a.event);
    if (a.window_start != null) add('window', a.window_start + ' → ' + a.window_end);
    add('triage', a.disposition ? a.disposition + (a.triage && a.triage.by ? ' by ' + a.triage.by : '') +
      (a.triage && a.triage.note ? ': ' + a.triage.note : '') : 'not triaged', 'disposition');
  }

  // A window alert's contributing events: their evidence from this alert,
  // another alert the page holds, or the server's ring (GET
  // /v1/alerts/evidence, asked once per opening); vigil keeps their ids only.
  function renderWindow(a, evid, fromServer) {
    const missing = [];
    const rows = a.window_events.map((wid) => {
      const ev = evid.find((e) => e && Object.keys(e).some((k) => /id$/.test(k) && String(e[k]) === wid)) ||
        findEvidence(wid) || fromServer[wid] || null;
      if (!ev && !(wid in fromServer)) missing.push(wid);
      return { id: wid, ev, label: wid, missing: 'evidence not kept: no recent alert carried this event' };
    });
    if (a.window_events_truncated) rows.push({ label: '…', missing: 'more events counted, not listed' });
    $('detail-window-events').replaceChildren(rows.length ? eventTable(rows, 'event') :
      el('p', 'muted', 'No event of the window counted in an aggregate.'));
    if (!missing.length || fromServer.asked) return;
    V.api('GET', '/v1/alerts/evidence?ids=' + missing.slice(0, 100).map(encodeURIComponent).join(',')).then((r) => {
      if (V.selected !== a.id || !r.ok || !r.body) return;
      const got = Object.assign({ asked: true }, r.body.evidence || {});
      renderWindow(a, evid, got);
    });
  }

  V.showDetail = function (id) {
    const a = V.alertsById.get(id);
    if (!a) return;
    V.selected = id;
    document.querySelectorAll('#alerts tr.selected').forEach((r) => r.classList.remove('selected'));
    const row = document.querySelector('#alerts tr[data-alert-id="' + CSS.escape(id) + '"]');
    if (row) row.classList.add('selected');
    $('detail-title').textContent = a.rule || 'Alert';
    fieldList(a);
    const link = $('detail-key-link');
    link.href = '#key=' + encodeURIComponent(a.key_field || '') + '/' + encodeURIComponent(a.key == null ? '' : a.key);
    link.dataset.field = a.key_field || '';
    link.dataset.key = a.key == null ? '' : String(a.key);

    const ol = $('detail-events');
    ol.replaceChildren();
    const events = Array.isArray(a.events) ? a.events : [];
    events.forEach((e) => ol.appendChild(el('li', e === a.event ? 'completing' : null, e)));
    if (a.events_truncated) ol.appendChild(el('li', null, '… (more, not listed)'));
    if (!events.length) ol.appendChild(el('li', null, '—'));

    const steps = stepsOf(a);
    const isWindow = Array.isArray(a.window_events);
    const evid = Array.isArray(a.evidence) ? a.evidence : [];
    $('detail-evidence').replaceChildren(evid.length ? eventTable(evid.map((ev, i) => ({
      id: events[i], ev, label: steps[i] || (isWindow ? (events[i] === a.event ? 'current event' : 'window') : ''),
    })), 'step') : el('p', 'muted', 'No evidence kept.'));

    $('detail-window').hidden = !isWindow;
    if (isWindow) renderWindow(a, evid, {});
    const aggs = a.details && a.details.aggregates;
    $('detail-aggs').hidden = !aggs;
    const at = $('detail-aggregates');
    at.replaceChildren();
    if (aggs) {
      Object.keys(aggs).forEach((k) => {
        const tr = el('tr');
        tr.dataset.label = k;
        const th = el('th', null, V.readableAgg(k));
        th.title = k;
        tr.appendChild(th);
        tr.appendChild(el('td', null, cellText(aggs[k])));
        at.appendChild(tr);
      });
    }
    $('detail-details').textContent = JSON.stringify(a.details === undefined ? {} : a.details, null, 2);
    $('triage-msg').textContent = '';
    $('triage-note').value = a.triage && a.triage.note ? a.triage.note : '';
    document.querySelectorAll('#triage [data-disposition]').forEach((b) =>
      b.classList.toggle('chosen', b.dataset.disposition === a.disposition));
    const panel = $('detail');
    panel.classList.add('open');
    panel.setAttribute('aria-hidden', 'false');
  };

  V.hideDetail = function () {
    V.selected = null;
    document.querySelectorAll('#alerts tr.selected').forEach((r) => r.classList.remove('selected'));
    $('detail').classList.remove('open');
    $('detail').setAttribute('aria-hidden', 'true');
  };
  $('detail-close').addEventListener('click', () => V.hideDetail());

  // ---- triage ---------------------------------------------------------------

  document.querySelectorAll('#triage [data-disposition]').forEach((b) => b.addEventListener('click', async () => {
    const id = V.selected;
    if (!id) return;
    const msg = $('triage-msg');
    msg.classList.remove('bad');
    msg.textContent = 'saving…';
    const r = await V.api('PUT', '/v1/alerts/' + encodeURIComponent(id) + '/disposition',
      { disposition: b.dataset.disposition, note: $('triage-note').value });
    if (!r.ok) {
      msg.textContent = V.refusal(r, 'Triage');
      msg.classList.add('bad');
      return;
    }
    const a = V.alertsById.get(id);
    if (a) {
      a.disposition = r.body.disposition;
      a.triage = { note: r.body.note, by: r.body.by, at: r.body.at };
    }
    msg.textContent = 'Marked ' + r.body.disposition.replace('_', ' ') + ' by ' + r.body.by + '.';
    if (a) V.showDetail(id);
    $('triage-msg').textContent = 'Marked ' + r.body.disposition.replace('_', ' ') + ' by ' + r.body.by + '.';
    V.refreshSoon();
  }));

  // ---- key view -------------------------------------------------------------

  function kv(rows) {
    const t = el('table', 'kv');
    rows.forEach(([k, v, title]) => {
      const tr = el('tr');
      const th = el('th', null, k);
      if (title) th.title = title;
      tr.appendChild(th);
      tr.appendChild(el('td', v === null || v === undefined ? 'muted' : null,
        v === null || v === undefined ? 'unknown now' : cellText(v)));
      t.appendChild(tr);
    });
    return t;
  }

  function renderKey(body, k) {
    (k.rules || []).forEach((r) => {
      const sec = el('section', 'key-rule');
      sec.dataset.rule = r.name;
      sec.appendChild(el('h3', null, r.name + (r.version != null ? ' v' + r.version : '')));
      const runs = Array.isArray(r.runs) ? r.runs : null;
      if (runs) {
        sec.appendChild(el('h4', null, 'Partial matches: ' + runs.length));
        runs.forEach((run) => sec.appendChild(kv([['step', run.step], ['events', (run.events || []).join(', ')],
          ['started', run.started], ['expires', run.expires]])));
      }
      const w = r.window;
      if (w) {
        sec.appendChild(el('h4', null, 'Window'));
        const rows = [['from', w.start], ['to', w.end], ['entries', w.entries]];
        Object.keys(w.aggregates || {}).forEach((name) => rows.push([V.readableAgg(name), w.aggregates[name], name]));
        rows.push(['when holds', w.when]);
        (w.operands || []).forEach((o) => rows.push([V.readableAgg(o.expr), o.value, o.expr]));
        sec.appendChild(kv(rows));
      }
      const why = [];
      if (r.suppressed_until) why.push('suppressed until ' + r.suppressed_until);
      if (w && w.when === false) why.push('the window\'s condition does not hold');
      if (w && w.when === null && w.when_note) why.push(w.when_note);
      if (runs && runs.length) why.push(runs.length + ' partial match(es) waiting for their next step');
      sec.appendChild(el('p', 'why', why.length ? 'No alert now: ' + why.join('; ') + '.' : ''));
      const last = r.last_alert;
      sec.appendChild(el('p', 'muted', last ? 'Last alert: ' + (last.detected_at || last.ts || '') + ' (' + (last.id || '') + ')'
        : 'No alert of this key in the recent alerts.'));
      body.appendChild(sec);
    });
    if (!(k.rules || []).length) body.appendChild(el('p', 'muted', 'No rule holds state for this key.'));
  }

  V.showKey = async function (field, key) {
    const panel = $('key-view'), body = $('key-view-body');
    $('key-view-title').textContent = field + ' = ' + key;
    body.replaceChildren(el('p', 'muted', 'loading…'));
    panel.classList.add('open');
    panel.setAttribute('aria-hidden', 'false');
    const r = await V.api('GET', '/v1/keys/' + encodeURIComponent(field) + '/' + encodeURIComponent(key));
    body.replaceChildren();
    if (r.status === 404) { body.appendChild(el('p', 'msg', 'This key has no state now (its windows and matches expired, or it never had any).')); return; }
    if (!r.ok) { body.appendChild(el('p', 'msg bad', V.refusal(r, 'Explain'))); return; }
    renderKey(body, r.body);
  };

  V.hideKey = function () {
    $('key-view').classList.remove('open');
    $('key-view').setAttribute('aria-hidden', 'true');
    if (/^#key=/.test(window.location.hash)) history.replaceState(null, '', window.location.pathname + window.location.search);
  };
  $('key-view-close').addEventListener('click', () => V.hideKey());

  V.routeHash = function () {
    const m = /^#key=([^/]*)\/(.*)$/.exec(window.location.hash);
    if (m) V.showKey(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
  };
  window.addEventListener('hashchange', () => V.routeHash());
})();
