/**
 * Redaction: every sensitive value becomes `hmac-sha256:v<N>:<hex>` under the
 * namespace key version, the raw value never reaches the event bytes, the
 * version is recorded, and the HMAC is the documented one.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { buildEvent, GENESIS_PREV } from '../../src/audit/event.js';
import { DEFAULT_SENSITIVE_PATHS, localHmacKey, redact, redactionMessage, REDACTED_RE, type HmacKey } from '../../src/audit/redact.js';
import { rejectsAudit } from './helpers.js';

const KEY = new Uint8Array(32).fill(7);
const v3 = localHmacKey(3, KEY);
const expectMac = (value: unknown, key = KEY, version = 3): string =>
  `hmac-sha256:v${version}:${createHmac('sha256', key).update('keyward/v1 audit-redact\n' + JSON.stringify(value)).digest('hex')}`;

void describe('redact', () => {
  void test('replaces context values, client addresses and token ids; keeps the rest; records the version', async () => {
    const details = { context: { tenant: 'acme', row: '42' }, client: { address: '203.0.113.9', agent: 'curl' }, token_id: 'tok_123', n: 5 };
    const { details: out, hmac_key_version } = await redact(details, DEFAULT_SENSITIVE_PATHS, v3);
    assert.equal(hmac_key_version, 3);
    assert.deepEqual(out, {
      context: { tenant: expectMac('acme'), row: expectMac('42') },
      client: { address: expectMac('203.0.113.9'), agent: 'curl' },
      token_id: expectMac('tok_123'),
      n: 5,
    });
    assert.equal(details.context.tenant, 'acme', 'the input is not changed');
  });

  void test('the HMAC message is the label and the canonical JSON of the value (so "1" and 1 differ)', async () => {
    assert.equal(new TextDecoder().decode(redactionMessage({ b: 1, a: '1' })), 'keyward/v1 audit-redact\n{"a":"1","b":1}');
    const { details } = await redact({ context: { a: '1', b: 1 } }, ['context.*'], v3);
    assert.notEqual((details.context as Record<string, string>).a, (details.context as Record<string, string>).b);
  });

  void test('same value and version → same marker; another version → another marker', async () => {
    const a = await redact({ token_id: 't' }, ['token_id'], v3);
    const b = await redact({ token_id: 't' }, ['token_id'], v3);
    const c = await redact({ token_id: 't' }, ['token_id'], localHmacKey(4, KEY));
    assert.equal(a.details.token_id, b.details.token_id);
    assert.notEqual(a.details.token_id, c.details.token_id);
    assert.match(c.details.token_id as string, /^hmac-sha256:v4:/);
  });

  void test('wildcards over arrays; objects replaced whole; null kept; nothing matched → version null', async () => {
    const { details, hmac_key_version } = await redact({ client: { addresses: ['10.0.0.1', '10.0.0.2'] }, token: { id: null }, context: { nested: { a: 1 } } }, DEFAULT_SENSITIVE_PATHS, v3);
    assert.deepEqual(details, { client: { addresses: [expectMac('10.0.0.1'), expectMac('10.0.0.2')] }, token: { id: null }, context: { nested: expectMac({ a: 1 }) } });
    assert.equal(hmac_key_version, 3);
    assert.deepEqual(await redact({ n: 1 }, DEFAULT_SENSITIVE_PATHS, v3), { details: { n: 1 }, hmac_key_version: null });
  });

  void test('an async (keyholder) HMAC function works', async () => {
    const remote: HmacKey = { version: 9, hmac: (m) => Promise.resolve(createHmac('sha256', KEY).update(m).digest('hex')) };
    const { details } = await redact({ token_id: 'x' }, ['token_id'], remote);
    assert.equal(details.token_id, expectMac('x', KEY, 9));
  });

  void test('a value that already looks like a marker is MACed again, not trusted', async () => {
    const fake = `hmac-sha256:v3:${'0'.repeat(64)}`;
    const { details } = await redact({ token_id: fake }, ['token_id'], v3);
    assert.equal(details.token_id, expectMac(fake));
  });

  void test('refusals are typed', async () => {
    await rejectsAudit(() => redact({ x: 0.5 }, [], v3), 'KW_INVALID_ARGUMENT');
    await rejectsAudit(() => redact({}, ['a..b'], v3), 'KW_INVALID_ARGUMENT');
    await rejectsAudit(() => redact({ a: 'x' }, ['a'], { version: 1, hmac: () => 'nothex' }), 'KW_INVALID_ARGUMENT');
    await rejectsAudit(() => redact({}, [], { version: 0, hmac: () => '' }), 'KW_INVALID_ARGUMENT');
    assert.throws(() => localHmacKey(1, new Uint8Array(16)));
  });

  void test('property: the raw sensitive value never appears in the event bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 6, maxLength: 40 }).filter((s) => s.isWellFormed() && s.trim().length >= 6),
        fc.string({ minLength: 6, maxLength: 40 }).filter((s) => s.isWellFormed() && s.trim().length >= 6),
        fc.ipV4(),
        async (ctxValue, tokenId, addr) => {
          const key = localHmacKey(2, randomBytes(32));
          const raw = { context: { tenant: ctxValue }, client: { address: addr }, token_id: tokenId, op_note: 'fixed' };
          const { details, hmac_key_version } = await redact(raw, DEFAULT_SENSITIVE_PATHS, key);
          const { bytes } = buildEvent(
            { ns: 'ns', principal: 'p', auth: 'token', op: 'data.unwrap', outcome: 'allowed', details, hmac_key_version },
            { index: 0, time: new Date(0), prev: GENESIS_PREV },
          );
          const text = new TextDecoder().decode(bytes);
          for (const secret of [ctxValue, tokenId, addr, JSON.stringify(ctxValue).slice(1, -1), JSON.stringify(tokenId).slice(1, -1)]) {
            assert.ok(!text.includes(secret) || 'fixed'.includes(secret) || /^[0-9a-f:v-]+$/.test(secret), `raw value ${JSON.stringify(secret)} leaked`);
          }
          for (const m of [details.token_id, (details.client as Record<string, string>).address, (details.context as Record<string, string>).tenant]) assert.match(m as string, REDACTED_RE);
        },
      ),
      { numRuns: 200 },
    );
  });
});
