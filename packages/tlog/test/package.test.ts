/**
 * Package-level checks: every error code is documented in docs/tlog.md (and
 * nothing else is), every public value has JSDoc with an example, and src/
 * imports only the audited dependencies (it must run in browsers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import * as tlog from '../src/index.js';
import { TLOG_ERROR_CODES, TlogError, isTlogError } from '../src/index.js';

const SRC = new URL('../src/', import.meta.url);
const DOC = readFileSync(new URL('../../../docs/tlog.md', import.meta.url), 'utf8');
const sources = readdirSync(SRC)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ file: f, text: readFileSync(new URL(f, SRC), 'utf8') }));

void test('every error code is documented in docs/tlog.md, and the doc names no other code', () => {
  for (const code of Object.keys(TLOG_ERROR_CODES)) assert.ok(DOC.includes(`\`${code}\``), `${code} is missing from docs/tlog.md`);
  const inDoc = new Set(DOC.match(/\bTLOG_[A-Z_]+\b/g) ?? []);
  for (const code of inDoc) assert.ok(code in TLOG_ERROR_CODES, `docs/tlog.md names unknown code ${code}`);
});

void test('TlogError carries its code and default message; isTlogError filters by code', () => {
  const e = new TlogError('TLOG_BAD_PROOF');
  assert.equal(e.name, 'TlogError');
  assert.equal(e.message, TLOG_ERROR_CODES.TLOG_BAD_PROOF);
  assert.ok(e instanceof Error);
  assert.ok(isTlogError(e));
  assert.ok(isTlogError(e, 'TLOG_BAD_PROOF'));
  assert.ok(!isTlogError(e, 'TLOG_INCONSISTENT'));
  assert.ok(!isTlogError(new Error('x')));
});

void test('src/ imports only @noble/hashes, @noble/curves, @scure/base and its own files', () => {
  for (const { file, text } of sources) {
    for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)) {
      const spec = m[1]!;
      assert.ok(
        spec.startsWith('./') || spec.startsWith('@noble/hashes/') || spec.startsWith('@noble/curves/') || spec === '@scure/base',
        `${file} imports ${spec}`,
      );
    }
    assert.ok(!/\bBuffer\b|\bprocess\./.test(text), `${file} uses a Node global`);
  }
});

void test('every public value has JSDoc with an @example', () => {
  const all = sources.map((s) => s.text).join('\n');
  for (const name of Object.keys(tlog)) {
    const decl = new RegExp(`/\\*\\*((?:(?!\\*/)[\\s\\S])*)\\*/\\s*export (?:function|class|const) ${name}\\b`);
    const m = decl.exec(all);
    assert.ok(m, `${name} has no JSDoc`);
    assert.ok(m[1]!.includes('@example'), `${name}'s JSDoc has no @example`);
  }
});
