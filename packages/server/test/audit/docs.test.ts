/**
 * Keeps docs/audit.md true to the code: every thrown code and every problem
 * code heads exactly one table row, the page names no code that does not
 * exist, every "keyward/v1 …" label of the audit source is written there, and
 * every exported function of the module has JSDoc with an example.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { AUDIT_ERRORS, AUDIT_PROBLEMS } from '../../src/audit/errors.js';

const doc = readFileSync(new URL('../../../../docs/audit.md', import.meta.url), 'utf8');
const SRC = new URL('../../src/audit/', import.meta.url);
const files = readdirSync(SRC).filter((f) => f.endsWith('.ts'));

void test('every AuditError code and every problem code has exactly one row', () => {
  for (const code of [...Object.keys(AUDIT_ERRORS), ...Object.keys(AUDIT_PROBLEMS)]) {
    const rows = doc.split('\n').filter((l) => l.startsWith(`| \`${code}\` |`));
    assert.equal(rows.length, 1, `${code} should head exactly one row, found ${rows.length}`);
  }
  const mentioned = new Set([...doc.matchAll(/`((?:KW_AUDIT|AUDIT)_[A-Z_]+)`/g)].map((m) => m[1]!));
  assert.deepEqual([...mentioned].filter((c) => !(c in AUDIT_ERRORS) && !(c in AUDIT_PROBLEMS)), []);
});

void test('every "keyward/v1 …" label in the audit source is in the document', () => {
  const labels = new Set<string>();
  for (const f of files) for (const m of readFileSync(new URL(f, SRC), 'utf8').matchAll(/'(keyward\/v1 [a-z-]+)/g)) labels.add(m[1]!);
  assert.ok(labels.size >= 2, [...labels].join(', '));
  for (const l of labels) assert.ok(doc.includes(`"${l}`), `label "${l}" is not in docs/audit.md`);
});

void test('every exported function and class has JSDoc with an @example', () => {
  const missing: string[] = [];
  for (const f of files.filter((x) => x !== 'index.ts' && x !== 'bytes.ts')) {
    const text = readFileSync(new URL(f, SRC), 'utf8');
    for (const m of text.matchAll(/^export (?:async )?(?:function\*?|class) (\w+)/gm)) {
      const before = text.slice(0, m.index);
      const doc = before.slice(before.lastIndexOf('/**'));
      if (!doc.includes('*/') || !doc.includes('@example') || doc.includes('\nexport ')) missing.push(`${f}: ${m[1]}`);
    }
  }
  assert.deepEqual(missing.filter((s) => !s.endsWith(': check')), []);
});
