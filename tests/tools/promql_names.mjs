// promql_names.mjs — every metric a PromQL expression of the Grafana
// dashboard (dashboards/grafana/vigil.json) or of the alert rules
// (deploy/prometheus/alerts.yml) names must be one vigil's /metrics exports.
//
// Usage: node promql_names.mjs METRICS_TEXT GRAFANA_JSON ALERTS_YML
// Prints each expression's metric names; exits 1 naming every metric that
// /metrics lacks, or an expression in which no metric was found (a parsing
// slip must not pass as "nothing to check").
//
// A metric name is an identifier of the expression once string literals,
// label matchers {…}, range/offset selectors […], grouping clauses
// by/without/on/ignoring (…), Grafana variables ($…), numbers and durations
// are removed, that is not a function (followed by "("), a keyword or an
// aggregation operator.
import { readFileSync } from 'node:fs';

const [metricsPath, grafanaPath, alertsPath] = process.argv.slice(2);
if (!alertsPath) {
  console.error('usage: node promql_names.mjs METRICS_TEXT GRAFANA_JSON ALERTS_YML');
  process.exit(2);
}

const exported = new Set();
for (const line of readFileSync(metricsPath, 'utf8').split('\n')) {
  if (!line || line.startsWith('#')) continue;
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
  if (m) exported.add(m[1]);
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right',
  'bool', 'offset', 'inf', 'nan', 'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk',
  'quantile', 'count_values', 'group', 'le']);

function metricNames(expr) {
  let e = expr;
  e = e.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ');       // strings
  e = e.replace(/\{[^}]*\}/g, ' ');                                           // label matchers
  e = e.replace(/\[[^\]]*\]/g, ' ');                                          // ranges, subqueries
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');   // grouping labels
  e = e.replace(/\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?/g, ' ');                      // Grafana variables
  const names = new Set();
  const re = /[a-zA-Z_:][a-zA-Z0-9_:]*/g;
  let m;
  while ((m = re.exec(e))) {
    const id = m[0];
    const before = e[m.index - 1];
    if (before && /[0-9.]/.test(before)) continue;                          // 1e9, 5m
    const rest = e.slice(m.index + id.length);
    if (/^\s*\(/.test(rest)) continue;                                        // a function or aggregation
    if (KEYWORDS.has(id.toLowerCase())) continue;
    names.add(id);
  }
  return [...names];
}

const exprs = [];
const dash = JSON.parse(readFileSync(grafanaPath, 'utf8'));
(function walk(panels) {
  for (const p of panels || []) {
    for (const t of p.targets || []) if (t.expr) exprs.push({ where: `grafana "${p.title}"`, expr: t.expr });
    walk(p.panels);
  }
})(dash.panels);
for (const v of (dash.templating && dash.templating.list) || [])
  if (v.type === 'query' && typeof v.query === 'string') {
    const m = /label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(v.query);
    if (m) exprs.push({ where: `grafana variable ${v.name}`, expr: m[1] });
  }
const yml = readFileSync(alertsPath, 'utf8').split('\n');
let alert = '?';
for (const line of yml) {
  const a = /^\s*-?\s*alert:\s*(\S+)/.exec(line);
  if (a) alert = a[1];
  const x = /^\s*expr:\s*(.+)$/.exec(line);
  if (x) exprs.push({ where: `alert ${alert}`, expr: x[1].trim().replace(/^(['"])(.*)\1$/, '$2') });
}

let bad = 0;
for (const { where, expr } of exprs) {
  const names = metricNames(expr);
  const missing = names.filter((n) => !exported.has(n));
  console.log(`${missing.length || !names.length ? 'FAIL' : 'ok  '} ${where}: ${names.join(', ') || '(no metric found)'}`);
  if (!names.length) bad++;
  for (const n of missing) {
    console.log(`     ${n} is not in /metrics`);
    bad++;
  }
}
console.log(`${exprs.length} expressions, ${bad} problems`);
process.exit(exprs.length && !bad ? 0 : 1);
