// Checks docs/asyncapi.yaml with tools nobody at roomd wrote:
//  1. the official AsyncAPI parser (@asyncapi/parser) must report no error;
//  2. ajv in strict mode (with ajv-formats) must compile the payload schema
//     of every message, and every example must validate against it.
//  3. with a cases file (JSON: [{name, message, payload, valid}]), every
//     payload is accepted or refused by its message's schema as it says: the
//     rules the schemas encode, and those only the prose carries, checked by
//     ajv as by the Go validator (go test ./link writes the file).
// Usage: node check-asyncapi.mjs path/to/asyncapi.yaml [cases.json]
// Prints one line per finding and "asyncapi: N passed, 0 failed" at the end;
// exits 1 on any failure.
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { parse as parseYAML } from 'yaml';

const path = process.argv[2] ?? '../asyncapi.yaml';
const text = readFileSync(path, 'utf8');
let passed = 0;
const failures = [];
const fail = (what) => { failures.push(what); console.log(`FAIL ${what}`); };
const pass = (what) => { passed++; console.log(`ok   ${what}`); };

// 1. The official parser. Severity 0 is an error, 1 a warning.
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text, { source: path });
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) {
  console.log(`     parser ${['error', 'warning', 'info', 'hint'][d.severity]}: ${d.message} at ${d.path.join('.')}`);
}
if (document === undefined || errors.length > 0) {
  fail(`@asyncapi/parser: ${errors.length} errors`);
} else {
  pass(`@asyncapi/parser: AsyncAPI ${document.version()}, ${document.channels().length} channels, ${document.messages().length} messages, no error`);
}

// 2. ajv, strict. Each schema of components.schemas is added under its own
// id; the document's references (#/components/schemas/X) are rewritten to
// those ids, which is what they mean.
const doc = parseYAML(text, { uniqueKeys: true, strict: true });
const rewrite = (v) => {
  if (Array.isArray(v)) return v.map(rewrite);
  if (v !== null && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] = k === '$ref' && typeof x === 'string' && x.startsWith('#/components/schemas/')
        ? `roomd:${x.slice('#/components/schemas/'.length)}`
        : rewrite(x);
    }
    return out;
  }
  return v;
};
const ajv = new Ajv({ strict: true, allErrors: true });
addFormats(ajv);
for (const [name, schema] of Object.entries(doc.components.schemas)) {
  ajv.addSchema({ $id: `roomd:${name}`, ...rewrite(schema) });
}
const validators = {};
for (const [name, message] of Object.entries(doc.components.messages)) {
  let validate;
  try {
    validate = ajv.compile(rewrite(message.payload));
  } catch (e) {
    fail(`ajv strict: message ${name} does not compile: ${e.message}`);
    continue;
  }
  validators[name] = validate;
  pass(`ajv strict: message ${name} compiles`);
  for (const ex of message.examples ?? []) {
    if (validate(ex.payload)) {
      pass(`ajv: ${name} example ${ex.name} validates`);
    } else {
      fail(`ajv: ${name} example ${ex.name}: ${ajv.errorsText(validate.errors)}`);
    }
  }
}

// 3. The rules' cases.
if (process.argv[3] !== undefined) {
  const cases = JSON.parse(readFileSync(process.argv[3], 'utf8'));
  for (const c of cases) {
    const validate = validators[c.message];
    if (validate === undefined) {
      fail(`rule ${c.name}: no message ${c.message}`);
      continue;
    }
    const ok = validate(c.payload);
    if (ok === c.valid) {
      pass(`rule ${c.name}: ${ok ? 'accepted' : 'refused'}`);
    } else {
      fail(`rule ${c.name}: ajv ${ok ? 'accepts' : 'refuses'} ${JSON.stringify(c.payload)}${ok ? '' : ': ' + ajv.errorsText(validate.errors)}`);
    }
  }
}

console.log(`asyncapi: ${passed} passed, ${failures.length} failed`);
process.exit(failures.length === 0 ? 0 : 1);
