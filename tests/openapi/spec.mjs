// spec.mjs — what validate.mjs and contract.mjs share: the spec loaded from
// docs/openapi.yaml, its operations listed, and an ajv (JSON Schema 2020-12,
// the dialect of OpenAPI 3.1) that knows the spec's component schemas, so a
// response schema with `$ref: '#/components/schemas/X'` compiles on its own.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SPEC_FILE = process.env.VIGIL_OPENAPI || join(ROOT, 'docs', 'openapi.yaml');
export const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
export const ROLES = ['none', 'ingest', 'viewer', 'analyst', 'admin', 'metrics'];

export function loadSpec(file = SPEC_FILE) {
  return YAML.parse(readFileSync(file, 'utf8'));
}

// Every operation: { key: 'GET /v1/rules/{name}', method, path, op, params }
// (path-level parameters merged into the operation's).
export function operations(spec) {
  const out = [];
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const m of METHODS) {
      if (!item[m]) continue;
      const op = item[m];
      const params = [...(item.parameters || []), ...(op.parameters || [])].map((p) => deref(spec, p));
      out.push({ key: `${m.toUpperCase()} ${path}`, method: m.toUpperCase(), path, op, params });
    }
  }
  return out;
}

// A local $ref ('#/a/b') followed until it is not one.
export function deref(spec, o) {
  while (o && typeof o === 'object' && typeof o.$ref === 'string' && o.$ref.startsWith('#/')) {
    o = o.$ref.slice(2).split('/').reduce((x, k) => (x ? x[k.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), spec);
  }
  return o;
}

// '#/components/schemas/X' → 'vigil#/$defs/X' everywhere in a copy of o.
function rebase(o) {
  if (Array.isArray(o)) return o.map(rebase);
  if (!o || typeof o !== 'object') return o;
  const r = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/'))
      r[k] = 'vigil#/$defs/' + v.slice('#/components/schemas/'.length);
    else r[k] = rebase(v);
  }
  return r;
}

// An ajv holding the component schemas as 'vigil#/$defs/…'; compile(schema)
// compiles any schema of the spec (with its refs). strict: unknown keywords
// are errors, except OpenAPI's own (example, x-…, discriminator, xml, externalDocs).
export function schemaCompiler(spec) {
  const ajv = new Ajv2020({ strict: true, allErrors: true, strictTypes: false, strictTuples: false, strictRequired: false });
  addFormats(ajv);
  for (const k of ['example', 'discriminator', 'xml', 'externalDocs', 'x-vigil-status']) ajv.addKeyword(k);
  ajv.addSchema({ $id: 'vigil', $defs: rebase(spec.components?.schemas || {}) });
  const cache = new Map();
  return {
    ajv,
    compile(schema) {
      const key = JSON.stringify(schema);
      if (!cache.has(key)) cache.set(key, ajv.compile(rebase(schema)));
      return cache.get(key);
    },
  };
}
