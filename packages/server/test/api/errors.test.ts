/** The error registry: every code documented in docs/errors.md with its status; internals never leak. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES } from '@keyward/core';
import { ApiError, ERROR_REGISTRY, toHttpError } from '../../src/api/errors.js';
import { KeyholderProtocolError } from '../../src/keyholder/protocol.js';
import { StoreError } from '../../src/store/errors.js';

const md = readFileSync(new URL('../../../../docs/errors.md', import.meta.url), 'utf8');
const section = md.slice(md.indexOf('## Key service'));

void test('every registry code is documented in docs/errors.md (server codes with their HTTP status)', () => {
  assert.ok(md.includes('## Key service'));
  for (const [code, e] of Object.entries(ERROR_REGISTRY)) {
    if (Object.hasOwn(ERROR_CODES, code)) {
      assert.ok(md.includes(`\`${code}\``), `${code} undocumented`);
      continue;
    }
    const rows = section.split('\n').filter((l) => l.startsWith(`| ${code} |`));
    assert.equal(rows.length, 1, `${code} should have exactly one row in the Key service section`);
    assert.ok(rows[0]!.startsWith(`| ${code} | ${e.status} |`), `${code}: documented status differs from ${e.status}`);
  }
});

void test('every status is a 4xx or 5xx', () => {
  for (const [code, e] of Object.entries(ERROR_REGISTRY)) assert.ok(e.status >= 400 && e.status < 600, code);
});

void test('unknown exceptions become KW_INTERNAL with a generic message; 5xx never carry the exception message', () => {
  assert.deepEqual(toHttpError(new Error('secret path /var/lib/x')), { status: 500, code: 'KW_INTERNAL', message: 'An unexpected internal failure.' });
  const kh = toHttpError(new KeyholderProtocolError('KW_KEYHOLDER_UNAVAILABLE', 'socket /tmp/secret.sock refused'));
  assert.equal(kh.status, 503);
  assert.ok(!kh.message.includes('/tmp'));
  const st = toHttpError(new StoreError('KW_STORE_IO', 'disk /dev/sda1 failed'));
  assert.equal(st.status, 500);
  assert.ok(!st.message.includes('sda1'));
  assert.deepEqual(toHttpError(new ApiError('KW_FORBIDDEN', 'no grant')), { status: 403, code: 'KW_FORBIDDEN', message: 'no grant' });
  assert.equal(toHttpError({ code: 'FST_ERR_CTP_BODY_TOO_LARGE' }).code, 'KW_BODY_TOO_LARGE');
});
