// app.js — boot of vigil's dashboard (index.html): the token, the alert
// list and the live feed. panels.js holds the shared helpers and the
// server-computed panels (health tiles, chart, rules table); detail.js an
// alert's detail, triage and the key view.
//
// The alert list is the server's: GET /v1/alerts with the page's filters
// (rule, severity, mode, disposition, key, event-time range), `limit` rows
// per page and the cursor `before` for older pages; "N matching" is the
// server's `total`, not a count of what the page holds. New alerts arrive
// over Server-Sent Events (GET /v1/alerts/stream, resumed after the list's
// `last_seq`); each one makes the page ask the server again (the first
// page of the list, the tiles, the chart, the rules table), debounced, so
// every number shown stays the server's.
//
// Tokens (DESIGN.md §6): when the server answers 401 (or 403), the page asks
// for a viewer token once (#token-dialog) and keeps it in sessionStorage, so
// it lasts while the tab is open and is gone when it closes. Fetches send it
// as Authorization: Bearer; the stream as ?access_token=, since EventSource
// cannot send headers. An ?access_token= in the page's URL is taken the same
// way and removed from the address bar. "Forget token" clears it.
//
// Everything from the server is put into the page with textContent (never
// innerHTML): alert fields are data, not markup.
'use strict';

(function () {
  const V = window.Vigil;
  const $ = V.$;
  const el = V.el;
  const PAGE = 25;
  const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'];

  const TOKEN_KEY = 'vigil.token';
  const pageParams = new URLSearchParams(window.location.search);
  try { V.token = sessionStorage.getItem(TOKEN_KEY); } catch (e) { /* storage disabled: ask each time */ }
  if (pageParams.get('access_token')) {
    V.token = pageParams.get('access_token');
    saveToken(V.token);
    pageParams.delete('access_token');
    const q = pageParams.toString();
    history.replaceState(null, '', window.location.pathname + (q ? '?' + q : '') + window.location.hash);
  }

  function saveToken(t) {
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled */ }
  }

  V.alertsById = new Map();      // the alerts the page holds (the list), by id
  V.selected = null;
  V.severityOf = (a) => (SEVERITIES.includes(a.severity) ? a.severity : 'info');
  const list = { cursors: [], before: null, lastSeq: null };
  let lastEventId = null;
  const tbody = document.querySelector('#alerts tbody');

  function withToken(path, extra) {
    const q = new URLSearchParams(extra || {});
    if (V.token) q.set('access_token', V.token);
    const s = q.toString();
    return s ? path + '?' + s : path;
  }

  function setStatus(s, label) {
    const c = $('conn-status');
    c.dataset.state = s;
    c.querySelector('.label').textContent = label || s;
  }

  // ---- the alert list (GET /v1/alerts) -------------------------------------

  function localToMs(v) {
    if (!v) return null;
    const d = new Date(v);   // datetime-local: the browser's time zone
    return isNaN(d) ? null : d.getTime();
  }

  function query() {
    const q = new URLSearchParams();
    q.set('limit', String(PAGE));
    const f = { rule: 'filter-rule', severity: 'filter-severity', mode: 'filter-mode', disposition: 'filter-disposition' };
    Object.keys(f).forEach((k) => { if ($(f[k]).value) q.set(k, $(f[k]).value); });
    const key = $('filter-key').value.trim();
    if (key) q.set('key', key);
    const since = localToMs($('filter-since').value), until = localToMs($('filter-until').value);
    if (since !== null) q.set('since', String(since));
    if (until !== null) q.set('until', String(until));
    if (list.before) q.set('before', String(list.before));
    return q;
  }

  function dispLabel(d) {
    return d ? d.replace('_', ' ') : '';
  }

  function buildRow(a, fresh) {
    const tr = el('tr', 'alert-row sevrow-' + V.severityOf(a) + (fresh ? ' fresh' : ''));
    tr.dataset.alertId = a.id;
    tr.dataset.rule = a.rule || '';
    tr.dataset.severity = V.severityOf(a);
    tr.dataset.key = a.key == null ? '' : String(a.key);
    const d = V.toDate(a.ts), det = V.toDate(a.detected_at);
    const time = el('td', 'time', V.fmtTime(d));
    if (d) time.title = 'event time ' + d.toISOString();
    time.appendChild(el('div', 'det-small', 'detected ' + V.fmtTime(det)));   /* narrow screens: no Detected column */
    tr.appendChild(time);
    const detected = el('td', 'detected', V.fmtTime(det));
    if (det) detected.title = 'detected at ' + det.toISOString();
    tr.appendChild(detected);
    const sevTd = el('td', 'sev-cell');
    sevTd.appendChild(el('span', 'sev sev-' + V.severityOf(a), V.severityOf(a)));
    tr.appendChild(sevTd);
    const rule = el('td', 'rule', a.rule || '');
    if (a.mode === 'shadow') rule.appendChild(el('span', 'shadow-tag', 'shadow'));
    tr.appendChild(rule);
    const key = el('td', 'key');
    key.appendChild(el('span', 'field', (a.key_field || 'key') + '='));
    key.appendChild(document.createTextNode(a.key == null ? '' : String(a.key)));
    tr.appendChild(key);
    tr.appendChild(el('td', 'event', a.event || ''));
    tr.appendChild(el('td', 'disp' + (a.disposition ? ' disp-' + a.disposition : ''), dispLabel(a.disposition)));
    return tr;
  }

  let loadSeq = 0;
  // {status, lastSeq}: status 401/403 means the token is missing or not enough
  V.loadAlerts = async function (markNew) {
    const my = ++loadSeq;
    const r = await V.api('GET', '/v1/alerts?' + query().toString());
    if (my !== loadSeq) return { status: r.status, lastSeq: null };   // a newer load is under way
    if (r.status === 401 || r.status === 403 || !r.ok || !r.body) return { status: r.status, lastSeq: null };
    const b = r.body;
    const before = new Set(V.alertsById.keys());
    V.alertsById.clear();
    const rows = (b.alerts || []).map((a) => {
      V.alertsById.set(a.id, a);
      return buildRow(a, markNew && !before.has(a.id));
    });
    tbody.replaceChildren(...rows);
    if (V.selected) {
      const row = tbody.querySelector('tr[data-alert-id="' + CSS.escape(V.selected) + '"]');
      if (row) row.classList.add('selected');
    }
    $('alerts-total').textContent = String(b.total == null ? rows.length : b.total);
    $('empty').classList.toggle('gone', rows.length > 0);
    list.next = b.next == null ? null : b.next;
    $('page-older').disabled = list.next == null;
    $('page-newer').disabled = list.cursors.length === 0;
    const page = list.cursors.length + 1;
    $('page-info').textContent = rows.length ? 'page ' + page + ' · ' + rows.length + ' of ' + b.total : '';
    return { status: r.status, lastSeq: typeof b.last_seq === 'number' ? b.last_seq : null };
  };

  $('page-older').addEventListener('click', () => {
    if (list.next == null) return;
    list.cursors.push(list.before);
    list.before = list.next;
    V.loadAlerts(false);
  });
  $('page-newer').addEventListener('click', () => {
    if (!list.cursors.length) return;
    list.before = list.cursors.pop();
    V.loadAlerts(false);
  });

  function filtersChanged() {
    list.cursors = [];
    list.before = null;
    V.loadAlerts(false);
  }
  ['filter-rule', 'filter-severity', 'filter-mode', 'filter-disposition', 'filter-since', 'filter-until'].forEach((id) =>
    $(id).addEventListener('change', filtersChanged));
  let keyTimer = null;
  $('filter-key').addEventListener('input', () => { clearTimeout(keyTimer); keyTimer = setTimeout(filtersChanged, 300); });

  tbody.addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr.alert-row');
    if (tr) V.showDetail(tr.dataset.alertId);
  });
  $('detail-key-link').addEventListener('click', (ev) => {
    ev.preventDefault();
    const a = ev.currentTarget;
    history.replaceState(null, '', a.getAttribute('href'));
    V.showKey(a.dataset.field, a.dataset.key);
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    if ($('key-view').classList.contains('open')) V.hideKey();
    else V.hideDetail();
  });

  // ---- refresh: everything shown is asked of the server again ----------------

  let refreshTimer = null;
  V.refreshSoon = function (markNew) {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => V.refreshAll(markNew), 400);   // a burst of alerts: one refresh
  };
  V.refreshAll = async function (markNew) {
    await Promise.all([
      list.before ? Promise.resolve() : V.loadAlerts(markNew),
      V.loadStats(), V.loadRules(), V.loadChart(),
    ]);
    document.body.dataset.refreshed = String(Date.now());
  };

  // ---- sign-in -----------------------------------------------------------------

  function askToken(message) {
    const dlg = $('token-dialog');
    const input = $('token-input');
    $('token-error').textContent = message || '';
    input.value = '';
    setStatus('signed-out', 'token needed');
    return new Promise((resolve) => {
      const form = $('token-form');
      const onSubmit = (ev) => {
        ev.preventDefault();
        const t = input.value.trim();
        if (!t) { $('token-error').textContent = 'Enter a token.'; return; }
        form.removeEventListener('submit', onSubmit);
        V.token = t;
        saveToken(t);
        dlg.close();
        updateForget();
        resolve();
      };
      form.addEventListener('submit', onSubmit);
      if (!dlg.open) dlg.showModal();
      input.focus();
    });
  }

  function updateForget() {
    $('token-forget').hidden = !V.token;
  }

  $('token-forget').addEventListener('click', () => {
    V.token = null;
    saveToken(null);
    window.location.reload();
  });
  // the dialog cannot be dismissed without a token: nothing to show without one
  $('token-dialog').addEventListener('cancel', (ev) => ev.preventDefault());

  async function start() {
    updateForget();
    for (;;) {
      const r = await V.loadAlerts(false);
      if (r.status === 401) {
        await askToken(V.token ? 'That token was not accepted. Enter a viewer token.' : '');
        continue;
      }
      if (r.status === 403) {
        await askToken('That token may not read alerts: it needs the viewer, analyst or admin role.');
        continue;
      }
      list.lastSeq = r.lastSeq;
      started = true;
      await V.refreshAll(false);
      connect(r.lastSeq);
      V.routeHash();
      return;
    }
  }

  function connect(lastSeq) {
    const extra = {};
    if (lastSeq !== null && lastSeq !== undefined) extra.last_event_id = String(lastSeq);
    const es = new EventSource(withToken('/v1/alerts/stream', extra));
    es.onopen = () => setStatus('live', 'live');
    es.addEventListener('alert', (ev) => {
      if (ev.lastEventId) lastEventId = ev.lastEventId;
      V.refreshSoon(true);
    });
    es.onerror = () => {
      // EventSource retries by itself (CONNECTING); CLOSED means it gave up
      // (e.g. a non-200 answer), so try again ourselves after a pause.
      if (es.readyState === EventSource.CLOSED) {
        setStatus('offline', 'offline');
        es.close();
        setTimeout(() => connect(lastEventId !== null ? lastEventId : lastSeq), 5000);
      } else {
        setStatus('reconnecting', 'reconnecting');
      }
    };
    window.vigilStream = es;   // for debugging from the console
  }

  let started = false;
  setInterval(() => { if (started) V.refreshAll(false); }, 15000);   // rates and "per hour" move without alerts
  setStatus('connecting', 'connecting');
  start();
})();
