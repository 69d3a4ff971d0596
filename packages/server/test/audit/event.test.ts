/**
 * The event schema and its canonical encoding: what is filled in, what is
 * refused (and that refusal is typed), strict parsing of stored/exported
 * events, and that the leaf and the chain link cover the exact bytes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { leafHash } from '@keyward/tlog';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import {
  AuditEventSchema,
  buildEvent,
  canonicalBytes,
  eventHash,
  eventLeafHash,
  GENESIS_PREV,
  MAX_EVENT_BYTES,
  parseEvent,
  type AuditEvent,
  type AuditEventInput,
} from '../../src/audit/event.js';
import { rejectsAudit } from './helpers.js';

const T = new Date(Date.UTC(2025, 4, 6, 7, 8, 9, 10));
const base: AuditEventInput = { ns: 'billing', principal: 'svc-orders', auth: 'signature', op: 'data.datakey', target: { key: 'orders', version: 3 }, outcome: 'allowed' };
const at = { index: 0, time: T, prev: GENESIS_PREV };
const build = (over: Partial<AuditEventInput> = {}): { event: AuditEvent; bytes: Uint8Array } => buildEvent({ ...base, ...over }, at);

void describe('buildEvent', () => {
  void test('fills v, index, time, prev and the defaults; the bytes are the canonical JSON', () => {
    const { event, bytes } = build();
    assert.deepEqual(event, {
      v: 1, index: 0, time: '2025-05-06T07:08:09.010Z', ns: 'billing', principal: 'svc-orders', auth: 'signature', op: 'data.datakey',
      target: { key: 'orders', version: 3 }, outcome: 'allowed', code: null, request: null, details: {}, hmac_key_version: null, prev: GENESIS_PREV,
    });
    assert.equal(new TextDecoder().decode(bytes), canonicalJson(event));
    assert.deepEqual(canonicalBytes(event), bytes);
  });

  void test('the exact byte layout of a small event', () => {
    const { bytes } = buildEvent({ ns: null, principal: null, auth: 'none', op: 'sys.unseal', outcome: 'denied', code: 'KW_SHARE_CORRUPTED' }, { index: 5, time: new Date(0), prev: 'ab'.repeat(32) });
    assert.equal(
      new TextDecoder().decode(bytes),
      `{"auth":"none","code":"KW_SHARE_CORRUPTED","details":{},"hmac_key_version":null,"index":5,"ns":null,"op":"sys.unseal","outcome":"denied","prev":"${'ab'.repeat(32)}","principal":null,"request":null,"target":{},"time":"1970-01-01T00:00:00.000Z","v":1}`,
    );
  });

  void test('leaf = RFC 9162 leafHash of the bytes; chain link = SHA-256 of the bytes', () => {
    const { bytes } = build();
    assert.deepEqual(eventLeafHash(bytes), leafHash(bytes));
    assert.equal(eventHash(bytes), createHash('sha256').update(bytes).digest('hex'));
  });

  void test('target members given as undefined are absent', () => {
    assert.deepEqual(build({ target: { key: 'k', version: undefined } }).event.target, { key: 'k' });
  });

  const refused: [string, Partial<AuditEventInput> | Record<string, unknown>][] = [
    ['code on an allowed event', { code: 'KW_X' }],
    ['no code on a denied event', { outcome: 'denied' }],
    ['a principal with auth none', { auth: 'none' }],
    ['no principal with a token', { principal: null }],
    ['an unknown auth', { auth: 'password' }],
    ['an unknown outcome', { outcome: 'maybe' }],
    ['an op without a dot', { op: 'rotate' }],
    ['an op in upper case', { op: 'Keys.Rotate' }],
    ['a lower-case code', { outcome: 'error', code: 'oops' }],
    ['a request that is not a SHA-256 hex', { request: 'AB'.repeat(32) }],
    ['version 0', { target: { version: 0 } }],
    ['an unknown target member', { target: { key: 'k', extra: 1 } }],
    ['a namespace with a space', { ns: 'a b' }],
    ['an empty namespace', { ns: '' }],
    ['details that are an array', { details: [] }],
    ['details with a float', { details: { x: 0.5 } }],
    ['details that are a Map', { details: new Map() }],
    ['hmac_key_version 0', { hmac_key_version: 0 }],
    ['an unknown member', { extra: true }],
    ['a caller-supplied index', { index: 3 }],
  ];
  for (const [name, over] of refused) {
    void test(`refuses ${name} (KW_INVALID_ARGUMENT)`, () => rejectsAudit(() => build(over), 'KW_INVALID_ARGUMENT'));
  }

  void test(`refuses events over ${MAX_EVENT_BYTES} bytes (KW_LIMIT_EXCEEDED)`, async () => {
    await rejectsAudit(() => build({ details: { blob: 'x'.repeat(MAX_EVENT_BYTES) } }), 'KW_LIMIT_EXCEEDED');
  });

  void test('refuses a time that is not a real date', () => rejectsAudit(() => buildEvent(base, { ...at, time: new Date(NaN) }), 'KW_INVALID_ARGUMENT'));
});

void describe('parseEvent (untrusted: stored or exported)', () => {
  const { event, bytes } = build({ details: { n: 1, s: 'é' } });
  const text = new TextDecoder().decode(bytes);

  void test('parses its own bytes and text back to the same event', () => {
    assert.deepEqual(parseEvent(bytes), event);
    assert.deepEqual(parseEvent(text), event);
  });

  const mutate = (f: (o: Record<string, unknown>) => void): string => {
    const o = JSON.parse(text) as Record<string, unknown>;
    f(o);
    return canonicalJson(o);
  };
  const bad: [string, string | Uint8Array][] = [
    ['non-canonical spacing', text.replace(',', ', ')],
    ['unsorted members', JSON.stringify(event)],
    ['v 2', mutate((o) => { o.v = 2; })],
    ['a missing field', mutate((o) => { delete o.prev; })],
    ['an extra field', mutate((o) => { o.extra = 1; })],
    ['a time without milliseconds', mutate((o) => { o.time = '2025-05-06T07:08:09Z'; })],
    ['a time with an offset', mutate((o) => { o.time = '2025-05-06T09:08:09.010+02:00'; })],
    ['a time that does not exist', mutate((o) => { o.time = '2025-02-30T07:08:09.010Z'; })],
    ['a prev in upper case', mutate((o) => { o.prev = 'AB'.repeat(32); })],
    ['a negative index', mutate((o) => { o.index = -1; })],
    ['invalid UTF-8', Uint8Array.from([...bytes.slice(0, 20), 0xff, ...bytes.slice(20)])],
    ['too long', new Uint8Array(MAX_EVENT_BYTES + 1).fill(0x20)],
    ['not JSON', 'hello'],
    ['an array', '[]'],
  ];
  for (const [name, input] of bad) void test(`refuses ${name} (KW_AUDIT_MALFORMED)`, () => rejectsAudit(() => parseEvent(input), 'KW_AUDIT_MALFORMED'));

  void test('the schema accepts exactly what canonicalBytes accepts', () => {
    assert.equal(AuditEventSchema.safeParse(event).success, true);
    assert.equal(AuditEventSchema.safeParse({ ...event, outcome: 'allowed', code: 'KW_X' }).success, false);
  });
});
