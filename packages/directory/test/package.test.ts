/**
 * Package-level checks: every error code is documented in docs/errors.md (and the section names no
 * other), and src/ imports only the audited dependencies and its own files (it must run in browsers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { DIRECTORY_ERROR_CODES, DirectoryError, isDirectoryError } from '../src/index.js';

const SRC = new URL('../src/', import.meta.url);
const DOC = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const SECTION = DOC.slice(DOC.indexOf('## Directory (key transparency)'));

void test('every directory error code is documented in docs/errors.md, and the section names no other', () => {
  assert.ok(SECTION.length > 0);
  for (const code of Object.keys(DIRECTORY_ERROR_CODES)) assert.ok(SECTION.includes(`\`${code}\``), `${code} is missing from docs/errors.md`);
  for (const m of SECTION.matchAll(/`(KT_[A-Z_]+)`/g)) assert.ok(m[1]! in DIRECTORY_ERROR_CODES, `docs name unknown code ${m[1]}`);
});

void test('DirectoryError carries its code; isDirectoryError filters by code', () => {
  const e = new DirectoryError('KT_FORK');
  assert.equal(e.name, 'DirectoryError');
  assert.equal(e.message, DIRECTORY_ERROR_CODES.KT_FORK);
  assert.ok(isDirectoryError(e, 'KT_FORK'));
  assert.ok(!isDirectoryError(e, 'KT_ROLLBACK'));
  assert.ok(!isDirectoryError(new Error('x')));
});

void test('src/ imports only @noble/hashes, @noble/curves and its own files', () => {
  for (const f of readdirSync(SRC).filter((x) => x.endsWith('.ts'))) {
    const text = readFileSync(new URL(f, SRC), 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)) {
      const spec = m[1]!;
      assert.ok(spec.startsWith('./') || spec.startsWith('@noble/hashes/') || spec.startsWith('@noble/curves/'), `${f} imports ${spec}`);
    }
  }
});
