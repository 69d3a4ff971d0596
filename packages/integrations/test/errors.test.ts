/** Every IntegrationError code is documented in docs/errors.md, and the docs list no code that does not exist. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { INTEGRATION_ERROR_CODES, IntegrationError } from '../src/index.js';
import { REPO } from './helpers.js';

void test('docs/errors.md §Integrations lists exactly the KW_INT_ codes', () => {
  const doc = readFileSync(join(REPO, 'docs/errors.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Integrations'));
  const end = section.indexOf('\n## ', 4);
  const listed = [...(end > 0 ? section.slice(0, end) : section).matchAll(/^\| `(KW_INT_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual([...listed].sort(), Object.keys(INTEGRATION_ERROR_CODES).sort());
});

void test('an IntegrationError keeps its code and the wrapped code', () => {
  const inner = new IntegrationError('KW_INT_REPLAY');
  const e = new IntegrationError('KW_INT_OPEN_FAILED', 'x', { cause: inner });
  assert.equal(e.code, 'KW_INT_OPEN_FAILED');
  assert.equal(e.causeCode, 'KW_INT_REPLAY');
  assert.equal(inner.message, INTEGRATION_ERROR_CODES.KW_INT_REPLAY);
});
