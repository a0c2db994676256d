// panels.js — the dashboard's shared helpers (window.Vigil: the API call with
// the tab's token, element building, time formatting, readable aggregate
// names) and its server-computed panels: the health tiles (GET /v1/stats),
// the alerts-per-rule chart (GET /v1/alerts/timeline, drawn by the vendored
// uPlot: vendor/uPlot.iife.min.js, MIT, see vendor/README.txt) and the rules
// table with the analyst's actions (GET /v1/rules; POST …/mode, …/promote,
// …/rollback, GET …/compare). It exists apart from app.js (boot, token, the
// alert list and the live feed) and detail.js (an alert, triage, a key) so
// each file holds one part of the page.
//
// Everything from the server goes into the page with textContent (never
// innerHTML): names, keys and sources are data, not markup.
'use strict';

(function () {
  const V = window.Vigil = window.Vigil || {};
  const $ = (id) => document.getElementById(id);
  V.$ = $;

  // ---- helpers ------------------------------------------------------------

  V.token = null;
  V.authHeaders = () => (V.token ? { Authorization: 'Bearer ' + V.token } : {});

  // fetch a JSON API: {status, ok, body} (body null when not JSON); never throws
  V.api = async function (method, path, body) {
    const opts = { method, headers: Object.assign({}, V.authHeaders()) };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    try {
      const r = await fetch(path, opts);
      let b = null;
      try { b = await r.json(); } catch (e) { /* no body */ }
      return { status: r.status, ok: r.ok, body: b };
    } catch (e) {
      return { status: 0, ok: false, body: null };
    }
  };

  // the message for a refused or failed call (problem+json detail when there is one)
  V.refusal = function (r, what) {
    if (r.status === 403) return what + ' refused: this token may not do that (it needs the analyst role).';
    if (r.status === 401) return what + ' refused: the token was not accepted.';
    const d = r.body && (r.body.detail || r.body.title);
    return what + ' failed' + (r.status ? ' (' + r.status + ')' : '') + (d ? ': ' + d : '');
  };

  V.el = function (tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };

  V.toDate = function (ts) {
    if (typeof ts === 'number') return new Date(ts);
    if (typeof ts === 'string') {
      const d = new Date(ts);
      if (!isNaN(d)) return d;
    }
    return null;
  };

  const pad = (n) => String(n).padStart(2, '0');
  V.fmtTime = function (d) {
    if (!d) return '—';
    const hms = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    if (d.toDateString() === new Date().toDateString()) return hms;
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hms;
  };

  // An aggregate's name in alert details and explain, for people: alert
  // details write "distinct(customer_id) where eq(type, 'report')", explain
  // writes the rule language, distinct("customer_id", eq(type, "report"));
  // both read "distinct customer_id where type = report".
  const OPS = { eq: '=', ne: '≠', gt: '>', ge: '≥', lt: '<', le: '≤' };
  function readableCond(c) {
    let s = c;
    for (let i = 0; i < 4; i++) {
      s = s.replace(/\b(eq|ne|gt|ge|lt|le)\(([^,()]+), ([^()]*)\)/g, (_, op, a, b) => a + ' ' + OPS[op] + ' ' + b);
      s = s.replace(/\ball_of\{([^{}]*)\}/g, (_, inner) => inner.split(', ').join(' and '));
      s = s.replace(/\bany_of\{([^{}]*)\}/g, (_, inner) => '(' + inner.split(', ').join(' or ') + ')');
    }
    return s;
  }
  function splitTop(s) {   // "a, b(c, d)" -> ["a", "b(c, d)"] at the first top-level comma
    let depth = 0;
    for (let i = 0; i < s.length; i++) {
      const ch = s[i];
      if (ch === '(' || ch === '{') depth++;
      else if (ch === ')' || ch === '}') depth--;
      else if (ch === ',' && depth === 0) return [s.slice(0, i), s.slice(i + 1).trim()];
    }
    return [s, ''];
  }
  V.readableAgg = function (label) {
    const text = String(label);
    const p = /^prior\((.*)\)$/.exec(text);
    if (p) return 'prior ' + V.readableAgg(p[1]);
    const m = /^(count|sum|avg|min|max|distinct|is_new)\((.*?)\)(?: where (.*))?$/.exec(text) ||
      /^(count|sum|avg|min|max|distinct|is_new)\((.*)\)$/.exec(text);
    if (!m) return readableCond(text).replace(/['"]/g, '');
    let field = '', cond = m[3] || '';
    if (m[1] === 'count' && !m[3]) cond = m[2];
    else if (!m[3]) [field, cond] = splitTop(m[2]);
    else field = m[2];
    let out = m[1] + (field ? ' ' + field : '');
    if (cond) out += ' where ' + readableCond(cond);
    return out.replace(/['"]/g, '');
  };

  // ---- health tiles (GET /v1/stats) ---------------------------------------

  const num = (x, digits) => (typeof x === 'number' ? (digits === undefined ? String(x) : x.toFixed(digits)) : '—');
  const secs = (x) => (typeof x !== 'number' ? '—' : x < 1 ? (x * 1000).toFixed(1) + ' ms' : x.toFixed(2) + ' s');
  const span = (x) => (typeof x !== 'number' ? '—' : Math.abs(x) < 120 ? x.toFixed(1) + ' s'
    : Math.abs(x) < 7200 ? (x / 60).toFixed(1) + ' min' : Math.abs(x) < 172800 ? (x / 3600).toFixed(1) + ' h'
    : (x / 86400).toFixed(1) + ' d');

  function tile(stat, value, sub) {
    const t = document.querySelector('#health [data-stat="' + stat + '"]');
    if (!t) return;
    t.querySelector('.tile-value').textContent = value;
    const s = t.querySelector('.tile-sub');
    if (s) s.textContent = sub || '';
  }

  V.renderStats = function (st) {
    V.lastStats = st;
    const r = st.rates || {}, l = st.alert_latency_seconds || {}, lag = st.lag || {}, wm = st.watermark || {};
    const s = st.state || {}, d = st.status || {}, w = st.webhooks || {}, a = st.alerts || {};
    tile('alerts_total', num(a.total), a.lost ? a.lost + ' lost' : '');
    tile('events_per_second', num(r.events_per_second), num(r.processed_per_second) + ' processed/s');
    tile('latency', secs(l.p50) + ' / ' + secs(l.p99), num(l.alerts) + ' alerts in ' + num(l.window_seconds) + ' s');
    tile('lag', num(lag.queued), lag.jetstream_unacked == null ? 'queued events' : num(lag.jetstream_unacked) + ' unacked (JetStream)');
    tile('watermark', span(wm.behind_wall_clock_seconds),
      num(r.late_per_second) + ' late/s');
    tile('state_keys', num(s.keys), num(s.partial_matches) + ' partial matches · ' + num(s.rules) + ' rules');
    tile('status', (d.store || '—') + ' · ' + (d.nats || '—') + ' · ' + (d.jetstream || '—'), 'intake ' + (d.intake || '—'));
    tile('webhooks', num(w.backlog) + ' · ' + num(w.dead_letters), num(w.delivered) + ' delivered · ' + num(w.endpoints) + ' endpoints');
    const bad = (d.store === 'down' || d.nats === 'down' || d.jetstream === 'down');
    document.querySelector('#health [data-stat="status"]').classList.toggle('bad', bad);
  };

  V.loadStats = async function () {
    const r = await V.api('GET', '/v1/stats');
    if (r.ok && r.body) V.renderStats(r.body);
    return r;
  };

  // ---- chart (GET /v1/alerts/timeline, uPlot) -------------------------------

  const PALETTE = ['#58a6ff', '#f0883e', '#3fb950', '#d29922', '#f85149', '#bc8cff', '#39c5cf', '#e3b341', '#ff7b72', '#8b949e'];
  let plot = null, plotRules = '';

  function chartWidth() {
    const c = $('chart');
    return Math.max(240, c.clientWidth || 600);
  }

  V.loadChart = async function () {
    const r = await V.api('GET', '/v1/alerts/timeline?bucket=60&buckets=60');
    if (!r.ok || !r.body) return r;
    const t = r.body;
    const names = Object.keys(t.rules || {}).sort();
    const n = Math.round((t.end - t.start) / t.bucket_ms);
    const xs = [];
    for (let i = 0; i < n; i++) xs.push((t.start + i * t.bucket_ms) / 1000);
    const data = [xs].concat(names.map((k) => t.rules[k]));
    V.chartData = { rules: names, data };
    $('chart-note').textContent = names.length ? '' : 'no alert in the last hour';
    if (typeof uPlot !== 'function') { $('chart-note').textContent = 'chart library missing'; return r; }
    const key = names.join('\u0000');
    if (plot && key === plotRules) {
      plot.setData(data);
    } else {
      if (plot) plot.destroy();
      const series = [{}].concat(names.map((k, i) => ({
        label: k, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: false },
      })));
      plot = new uPlot({
        width: chartWidth(), height: 180, series,
        axes: [{ stroke: '#8b949e', grid: { stroke: '#21262d' } },
          { stroke: '#8b949e', grid: { stroke: '#21262d' }, size: 40 }],
        scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] } },
        legend: { show: true },
      }, data, $('chart'));
      plotRules = key;
    }
    return r;
  };
  window.addEventListener('resize', () => { if (plot) plot.setSize({ width: chartWidth(), height: 180 }); });

  // ---- rules table (GET /v1/rules) ----------------------------------------

  function ruleMsg(text, bad) {
    const m = $('rules-msg');
    m.textContent = text || '';
    m.classList.toggle('bad', Boolean(bad));
  }
  V.ruleMsg = ruleMsg;

  async function act(name, what, method, path, body) {
    ruleMsg(what + ' ' + name + '…');
    const r = await V.api(method, path, body);
    if (!r.ok) { ruleMsg(V.refusal(r, what + ' ' + name), true); return r; }
    ruleMsg(what + ' ' + name + ': done' + (r.body && r.body.version ? ' (version ' + r.body.version + ', ' + r.body.mode + ')' : ''));
    await V.loadRules();
    return r;
  }

  async function compare(name) {
    const r = await V.api('GET', '/v1/rules/' + encodeURIComponent(name) + '/compare');
    if (!r.ok) { ruleMsg(V.refusal(r, 'Compare ' + name), true); return; }
    const c = r.body;
    ruleMsg(name + ': v' + c.active_version + ' only ' + c.active_only + ' · shadow v' + c.shadow_version + ' only ' +
      c.shadow_only + ' · both ' + c.both);
  }

  async function showSource(name) {
    const r = await V.api('GET', '/v1/rules/' + encodeURIComponent(name));
    const box = $('rule-source'), body = $('rule-source-body');
    body.replaceChildren();
    if (!r.ok) { ruleMsg(V.refusal(r, 'Versions of ' + name), true); return; }
    $('rule-source-title').textContent = name + ': versions';
    (r.body.versions || []).slice().reverse().forEach((v) => {
      const sec = V.el('section', 'version');
      sec.dataset.version = v.version;
      sec.appendChild(V.el('h3', null, 'version ' + v.version + ' · ' + v.mode + ' · ' + v.state +
        ' · ' + (v.by || '') + ' · ' + (v.activated_at || '')));
      sec.appendChild(V.el('pre', 'json', v.source || '(no source kept)'));
      body.appendChild(sec);
    });
    box.hidden = false;
  }
  $('rule-source-close').addEventListener('click', () => { $('rule-source').hidden = true; });

  function button(text, cls, fn) {
    const b = V.el('button', cls, text);
    b.type = 'button';
    b.addEventListener('click', fn);
    return b;
  }

  function ruleRow(x) {
    const tr = V.el('tr');
    tr.dataset.rule = x.name;
    tr.dataset.mode = x.mode;
    const name = V.el('td', 'rule-name');
    name.appendChild(button(x.name, 'link name-link', () => showSource(x.name)));
    tr.appendChild(name);
    tr.appendChild(V.el('td', 'version', 'v' + x.version));
    tr.appendChild(V.el('td', 'mode', x.mode));
    tr.appendChild(V.el('td', 'state', x.state));
    tr.appendChild(V.el('td', 'num count', x.alerts == null ? 0 : x.alerts));
    tr.appendChild(V.el('td', 'num per-hour', x.alerts_last_hour == null ? '—' : x.alerts_last_hour));
    const last = V.toDate(x.last_alert_at);
    tr.appendChild(V.el('td', 'last', last ? V.fmtTime(last) : '—'));
    const d = x.dispositions || {};
    const prec = V.el('td', 'num precision', x.precision == null ? '—' : (100 * x.precision).toFixed(0) + '%');
    prec.title = (d.confirmed || 0) + ' confirmed, ' + (d.false_positive || 0) + ' false positive, ' + (d.benign || 0) + ' benign';
    tr.appendChild(prec);
    const acts = V.el('td', 'actions');
    const other = x.mode === 'shadow' ? 'active' : 'shadow';
    acts.appendChild(button('→ ' + other, 'mode-toggle', () =>
      act(x.name, 'Mode', 'POST', '/v1/rules/' + encodeURIComponent(x.name) + '/mode', { mode: other })));
    acts.appendChild(button('compare', 'compare', () => compare(x.name)));
    acts.appendChild(button('promote', 'promote', () =>
      act(x.name, 'Promote', 'POST', '/v1/rules/' + encodeURIComponent(x.name) + '/promote')));
    const sel = V.el('select', 'rollback-version');
    sel.setAttribute('aria-label', 'Version to roll back to');
    (x.versions || []).forEach((v) => {
      if (v.version === x.version) return;
      const o = V.el('option', null, 'v' + v.version);
      o.value = v.version;
      sel.appendChild(o);
    });
    if (sel.options.length) {
      acts.appendChild(sel);
      acts.appendChild(button('roll back', 'rollback', () =>
        act(x.name, 'Roll back', 'POST', '/v1/rules/' + encodeURIComponent(x.name) + '/rollback', { version: Number(sel.value) })));
    }
    tr.appendChild(acts);
    return tr;
  }

  V.loadRules = async function () {
    const r = await V.api('GET', '/v1/rules');
    if (!r.ok || !r.body) return r;
    const rules = r.body.rules || [];
    V.rules = rules;
    const tbody = document.querySelector('#rule-counts tbody');
    tbody.replaceChildren(...rules.map(ruleRow));
    $('rules-empty').classList.toggle('gone', rules.length > 0);
    V.setRuleOptions(rules.map((x) => x.name));
    return r;
  };

  V.setRuleOptions = function (names) {
    const sel = $('filter-rule');
    const cur = sel.value;
    const have = Array.from(sel.options).slice(1).map((o) => o.value);
    if (have.join('\u0000') === names.slice().sort().join('\u0000')) return;
    while (sel.options.length > 1) sel.remove(1);
    names.slice().sort().forEach((n) => {
      const o = V.el('option', null, n);
      o.value = n;
      sel.appendChild(o);
    });
    sel.value = names.includes(cur) ? cur : '';
  };
})();
