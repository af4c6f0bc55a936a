// Validates an AsyncAPI document with the reference parser (@asyncapi/parser, which runs the
// spec's JSON Schema and its Spectral rules); exits 1 on any error-severity diagnostic.
// Usage: node asyncapi.mjs <file>
import { resolve } from 'node:path';
import { Parser, fromFile } from '@asyncapi/parser';

const file = resolve(process.argv[2] ?? '');
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, file).parse({
  source: file,
  validateOptions: { allowedSeverity: { warning: true, info: true, hint: true } },
});
const severity = ['error', 'warning', 'info', 'hint'];
for (const d of diagnostics) {
  console.log(`${severity[d.severity]} ${d.code} at /${d.path.join('/')}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (errors.length > 0 || !document) {
  console.log(`${file}: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`${file}: valid AsyncAPI ${document.version()} (${diagnostics.length} non-error diagnostic(s))`);
