// app.js — behaviour of vigil's live alert dashboard (index.html).
//
// On load it fetches the most recent alerts (GET /v1/alerts?limit=200), then
// follows new ones over Server-Sent Events (GET /v1/alerts/stream), starting
// right after the list's `last_seq` so that nothing falls between the two.
// Alerts are deduplicated by their id (DESIGN.md §3: the same match always
// has the same id), so what the stream replays after a reconnect or a server
// restart is never shown twice. The browser's EventSource reconnects by
// itself and sends Last-Event-ID.
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
  const MAX_ROWS = 500;          // rows kept in the table; counters keep counting
  const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'];

  const TOKEN_KEY = 'vigil.token';
  const pageParams = new URLSearchParams(window.location.search);
  let token = null;
  try { token = sessionStorage.getItem(TOKEN_KEY); } catch (e) { /* storage disabled: ask each time */ }
  if (pageParams.get('access_token')) {
    token = pageParams.get('access_token');
    saveToken(token);
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

  const state = {
    seen: new Set(),             // alert ids already counted
    byId: new Map(),             // alert id -> alert object (for the detail panel)
    perRule: new Map(),          // rule -> count
    total: 0,
    severe: 0,
    lastTs: null,
    selected: null,
    lastEventId: null,           // newest SSE id received, to resume after a give-up
  };

  const $ = (id) => document.getElementById(id);
  const tbody = document.querySelector('#alerts tbody');
  const rulesBody = document.querySelector('#rule-counts tbody');

  function withToken(path, extra) {
    const q = new URLSearchParams(extra || {});
    if (token) q.set('access_token', token);
    const s = q.toString();
    return s ? path + '?' + s : path;
  }

  function authHeaders() {
    return token ? { Authorization: 'Bearer ' + token } : {};
  }

  // ---- formatting -------------------------------------------------------

  // Alert `ts` is RFC 3339 text per the contract; accept ms numbers too.
  function toDate(ts) {
    if (typeof ts === 'number') return new Date(ts);
    if (typeof ts === 'string') {
      const d = new Date(ts);
      if (!isNaN(d)) return d;
    }
    return null;
  }

  const pad = (n, w) => String(n).padStart(w || 2, '0');

  function fmtTime(d) {
    if (!d) return '—';
    const now = new Date();
    const hms = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    const sameDay = d.toDateString() === now.toDateString();
    return sameDay ? hms : d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hms;
  }

  function severityOf(a) {
    return SEVERITIES.includes(a.severity) ? a.severity : 'info';
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // ---- connection status -------------------------------------------------

  function setStatus(s, label) {
    const c = $('conn-status');
    c.dataset.state = s;
    c.querySelector('.label').textContent = label || s;
  }

  // ---- counters ----------------------------------------------------------

  function bumpRule(rule) {
    const n = (state.perRule.get(rule) || 0) + 1;
    state.perRule.set(rule, n);
    let row = rulesBody.querySelector('tr[data-rule="' + CSS.escape(rule) + '"]');
    if (!row) {
      row = el('tr');
      row.dataset.rule = rule;
      const name = el('td', 'rule-name');
      name.appendChild(el('div', 'rule-label', rule));
      name.appendChild(el('div', 'bar'));
      name.title = rule;
      row.appendChild(name);
      row.appendChild(el('td', 'num count', 0));
      rulesBody.appendChild(row);
      addRuleOption(rule);
    }
    row.querySelector('.count').textContent = String(n);
    // keep the busiest rules on top
    const rows = Array.from(rulesBody.children);
    rows.sort((a, b) => (state.perRule.get(b.dataset.rule) || 0) - (state.perRule.get(a.dataset.rule) || 0) ||
      a.dataset.rule.localeCompare(b.dataset.rule));
    const max = Math.max(1, ...state.perRule.values());
    rows.forEach((r) => {
      rulesBody.appendChild(r);
      r.querySelector('.bar').style.width = (100 * (state.perRule.get(r.dataset.rule) || 0) / max).toFixed(1) + '%';
    });
    $('rules-empty').classList.add('gone');
    $('rules-count').textContent = String(state.perRule.size);
  }

  function addRuleOption(rule) {
    const sel = $('filter-rule');
    const opts = Array.from(sel.options).slice(1).map((o) => o.value);
    if (opts.includes(rule)) return;
    opts.push(rule);
    opts.sort();
    const o = el('option', null, rule);
    o.value = rule;
    const idx = opts.indexOf(rule);
    sel.insertBefore(o, sel.options[idx + 1] || null);
  }

  function updateTiles() {
    $('total-count').textContent = String(state.total);
    $('severe-count').textContent = String(state.severe);
    $('last-alert').textContent = state.lastTs ? fmtTime(state.lastTs) : '—';
    $('empty').classList.toggle('gone', state.total > 0);
  }

  // ---- rows --------------------------------------------------------------

  function buildRow(a) {
    const tr = el('tr', 'alert-row');
    tr.dataset.alertId = a.id;
    tr.dataset.rule = a.rule || '';
    tr.dataset.severity = severityOf(a);
    tr.dataset.key = a.key == null ? '' : String(a.key);
    const d = toDate(a.ts);
    const time = el('td', 'time', fmtTime(d));
    if (d) time.title = d.toISOString();
    tr.appendChild(time);
    const sevTd = el('td', 'sev-cell');
    sevTd.appendChild(el('span', 'sev sev-' + severityOf(a), severityOf(a)));
    tr.appendChild(sevTd);
    const rule = el('td', 'rule', a.rule || '');
    if (a.mode === 'shadow') rule.appendChild(el('span', 'shadow-tag', 'shadow'));
    tr.appendChild(rule);
    const key = el('td', 'key');
    key.appendChild(el('span', 'field', (a.key_field || 'key') + '='));
    key.appendChild(document.createTextNode(a.key == null ? '' : String(a.key)));
    tr.appendChild(key);
    tr.appendChild(el('td', 'event', a.event || ''));
    applyFilter(tr);
    return tr;
  }

  // Count an alert once; put its row on top (live) or at the bottom (the
  // initial list, which arrives newest first).
  function addAlert(a, where) {
    if (!a || typeof a !== 'object' || typeof a.id !== 'string' || state.seen.has(a.id)) return false;
    state.seen.add(a.id);
    state.byId.set(a.id, a);
    state.total += 1;
    const sev = severityOf(a);
    if (sev === 'high' || sev === 'critical') state.severe += 1;
    const d = toDate(a.ts);
    if (d && (!state.lastTs || d > state.lastTs)) state.lastTs = d;
    bumpRule(a.rule || '(unnamed)');

    const tr = buildRow(a);
    if (where === 'top') {
      tr.classList.add('fresh');
      tbody.insertBefore(tr, tbody.firstChild);
    } else {
      tbody.appendChild(tr);
    }
    while (tbody.children.length > MAX_ROWS) {
      const last = tbody.lastElementChild;
      if (last.dataset.alertId !== state.selected) state.byId.delete(last.dataset.alertId);
      last.remove();
    }
    updateTiles();
    return true;
  }

  // ---- filters -----------------------------------------------------------

  function applyFilter(tr) {
    const rule = $('filter-rule').value;
    const sev = $('filter-severity').value;
    const key = $('filter-key').value.trim().toLowerCase();
    const hide = (rule && tr.dataset.rule !== rule) ||
      (sev && tr.dataset.severity !== sev) ||
      (key && !tr.dataset.key.toLowerCase().includes(key));
    tr.classList.toggle('hidden', Boolean(hide));
  }

  function applyFilters() {
    Array.from(tbody.children).forEach(applyFilter);
  }

  ['filter-rule', 'filter-severity', 'filter-key'].forEach((id) => {
    $(id).addEventListener('input', applyFilters);
    $(id).addEventListener('change', applyFilters);
  });

  // ---- detail panel ------------------------------------------------------

  function showDetail(id) {
    const a = state.byId.get(id);
    if (!a) return;
    state.selected = id;
    tbody.querySelectorAll('tr.selected').forEach((r) => r.classList.remove('selected'));
    const row = tbody.querySelector('tr[data-alert-id="' + CSS.escape(id) + '"]');
    if (row) row.classList.add('selected');

    $('detail-title').textContent = a.rule || 'Alert';
    const dl = $('detail-fields');
    dl.replaceChildren();
    const d = toDate(a.ts);
    const fields = [
      ['id', a.id],
      ['rule', a.rule + (a.rule_version != null ? ' (v' + a.rule_version + ')' : '')],
      ['severity', severityOf(a)],
      ['mode', a.mode],
      ['key', (a.key_field || 'key') + '=' + (a.key == null ? '' : a.key)],
      ['time', d ? d.toISOString() : a.ts],
      ['detected at', a.detected_at],
      ['event', a.event],
    ];
    if (a.window_start != null) fields.push(['window', a.window_start + ' → ' + a.window_end]);
    fields.forEach(([k, v]) => {
      if (v === undefined || v === null || v === '') return;
      dl.appendChild(el('dt', null, k));
      const dd = el('dd', null, v);
      if (k === 'severity') {
        dd.textContent = '';
        dd.appendChild(el('span', 'sev sev-' + v, v));
      }
      dl.appendChild(dd);
    });

    const ol = $('detail-events');
    ol.replaceChildren();
    const events = Array.isArray(a.events) ? a.events : [];
    events.forEach((e) => ol.appendChild(el('li', e === a.event ? 'completing' : null, e)));
    if (a.events_truncated) ol.appendChild(el('li', null, '… (truncated)'));
    if (!events.length) ol.appendChild(el('li', null, '—'));

    $('detail-evidence').textContent = JSON.stringify(a.evidence === undefined ? [] : a.evidence, null, 2);
    $('detail-details').textContent = JSON.stringify(a.details === undefined ? {} : a.details, null, 2);
    const panel = $('detail');
    panel.classList.add('open');
    panel.setAttribute('aria-hidden', 'false');
  }

  function hideDetail() {
    state.selected = null;
    tbody.querySelectorAll('tr.selected').forEach((r) => r.classList.remove('selected'));
    const panel = $('detail');
    panel.classList.remove('open');
    panel.setAttribute('aria-hidden', 'true');
  }

  tbody.addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr.alert-row');
    if (tr) showDetail(tr.dataset.alertId);
  });
  $('detail-close').addEventListener('click', hideDetail);
  document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') hideDetail(); });

  // ---- data --------------------------------------------------------------

  // {status, lastSeq}: status 401/403 means the token is missing or not enough
  async function loadRecent() {
    try {
      const r = await fetch('/v1/alerts?limit=200', { headers: authHeaders() });
      if (r.status === 401 || r.status === 403) return { status: r.status, lastSeq: null };
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const body = await r.json();
      (body.alerts || []).forEach((a) => addAlert(a, 'bottom'));
      return { status: r.status, lastSeq: typeof body.last_seq === 'number' ? body.last_seq : null };
    } catch (e) {
      console.warn('vigil: could not load recent alerts:', e);
      return { status: 0, lastSeq: null };
    }
  }

  // Show the token dialog; resolves once a token was entered (and saved).
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
        token = t;
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
    $('token-forget').hidden = !token;
  }

  $('token-forget').addEventListener('click', () => {
    token = null;
    saveToken(null);
    window.location.reload();
  });
  // the dialog cannot be dismissed without a token: nothing to show without one
  $('token-dialog').addEventListener('cancel', (ev) => ev.preventDefault());

  async function start() {
    updateForget();
    for (;;) {
      const r = await loadRecent();
      if (r.status === 401) {
        await askToken(token ? 'That token was not accepted. Enter a viewer token.' : '');
        continue;
      }
      if (r.status === 403) {
        await askToken('That token may not read alerts: it needs the viewer, analyst or admin role.');
        continue;
      }
      connect(r.lastSeq);
      return;
    }
  }

  function connect(lastSeq) {
    const extra = {};
    if (lastSeq !== null && lastSeq !== undefined) extra.last_event_id = String(lastSeq);
    const es = new EventSource(withToken('/v1/alerts/stream', extra));
    es.onopen = () => setStatus('live', 'live');
    es.addEventListener('alert', (ev) => {
      if (ev.lastEventId) state.lastEventId = ev.lastEventId;
      let a;
      try { a = JSON.parse(ev.data); } catch (e) { console.warn('vigil: bad alert event', e); return; }
      addAlert(a, 'top');
    });
    es.onerror = () => {
      // EventSource retries by itself (CONNECTING); CLOSED means it gave up
      // (e.g. a non-200 answer), so try again ourselves after a pause.
      if (es.readyState === EventSource.CLOSED) {
        setStatus('offline', 'offline');
        es.close();
        setTimeout(() => connect(state.lastEventId !== null ? state.lastEventId : lastSeq), 5000);
      } else {
        setStatus('reconnecting', 'reconnecting');
      }
    };
    window.vigilStream = es;   // for debugging from the console
  }

  setInterval(updateTiles, 30000);   // keeps "today" vs dated times honest
  setStatus('connecting', 'connecting');
  start();
})();
