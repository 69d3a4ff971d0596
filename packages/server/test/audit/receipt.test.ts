/**
 * Destroy receipts: the keyholder's Ed25519 signature over
 * { ns, key, version, blob_sha256, time } rides in the keys.destroy event,
 * verifies with the keyholder's public key, and fails for any change, another
 * key, or an event it does not belong to. It survives the log round trip.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { describe, test } from 'node:test';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { buildEvent, GENESIS_PREV, type AuditEvent } from '../../src/audit/event.js';
import { exportLog } from '../../src/audit/export.js';
import { AuditLog } from '../../src/audit/log.js';
import { destroyReceipt, receiptMessage, verifyReceipt, type ReceiptSigner } from '../../src/audit/receipt.js';
import { verifyExport } from '../../src/audit/verify.js';
import { MemoryStorage, ORIGIN, fakeClock, logKey, rejectsAudit } from './helpers.js';

function keyholder(): { signer: ReceiptSigner; publicKey: Uint8Array; privateKey: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Uint8Array.from(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
  return { publicKey: raw, privateKey, signer: { publicKey: raw, sign: (m) => Uint8Array.from(nodeSign(null, m, privateKey)) } };
}

const KH = keyholder();
const WRAPPED = new Uint8Array(60).fill(9);
const PUBLIC = new Uint8Array(32).fill(4);
const T = new Date(Date.UTC(2025, 2, 3, 4, 5, 6, 7));
const input = { ns: 'billing', key: 'orders', version: 2, wrapped: WRAPPED, publicKey: PUBLIC, time: T, principal: 'admin-1', auth: 'token' as const };

async function receiptEvent(): Promise<AuditEvent> {
  return buildEvent(await destroyReceipt(input, KH.signer), { index: 7, time: T, prev: GENESIS_PREV }).event;
}

void describe('destroy receipts', () => {
  void test('the event carries the signed facts, the fingerprints and the signature; it verifies', async () => {
    const event = await receiptEvent();
    assert.equal(event.op, 'keys.destroy');
    assert.deepEqual(event.target, { key: 'orders', version: 2 });
    const facts = verifyReceipt(event, [KH.publicKey]);
    assert.deepEqual(facts, {
      ns: 'billing', key: 'orders', version: 2,
      blob_sha256: createHash('sha256').update(WRAPPED).digest('hex'),
      time: '2025-03-03T04:05:06.007Z',
      public_sha256: createHash('sha256').update(PUBLIC).digest('hex'),
    });
  });

  void test('the signed message is the label and the canonical facts', () => {
    const facts = { ns: 'n', key: 'k', version: 1, blob_sha256: 'ab'.repeat(32), time: '2025-01-01T00:00:00.000Z' };
    assert.equal(new TextDecoder().decode(receiptMessage(facts)), 'keyward/v1 destroy-receipt\n' + canonicalJson(facts));
  });

  void test('any change to the receipt or its event fails (KW_AUDIT_BAD_RECEIPT)', async () => {
    const event = await receiptEvent();
    const r = (event.details as { receipt: Record<string, unknown> }).receipt;
    const withReceipt = (over: Record<string, unknown>, ev: Partial<AuditEvent> = {}): AuditEvent => ({ ...event, ...ev, details: { receipt: { ...r, ...over } as AuditEvent['details'] } });
    const flip = (hex: string): string => (hex[0] === 'a' ? 'b' : 'a') + hex.slice(1);
    const cases: [string, AuditEvent][] = [
      ['another blob hash', withReceipt({ blob_sha256: flip(r.blob_sha256 as string) })],
      ['another time', withReceipt({ time: '2025-03-03T04:05:06.008Z' })],
      ['another version', withReceipt({ version: 3 }, { target: { key: 'orders', version: 3 } })],
      ['a changed signature', withReceipt({ signature: flip(r.signature as string) })],
      ['an event about another key', withReceipt({}, { target: { key: 'invoices', version: 2 } })],
      ['an event in another namespace', withReceipt({}, { ns: 'other' })],
      ['a denied event', { ...event, outcome: 'denied', code: 'KW_FORBIDDEN' }],
      ['another op', { ...event, op: 'keys.disable' }],
      ['a missing receipt', { ...event, details: {} }],
      ['an extra receipt field', withReceipt({ extra: 1 })],
    ];
    for (const [name, ev] of cases) await rejectsAudit(() => verifyReceipt(ev, KH.publicKey), 'KW_AUDIT_BAD_RECEIPT').catch((e: Error) => assert.fail(`${name}: ${e.message}`));
  });

  void test('a receipt signed by an untrusted key fails, even when it is self-consistent', async () => {
    const rogue = keyholder();
    const event = buildEvent(await destroyReceipt(input, rogue.signer), { index: 0, time: T, prev: GENESIS_PREV }).event;
    await rejectsAudit(() => verifyReceipt(event, [KH.publicKey]), 'KW_AUDIT_BAD_RECEIPT');
    assert.ok(verifyReceipt(event, [KH.publicKey, rogue.publicKey]));
  });

  void test('a signer that lies about its public key produces a receipt that does not verify', async () => {
    const liar: ReceiptSigner = { publicKey: KH.publicKey, sign: keyholder().signer.sign };
    const event = buildEvent(await destroyReceipt(input, liar), { index: 0, time: T, prev: GENESIS_PREV }).event;
    await rejectsAudit(() => verifyReceipt(event, [KH.publicKey]), 'KW_AUDIT_BAD_RECEIPT');
  });

  void test('the receipt survives the log: append, export, verify the export, verify the receipt', async () => {
    const log = new AuditLog(new MemoryStorage(), { origin: ORIGIN, now: fakeClock() });
    const key = logKey();
    await log.appendEvent(await destroyReceipt({ ...input, publicKey: null }, KH.signer));
    await log.checkpoint(key.signer);
    const r = verifyExport(await exportLog(log), { verifierKey: key.vkey });
    assert.equal(r.ok, true);
    const facts = verifyReceipt(r.events[0]!, KH.publicKey);
    assert.equal(facts.public_sha256, null);
  });

  void test('bad inputs are refused', async () => {
    await rejectsAudit(() => destroyReceipt({ ...input, wrapped: new Uint8Array(0) }, KH.signer), 'KW_INVALID_ARGUMENT');
    await rejectsAudit(() => destroyReceipt(input, { publicKey: new Uint8Array(31), sign: KH.signer.sign }), 'KW_INVALID_ARGUMENT');
    await rejectsAudit(() => destroyReceipt(input, { publicKey: KH.publicKey, sign: () => new Uint8Array(10) }), 'KW_INVALID_ARGUMENT');
  });
});
