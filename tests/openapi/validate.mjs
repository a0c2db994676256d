// validate.mjs — docs/openapi.yaml is a valid OpenAPI 3.1 document
// (@seriousme/openapi-schema-validator, against the official 3.1 schemas),
// every schema in it compiles as JSON Schema 2020-12 (ajv, strict), every
// example fits its schema, and vigil's own conventions hold: every operation
// has an operationId and an x-vigil-role from the known set; public ones
// (none) say `security: []`, the others list 401 and 403; x-vigil-status is
// only `planned`. Run by test_spec.sh. Prints "N passed, M failed".
import { Validator } from '@seriousme/openapi-schema-validator';
import { SPEC_FILE, ROLES, loadSpec, operations, deref, schemaCompiler } from './spec.mjs';

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

const validator = new Validator();
const res = await validator.validate(SPEC_FILE);
check(`${SPEC_FILE} is valid OpenAPI ${validator.version || '?'} (@seriousme/openapi-schema-validator)`,
  res.valid ? (validator.version === '3.1' ? [] : [`version ${validator.version}, expected 3.1`])
            : (Array.isArray(res.errors) ? res.errors : [res.errors]).map((e) => JSON.stringify(e)));
try {
  validator.resolveRefs();
  check('every $ref resolves', []);
} catch (e) {
  check('every $ref resolves', [String(e.message || e)]);
}

const spec = loadSpec();
const ops = operations(spec);
let sc;
try {
  sc = schemaCompiler(spec);
  for (const name of Object.keys(spec.components?.schemas || {})) sc.compile({ $ref: `#/components/schemas/${name}` });
  check('the component schemas compile (JSON Schema 2020-12, strict)', []);
} catch (e) {
  check('the component schemas compile (JSON Schema 2020-12, strict)', [String(e.message || e)]);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(1);
}

// every schema and example in operations: parameters, bodies, responses
const schemaProblems = [];
const exampleProblems = [];
function tryExample(where, schema, value) {
  try {
    const v = sc.compile(schema);
    if (value !== undefined && !v(value)) exampleProblems.push(`${where}: ${sc.ajv.errorsText(v.errors)}`);
  } catch (e) {
    schemaProblems.push(`${where}: ${e.message}`);
  }
}
for (const o of ops) {
  for (const p of o.params) if (p.schema) tryExample(`${o.key} parameter ${p.name}`, p.schema, p.example);
  const body = deref(spec, o.op.requestBody);
  for (const [type, media] of Object.entries(body?.content || {}))
    if (media.schema) tryExample(`${o.key} body ${type}`, media.schema, media.example);
  for (const [status, r0] of Object.entries(o.op.responses || {})) {
    const r = deref(spec, r0);
    for (const [type, media] of Object.entries(r?.content || {}))
      if (media.schema) tryExample(`${o.key} ${status} ${type}`, media.schema, media.example);
  }
}
check('every parameter, body and response schema compiles', schemaProblems);
check('every example fits its schema', exampleProblems);

const conv = [];
const ids = new Set();
for (const o of ops) {
  const role = o.op['x-vigil-role'];
  if (!o.op.operationId) conv.push(`${o.key}: no operationId`);
  else if (ids.has(o.op.operationId)) conv.push(`${o.key}: operationId ${o.op.operationId} used twice`);
  ids.add(o.op.operationId);
  if (!ROLES.includes(role)) conv.push(`${o.key}: x-vigil-role is ${JSON.stringify(role)}, expected one of ${ROLES.join('|')}`);
  const st = o.op['x-vigil-status'];
  if (st !== undefined && st !== 'planned') conv.push(`${o.key}: x-vigil-status ${JSON.stringify(st)} (only "planned")`);
  const codes = Object.keys(o.op.responses || {});
  if (role === 'none') {
    if (!Array.isArray(o.op.security) || o.op.security.length !== 0) conv.push(`${o.key}: public (none) but security is not []`);
  } else {
    for (const c of ['401', '403']) if (!codes.includes(c)) conv.push(`${o.key}: role ${role} but no ${c} response`);
    const r401 = deref(spec, o.op.responses['401']);
    if (r401 && !r401.headers?.['WWW-Authenticate']) conv.push(`${o.key}: its 401 does not name WWW-Authenticate`);
  }
  for (const c of codes) {
    const r = deref(spec, o.op.responses[c]);
    if (/^[45]/.test(c) && r.content && !r.content['application/problem+json'] && o.key !== 'GET /readyz')
      conv.push(`${o.key}: ${c} is not application/problem+json`);
    if ((c === '429' || (c === '503' && o.path !== '/readyz')) && !r.headers?.['Retry-After'])
      conv.push(`${o.key}: ${c} without a Retry-After header`);
  }
}
check('vigil conventions: operationId, x-vigil-role, security, 401/403, problem+json (but /readyz\'s 503), Retry-After', conv);

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
