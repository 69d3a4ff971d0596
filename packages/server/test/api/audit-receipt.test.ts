/**
 * Destroy (crypto-shredding) leaves a keys.destroy event carrying a receipt
 * signed by the keyholder's checkpoint key, verifiable offline with
 * `verifyReceipt` and the published verifier key alone.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { openCheckpoint, newVerifier, parseVerifierKey, verifyInclusion } from '@keyward/tlog';
import { isAuditError } from '../../src/audit/errors.js';
import { parseEvent, eventLeafHash, type AuditEvent } from '../../src/audit/event.js';
import { verifyReceipt } from '../../src/audit/receipt.js';
import { isProtocolError } from '../../src/keyholder/protocol.js';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, unb64u, newServer, unsealAll } from './helpers.js';

const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

void describe('destroy receipts', () => {
  let s: RunningServer;
  let root: string;
  let trusted: Uint8Array;
  let verifierKey: string;

  before(async () => {
    s = await newServer();
    const init = await s.initialize({ shares: 3, threshold: 2 });
    await unsealAll(s, init.shares.slice(0, 2));
    root = await enrollAdmin(s, init.rootToken);
    const st = await s.keyholder.call('status', {});
    verifierKey = st.audit.verifierKey!;
    trusted = parseVerifierKey(verifierKey).publicKey;
  });
  after(async () => { await s.close(); });

  void test('the keys.destroy event carries a receipt that verifies offline and names the erased blob', async () => {
    assert.equal((await call(s, 'POST', '/v1/keys/ops/release', { token: root, body: { type: 'ed25519' } })).status, 201);
    assert.equal((await call(s, 'POST', '/v1/keys/ops/release/versions/1/schedule-deletion', { token: root, body: { days: 7 } })).status, 200);
    const before = (await s.store.getKeyVersion('ops', 'release', 1))!;
    const blob = before.wrapped!;
    const start = await s.store.auditSize();
    const d = await call(s, 'POST', '/v1/keys/ops/release/versions/1/destroy', { token: root });
    assert.equal(d.status, 200, JSON.stringify(d.body));
    assert.equal(d.body.state, 'destroyed');
    assert.equal((await s.store.getKeyVersion('ops', 'release', 1))!.wrapped, null);

    const rows = await s.store.readAuditEvents({ start, end: await s.store.auditSize() });
    const row = rows.find((r) => (JSON.parse(r.event) as AuditEvent).op === 'keys.destroy')!;
    const event = parseEvent(row.event);
    assert.equal(event.outcome, 'allowed');
    assert.equal(event.principal, 'admin');
    const facts = verifyReceipt(event, [trusted]);
    assert.deepEqual({ ns: facts.ns, key: facts.key, version: facts.version }, { ns: 'ops', key: 'release', version: 1 });
    assert.equal(facts.blob_sha256, sha256Hex(blob), 'the receipt names exactly the blob that was erased');
    assert.equal(facts.public_sha256, sha256Hex(before.publicKey!));
    assert.equal(facts.time, d.body.destroyed_at);

    // The event is in the signed log: its inclusion proof verifies against a checkpoint under the same key.
    await new Promise((r) => setTimeout(r, 400));
    const cp = await call(s, 'GET', '/v1/audit/checkpoint', { token: root });
    const opened = openCheckpoint(cp.body.note, [newVerifier(verifierKey)], { origin: parseVerifierKey(verifierKey).name });
    const pr = await call(s, 'GET', `/v1/audit/proof/inclusion?index=${row.idx}&size=${opened.checkpoint.size}`, { token: root });
    assert.equal(pr.status, 200, JSON.stringify(pr.body));
    verifyInclusion(eventLeafHash(new TextEncoder().encode(row.event)), row.idx, opened.checkpoint.size, pr.body.hashes.map(unb64u), opened.checkpoint.root);

    // Tampering or an untrusted key is refused.
    const receipt = (event.details as { receipt: Record<string, unknown> }).receipt;
    const forged = { ...event, details: { ...event.details, receipt: { ...receipt, blob_sha256: sha256Hex(new Uint8Array([1])) } } };
    assert.throws(() => verifyReceipt(forged, [trusted]), (e: unknown) => isAuditError(e, 'KW_AUDIT_BAD_RECEIPT'));
    const moved = { ...event, target: { key: 'release', version: 2 } };
    assert.throws(() => verifyReceipt(moved, [trusted]), (e: unknown) => isAuditError(e, 'KW_AUDIT_BAD_RECEIPT'));
    assert.throws(() => verifyReceipt(event, [new Uint8Array(32).fill(7)]), (e: unknown) => isAuditError(e, 'KW_AUDIT_BAD_RECEIPT'));
  });

  void test('a symmetric key: receipt without a public key hash; a refused destroy writes no receipt', async () => {
    assert.equal((await call(s, 'POST', '/v1/keys/ops/data', { token: root, body: { type: 'aes256' } })).status, 201);
    const refused = await call(s, 'POST', '/v1/keys/ops/data/versions/1/destroy', { token: root });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'KW_STORE_INVALID_TRANSITION');
    const evs = (await s.store.readAuditEvents({ start: 0, end: await s.store.auditSize() })).map((r) => JSON.parse(r.event) as AuditEvent);
    assert.ok(!evs.some((e) => e.op === 'keys.destroy' && e.target.key === 'data' && e.outcome === 'allowed'));

    await call(s, 'POST', '/v1/keys/ops/data/versions/1/schedule-deletion', { token: root, body: { days: 7 } });
    const blob = (await s.store.getKeyVersion('ops', 'data', 1))!.wrapped!;
    assert.equal((await call(s, 'POST', '/v1/keys/ops/data/versions/1/destroy', { token: root })).status, 200);
    const after = (await s.store.readAuditEvents({ start: 0, end: await s.store.auditSize() })).map((r) => parseEvent(r.event));
    const ev = after.find((e) => e.op === 'keys.destroy' && e.target.key === 'data' && e.outcome === 'allowed')!;
    const facts = verifyReceipt(ev, trusted);
    assert.equal(facts.public_sha256, null);
    assert.equal(facts.blob_sha256, sha256Hex(blob));
  });

  void test('the keyholder signs receipts only for a real blob of that version, at its own time', async () => {
    assert.equal((await call(s, 'POST', '/v1/keys/ops/a', { token: root, body: { type: 'aes256' } })).status, 201);
    assert.equal((await call(s, 'POST', '/v1/keys/ops/b', { token: root, body: { type: 'aes256' } })).status, 201);
    const a = (await s.store.getKeyVersion('ops', 'a', 1))!;
    const b = (await s.store.getKeyVersion('ops', 'b', 1))!;
    const now = new Date().toISOString();
    const ok = await s.keyholder.call('destroy-receipt', { version: { ns: 'ops', key: 'a', version: 1, type: 'aes256', wrapped: b64u(a.wrapped!) }, time: now });
    assert.equal(ok.blob_sha256, sha256Hex(a.wrapped!));
    await assert.rejects(
      s.keyholder.call('destroy-receipt', { version: { ns: 'ops', key: 'a', version: 1, type: 'aes256', wrapped: b64u(b.wrapped!) }, time: now }),
      (e: unknown) => isProtocolError(e, 'KW_WRAPPED_KEY_MISMATCH'),
    );
    await assert.rejects(
      s.keyholder.call('destroy-receipt', { version: { ns: 'ops', key: 'a', version: 1, type: 'aes256', wrapped: b64u(a.wrapped!) }, time: '2001-01-01T00:00:00.000Z' }),
      (e: unknown) => isProtocolError(e, 'KW_INVALID_ARGUMENT'),
    );
  });
});
