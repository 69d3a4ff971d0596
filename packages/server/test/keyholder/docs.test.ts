/**
 * Keeps docs/key-service-crypto.md true to the code: every keyholder error
 * code heads one row of its table (and it names no code that does not exist),
 * and every domain-separation label in the keyholder's source is written there.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERRORS } from '../../src/keyholder/errors.js';

const doc = readFileSync(new URL('../../../../docs/key-service-crypto.md', import.meta.url), 'utf8');
const SRC = new URL('../../src/keyholder/', import.meta.url);

void test('every KeyholderError code has exactly one row in the error table', () => {
  for (const code of Object.keys(ERRORS)) {
    const rows = doc.split('\n').filter((l) => l.startsWith(`| \`${code}\` |`));
    assert.equal(rows.length, 1, `${code} should head exactly one row, found ${rows.length}`);
  }
  const mentioned = new Set([...doc.matchAll(/`(KW_[A-Z0-9_]+)`/g)].map((m) => m[1]!));
  assert.deepEqual([...mentioned].filter((c) => !(c in ERRORS)), []);
});

void test('every "keyward/v1 …" label in the keyholder source is in the document', () => {
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  const labels = new Set<string>();
  for (const f of files) for (const m of readFileSync(new URL(f, SRC), 'utf8').matchAll(/'(keyward\/v1 [a-z-]+ ?)/g)) labels.add(m[1]!);
  assert.ok(labels.size >= 4, `found only ${[...labels].join(', ')}`);
  for (const l of labels) assert.ok(doc.includes(`"${l}`), `label "${l}" is not written in docs/key-service-crypto.md`);
});
