/**
 * The keyholder as a real process on a real Unix socket, end to end:
 * status (sealed) → init-state → unseal with shares sealed to the boot key,
 * one at a time (k − 1 leave it sealed) → generate-version → datakey / unwrap
 * round trip (the data key opens only for the caller's identity and request)
 * → the other ops → checkpoint → seal (wipes) → every key op KW_SEALED →
 * unseal again with a new boot key.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openCheckpoint, newVerifier } from '@keyward/tlog';
import { sealShareForBoot, UnsealKey } from '../../src/keyholder/unseal-key.js';
import {
  EventLog, b64u, generate, identity, makeInit, newDevice, openReleased, ref, rejectsCode, sealedShare, signedRequest, startKeyholder, unb64u, unsealWith, utf8,
  type InitMaterial, type Running, type Stored,
} from './helpers.js';

const REDACT = 'keyward/v1 audit-redact\n';

void describe('keyholder process: custody and key operations', () => {
  let kh: Running;
  let init: InitMaterial;
  const log = new EventLog();
  const device = newDevice();
  let alice: Awaited<ReturnType<typeof identity>>;
  let v1: Stored;
  let firstBoot: { recipient: string; bootId: string };

  before(async () => {
    [kh, init, alice] = await Promise.all([startKeyholder(), makeInit(5, 3), identity()]);
  });
  after(async () => {
    const exit = await kh.stop();
    assert.equal(exit.code, 0, 'SIGTERM exits cleanly');
  });

  void test('starts uninitialized and sealed; key ops need a state first', async () => {
    const st = await kh.client.call('status', {});
    assert.equal(st.initialized, false);
    assert.equal(st.sealed, true);
    assert.equal(st.unseal, null);
    await rejectsCode(() => kh.client.call('unseal-key', {}), 'KW_NOT_INITIALIZED');
    await rejectsCode(() => kh.client.call('generate-version', { event: b64u(log.make({ op: 'keys.create' })), ref: ref() }), 'KW_NOT_INITIALIZED');
    assert.equal(statSync(kh.socket).mode & 0o777, 0o600, 'socket is 0600');
  });

  void test('init-state installs the state once, written 0600 beside the socket', async () => {
    const r = await kh.client.call('init-state', { state: init.state });
    assert.deepEqual(r, { initId: init.state.custody.initId, threshold: 3 });
    assert.equal(statSync(join(kh.dir, 'keyholder.json')).mode & 0o777, 0o600);
    await rejectsCode(() => kh.client.call('init-state', { state: init.state }), 'KW_ALREADY_INITIALIZED');
    const st = await kh.client.call('status', {});
    assert.equal(st.initialized, true);
    assert.equal(st.sealed, true);
    assert.equal(st.initId, init.state.custody.initId);
    assert.match(st.unseal!.recipient, /^kwx25519/);
    firstBoot = { recipient: st.unseal!.recipient, bootId: st.unseal!.bootId };
    assert.deepEqual(await kh.client.call('unseal-key', {}), firstBoot);
    assert.equal(st.unseal!.received, 0);
    assert.equal(st.audit.origin, init.origin);
    assert.equal(st.audit.restored, true, 'a fresh log needs no restore');
  });

  void test('while sealed every key op is KW_SEALED', async () => {
    await rejectsCode(() => kh.client.call('generate-version', { event: b64u(log.make({ op: 'keys.create' })), ref: ref() }), 'KW_SEALED');
    await rejectsCode(() => kh.client.call('checkpoint', {}), 'KW_SEALED');
  });

  void test('shares arrive sealed to the boot key; k − 1 leave it sealed, the k-th unseals', async () => {
    const [s1, s2, s3, s4] = init.shares;
    let r = await kh.client.call('unseal', { share: await sealedShare(kh.client, s1!) });
    assert.deepEqual(r, { sealed: true, received: 1, threshold: 3 });
    await rejectsCode(() => kh.client.call('unseal', { share: '' }), 'KW_INVALID_ARGUMENT');
    // The same share again is not counted twice.
    await rejectsCode(async () => kh.client.call('unseal', { share: await sealedShare(kh.client, s1!) }), 'KW_SHARE_DUPLICATE');
    // A share sealed to another boot's key (say, replayed from an earlier boot) is refused.
    const otherBoot = await UnsealKey.generate();
    const stale = await sealShareForBoot(s4!.text, otherBoot.recipient, otherBoot.bootId);
    await rejectsCode(() => kh.client.call('unseal', { share: b64u(stale) }), 'KW_SEALED_SHARE_REJECTED');
    r = await kh.client.call('unseal', { share: await sealedShare(kh.client, s2!) });
    assert.deepEqual(r, { sealed: true, received: 2, threshold: 3 }, 'k − 1 shares leave it sealed');
    assert.equal((await kh.client.call('status', {})).sealed, true);
    r = await kh.client.call('unseal', { share: await sealedShare(kh.client, s3!) });
    assert.deepEqual(r, { sealed: false, received: 3, threshold: 3 });
    const st = await kh.client.call('status', {});
    assert.equal(st.sealed, false);
    assert.equal(st.unseal, null);
    await rejectsCode(() => kh.client.call('unseal-key', {}), 'KW_ALREADY_UNSEALED');
  });

  void test('generate-version returns the wrapped version and appends its event', async () => {
    v1 = await generate(kh.client, log, ref());
    assert.equal(unb64u(v1.wrapped).length, 32 + 49);
    const st = await kh.client.call('status', {});
    assert.equal(st.audit.appended, 1);
  });

  void test('datakey → unwrap: the same data key, sealed only to the caller, bound to each request', async () => {
    const context = { table: 'orders' };
    const s1 = signedRequest(device, { key: 'billing/orders', recipient: alice.recipient, context });
    const event = log.make({ op: 'data.datakey', target: { key: 'orders', version: 1 } });
    const dk = await kh.client.call('datakey', { event: b64u(event), version: v1, context, recipient: alice.recipient, request: s1.request });
    log.commit(event);
    assert.equal(dk.leaf, 1);
    assert.ok(!('plaintext' in dk), 'no plaintext data key leaves the keyholder');
    const key1 = await openReleased(dk.sealed, alice.id, s1.hash, ref(), context);
    assert.equal(key1.length, 32);

    const s2 = signedRequest(device, { key: 'billing/orders', recipient: alice.recipient, context, wrapped: dk.wrapped }, { url: 'https://kms.test/v1/ns/billing/keys/orders:unwrap' });
    const ev2 = log.make({ op: 'data.unwrap', target: { key: 'orders', version: 1 } });
    const u = await kh.client.call('unwrap', { event: b64u(ev2), version: v1, context, wrapped: dk.wrapped, recipient: alice.recipient, request: s2.request });
    log.commit(ev2);
    const key2 = await openReleased(u.sealed, alice.id, s2.hash, ref(), context);
    assert.deepEqual(key2, key1);
    // Bound to its own request: it does not open as the answer to the first one.
    await assert.rejects(() => openReleased(u.sealed, alice.id, s1.hash, ref(), context));
  });

  void test('rewrap, encrypt / decrypt (decrypt releases only sealed), sign / verify, mac', async () => {
    const v2 = await generate(kh.client, log, ref({ version: 2 }));
    // encrypt → decrypt
    let ev = log.make({ op: 'data.encrypt', target: { key: 'orders', version: 1 } });
    const ct = await kh.client.call('encrypt', { event: b64u(ev), version: v1, plaintext: b64u(utf8('s3cr3t')), context: { user: '42' } });
    log.commit(ev);
    assert.match(ct.ciphertext, /^kw:v1:/);
    const sd = signedRequest(device, { recipient: alice.recipient, ciphertext: ct.ciphertext, context: { user: '42' } });
    ev = log.make({ op: 'data.decrypt', target: { key: 'orders', version: 1 } });
    const pt = await kh.client.call('decrypt', { event: b64u(ev), version: v1, ciphertext: ct.ciphertext, context: { user: '42' }, recipient: alice.recipient, request: sd.request });
    log.commit(ev);
    assert.deepEqual(await openReleased(pt.sealed, alice.id, sd.hash, ref(), { user: '42' }), utf8('s3cr3t'));

    // rewrap a data key from v1 to v2
    const s = signedRequest(device, { recipient: alice.recipient });
    ev = log.make({ op: 'data.datakey', target: { key: 'orders', version: 1 } });
    const dk = await kh.client.call('datakey', { event: b64u(ev), version: v1, recipient: alice.recipient, request: s.request });
    log.commit(ev);
    ev = log.make({ op: 'data.rewrap', target: { key: 'orders' } });
    const rw = await kh.client.call('rewrap', { event: b64u(ev), from: v1, to: v2, wrapped: dk.wrapped });
    log.commit(ev);
    assert.equal(rw.ref.version, 2);
    const s2 = signedRequest(device, { recipient: alice.recipient });
    ev = log.make({ op: 'data.unwrap', target: { key: 'orders', version: 2 } });
    const u = await kh.client.call('unwrap', { event: b64u(ev), version: v2, wrapped: rw.wrapped, recipient: alice.recipient, request: s2.request });
    log.commit(ev);
    assert.deepEqual(await openReleased(u.sealed, alice.id, s2.hash, ref({ version: 2 })), await openReleased(dk.sealed, alice.id, s.hash, ref()));

    // sign / verify
    const ed = await generate(kh.client, log, ref({ key: 'releases', type: 'ed25519' }));
    ev = log.make({ op: 'data.sign', target: { key: 'releases', version: 1 } });
    const sig = await kh.client.call('sign', { event: b64u(ev), version: ed, message: b64u(utf8('release 1.4.0')) });
    log.commit(ev);
    ev = log.make({ op: 'data.verify', target: { key: 'releases', version: 1 } });
    const ok = await kh.client.call('verify', { event: b64u(ev), version: ed, message: b64u(utf8('release 1.4.0')), signature: sig.signature });
    log.commit(ev);
    assert.equal(ok.valid, true);
    ev = log.make({ op: 'data.verify', target: { key: 'releases', version: 1 } });
    const bad = await kh.client.call('verify', { event: b64u(ev), version: ed, message: b64u(utf8('release 1.4.1')), signature: sig.signature });
    log.commit(ev);
    assert.equal(bad.valid, false);

    // mac / verify mac
    const hm = await generate(kh.client, log, ref({ key: 'tokens', type: 'hmac-sha256' }));
    ev = log.make({ op: 'data.mac', target: { key: 'tokens', version: 1 } });
    const m = await kh.client.call('mac', { event: b64u(ev), version: hm, message: b64u(utf8('token-1')) });
    log.commit(ev);
    ev = log.make({ op: 'data.mac', target: { key: 'tokens', version: 1 } });
    const mv = await kh.client.call('mac', { event: b64u(ev), version: hm, message: b64u(utf8('token-1')), mac: m.mac! });
    log.commit(ev);
    assert.equal(mv.valid, true);
  });

  void test('hmac-audit MACs redaction messages only, and appends nothing', async () => {
    const hm = await generate(kh.client, log, ref({ key: 'audit-hmac', type: 'hmac-sha256' }));
    const before = (await kh.client.call('status', {})).audit.appended;
    const msg = b64u(utf8(`${REDACT}"10.0.0.7"`));
    const r1 = await kh.client.call('hmac-audit', { version: hm, messages: [msg, b64u(utf8(`${REDACT}"10.0.0.8"`))] });
    const r2 = await kh.client.call('hmac-audit', { version: hm, messages: [msg] });
    assert.match(r1.macs[0]!, /^[0-9a-f]{64}$/);
    assert.equal(r1.macs[0], r2.macs[0], 'deterministic: the same value links across events');
    assert.notEqual(r1.macs[0], r1.macs[1]);
    await rejectsCode(() => kh.client.call('hmac-audit', { version: hm, messages: [b64u(utf8('any message'))] }), 'KW_INVALID_ARGUMENT', 'messages.0');
    assert.equal((await kh.client.call('status', {})).audit.appended, before);
  });

  void test('ack + checkpoint: a C2SP checkpoint over the durable leaves, verifiable with the published key', async () => {
    const st = await kh.client.call('status', {});
    assert.equal(st.audit.appended, log.events.length);
    const acked = await kh.client.call('ack', { size: log.events.length });
    assert.equal(acked.size, log.events.length);
    const cp = await kh.client.call('checkpoint', {});
    assert.equal(cp.size, log.events.length);
    const { checkpoint } = openCheckpoint(cp.note, [newVerifier(st.audit.verifierKey!)], { origin: init.origin });
    assert.equal(checkpoint.size, cp.size);
    assert.equal(b64u(checkpoint.root), cp.root);
  });

  void test('seal wipes the keys: ops are KW_SEALED, a new boot key is published, audit appends still work', async () => {
    await kh.client.call('seal', {});
    const st = await kh.client.call('status', {});
    assert.equal(st.sealed, true);
    assert.equal(st.unseal!.received, 0);
    assert.notEqual(st.unseal!.recipient, firstBoot.recipient, 'a new unseal key');
    assert.notEqual(st.unseal!.bootId, firstBoot.bootId, 'a new boot id');
    const s = signedRequest(device, { recipient: alice.recipient });
    await rejectsCode(async () => kh.client.call('datakey', { event: b64u(log.make({ op: 'data.datakey' })), version: v1, recipient: alice.recipient, request: s.request }), 'KW_SEALED');
    await rejectsCode(async () => kh.client.call('unwrap', { event: b64u(log.make({ op: 'data.unwrap' })), version: v1, wrapped: v1.wrapped, recipient: alice.recipient, request: s.request }), 'KW_SEALED');
    await rejectsCode(async () => kh.client.call('encrypt', { event: b64u(log.make({ op: 'data.encrypt' })), version: v1, plaintext: '' }), 'KW_SEALED');
    await rejectsCode(async () => kh.client.call('hmac-audit', { version: v1, messages: [b64u(utf8(REDACT))] }), 'KW_SEALED');
    await rejectsCode(() => kh.client.call('checkpoint', {}), 'KW_SEALED');
    // Denials are still logged while sealed.
    const leaf = await kh.client.call('append', { event: log.add({ op: 'data.datakey', outcome: 'denied' }) });
    assert.equal(leaf.leaf, log.events.length - 1);
  });

  void test('shares sealed to the previous boot key are refused; the new key unseals again', async () => {
    const [, , s3, s4, s5] = init.shares;
    // A share sealed to the first boot's key (captured by a proxy, say) does not open now.
    const old = await sealShareForBoot(s3!.text, firstBoot.recipient, firstBoot.bootId);
    await rejectsCode(() => kh.client.call('unseal', { share: b64u(old) }), 'KW_SEALED_SHARE_REJECTED');
    await rejectsCode(() => kh.client.call('unseal', { share: b64u(utf8('not an envelope')) }), 'KW_SEALED_SHARE_REJECTED');
    const r = await unsealWith(kh.client, [s3!, s4!, s5!]);
    assert.equal(r.sealed, false);
    const s = signedRequest(device, { recipient: alice.recipient });
    const ev = log.make({ op: 'data.datakey', target: { key: 'orders', version: 1 } });
    const dk = await kh.client.call('datakey', { event: b64u(ev), version: v1, recipient: alice.recipient, request: s.request });
    log.commit(ev);
    assert.equal((await openReleased(dk.sealed, alice.id, s.hash, ref())).length, 32);
  });

  void test('the log never carried key material', () => {
    const text = kh.stderr.join('\n');
    for (const s of init.shares) assert.ok(!text.includes(s.text.split('\n')[1]!.slice(16, 40)), 'no share in the log');
    assert.ok(!text.includes(v1.wrapped), 'no wrapped key in the log');
    for (const line of kh.stderr) assert.doesNotThrow(() => JSON.parse(line), 'log lines are JSON');
  });
});
