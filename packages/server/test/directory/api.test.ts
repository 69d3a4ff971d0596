/**
 * The directory through the HTTP API of a real server (keyholder process,
 * SQLite), driven by `@keyward/client`'s verifying `Directory`: enrollment
 * with a one-time token, approval by an existing device, revocation by a
 * device and by an administrator, groups, self-monitoring, safety numbers,
 * and principals bound to identities getting exactly their devices' request
 * keys. Every change is in the KEYTRANS log and the audit log; every refused
 * change is a typed error that changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Directory, DirectoryServiceError, devicePublicKeys, encodeEntityValue, entityLabel, generateDevice, safetyNumber, signChange, type DeviceSecrets, type DirectoryTransport } from '@keyward/client';
import { KeyholderDirectorySource } from '../../src/directory/keyholder-keys.js';
import { DirectoryService } from '../../src/directory/service.js';
import { isDirectoryError } from '@keyward/directory';
import { base64urlnopad } from '@scure/base';
import { parseEvent } from '../../src/audit/event.js';
import type { RunningServer } from '../../src/server.js';
import { call, enrollAdmin, newServer, unsealAll } from '../api/helpers.js';

const transport = (s: RunningServer): DirectoryTransport => async ({ method, path, body }) => {
  const r = await call(s, method, path, body !== undefined ? { body } : {});
  return { status: r.status, body: r.body };
};

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { code: string }).code;
  }
  return 'resolved';
}

async function auditOps(s: RunningServer, from: number): Promise<{ op: string; outcome: string; code: string | null }[]> {
  const size = await s.store.auditSize();
  return (await s.store.readAuditEvents({ start: from, end: size })).map((r) => parseEvent(r.event)).map((e) => ({ op: e.op, outcome: e.outcome, code: e.code }));
}

void describe('directory over HTTP', () => {
  let s: RunningServer;
  let admin: string;
  let dir: Directory;
  let laptop: DeviceSecrets;
  let phone: DeviceSecrets;

  before(async () => {
    s = await newServer({ schedulerMs: 0, directory: { enabled: true } });
    const init = await s.initialize({ shares: 2, threshold: 2 });
    await unsealAll(s, init.shares);
    admin = await enrollAdmin(s, init.rootToken);
    const t = await call(s, 'POST', '/v1/tokens', { token: admin, body: { principal: 'alice-svc', ns: 'app' } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    dir = await Directory.connect(transport(s));
    laptop = await generateDevice('laptop', 'x25519');
    phone = await generateDevice('phone', 'xwing');
  });
  after(async () => { await s.close(); });

  void test('enrollment with a one-time token; the token is single-use and bound to its identity', async () => {
    const tok = await call(s, 'POST', '/v1/directory/enroll-tokens', { token: admin, body: { name: 'user:alice', principal: 'alice-svc' } });
    assert.equal(tok.status, 201, JSON.stringify(tok.body));
    assert.match(tok.body.token, /^kwe_/);
    // Another identity's token does not work.
    const other = await call(s, 'POST', '/v1/directory/enroll-tokens', { token: admin, body: { name: 'service:billing' } });
    assert.equal(await code(dir.enroll('user:alice', other.body.token, laptop)), 'KW_DIR_TOKEN_INVALID');
    const before = await s.store.ktTreeSize();
    const r = await dir.enroll('user:alice', tok.body.token, laptop);
    assert.equal(r.version, 0);
    assert.equal(await s.store.ktTreeSize(), before + 1);
    assert.equal(await code(dir.enroll('user:alice', tok.body.token, phone)), 'KW_DIR_TOKEN_USED');
    const id = await dir.identity('user:alice');
    assert.deepEqual(id?.devices.map((d) => d.id), ['laptop']);
    assert.equal(id?.change.by.kind, 'token');
    // The bound principal's request-signing key is the device's, registered by the directory.
    const keys = await s.store.listSigningKeys('alice-svc');
    assert.deepEqual(keys.map((k) => k.keyId), [laptop.requestKeyId]);
    // A second token cannot enroll a device over existing ones.
    const again = await call(s, 'POST', '/v1/directory/enroll-tokens', { token: admin, body: { name: 'user:alice' } });
    assert.equal(await code(dir.enroll('user:alice', again.body.token, phone)), 'KW_DIR_ALREADY_ENROLLED');
  });

  void test('a device with a forged proof of possession, or signed for a stale version, changes nothing', async () => {
    const tok = await call(s, 'POST', '/v1/directory/enroll-tokens', { token: admin, body: { name: 'service:billing-2' } });
    const dev = await generateDevice('node-1');
    const keys = await devicePublicKeys(dev);
    const at = Date.now();
    const wrongSeed = base64urlnopad.decode((await generateDevice('x')).signSeed);
    const body = (pop: string, version = 0) => ({ token: tok.body.token, name: 'service:billing-2', device: { id: keys.id, hpke: keys.hpke, sign: keys.sign, request: { key_id: keys.request.keyId, key: keys.request.key } }, version, at, pop });
    const size = await s.store.ktTreeSize();
    const forged = await call(s, 'POST', '/v1/directory/enroll', { body: body(signChange(wrongSeed, 'service:billing-2', 'enroll', 0, at, keys)) });
    assert.equal(forged.status, 403);
    assert.equal(forged.body.error.code, 'KW_DIR_BAD_SIGNATURE');
    const stale = await call(s, 'POST', '/v1/directory/enroll', { body: body(signChange(base64urlnopad.decode(dev.signSeed), 'service:billing-2', 'enroll', 3, at, keys), 3) });
    assert.equal(stale.body.error.code, 'KW_DIR_STALE_VERSION');
    const bad = await call(s, 'POST', '/v1/directory/enroll', { body: { ...body('AA'), device: { ...body('AA').device, hpke: { alg: 'x25519', key: 'AAAA' } } } });
    assert.equal(bad.body.error.code, 'KW_DIR_RECORD_INVALID');
    assert.equal(await s.store.ktTreeSize(), size, 'nothing entered the log');
    assert.equal((await s.store.getDirEnrollTokenByHash((await import('node:crypto')).createHash('sha256').update(tok.body.token).digest('hex')))?.usedAt, null, 'the token is still unused');
    // And the honest enrollment then works.
    assert.equal((await dir.enroll('service:billing-2', tok.body.token, dev)).version, 0);
  });

  void test('approval by an existing device; both signatures are checked', async () => {
    const half = await dir.approvalPop('user:alice', phone);
    const stranger = await generateDevice('laptop');
    assert.equal(await code(dir.approve('user:alice', stranger, half.keys, half)), 'KW_DIR_BAD_SIGNATURE', 'a key that is not the approver device');
    const r = await dir.approve('user:alice', laptop, half.keys, half);
    assert.equal(r.version, 1);
    const id = await dir.identity('user:alice');
    assert.deepEqual(id?.devices.map((d) => d.id), ['laptop', 'phone']);
    assert.equal(id?.devices[1]?.hpke.alg, 'xwing');
    assert.equal((await s.store.listSigningKeys('alice-svc')).filter((k) => k.revokedAt === null).length, 2);
  });

  void test('sealing recipients resolve every current device with proofs; groups expand', async () => {
    const g = await call(s, 'PUT', '/v1/directory/groups/group:auditors', { token: admin, body: { members: ['user:alice', 'service:billing-2'] } });
    assert.equal(g.status, 200, JSON.stringify(g.body));
    const rs = await dir.recipients(['group:auditors']);
    assert.equal(rs.length, 3);
    assert.deepEqual(rs.map((r) => r.type).sort(), ['x25519', 'x25519', 'xwing']);
    assert.equal(await code(dir.recipients(['user:nobody'])), 'KW_DIR_RECORD_INVALID');
    const bad = await call(s, 'PUT', '/v1/directory/groups/group:x', { token: admin, body: { members: ['user:ghost'] } });
    assert.equal(bad.body.error.code, 'KW_DIR_UNKNOWN_ENTITY');
    const nested = await call(s, 'PUT', '/v1/directory/groups/group:y', { token: admin, body: { members: ['group:auditors'] } });
    assert.equal(nested.status, 400);
  });

  void test('a client refuses a tampered answer (the value changed in transit)', async () => {
    const evil: DirectoryTransport = async (req) => {
      const r = await transport(s)(req);
      if (req.path === '/v1/directory/search' && r.status === 200) {
        const b = r.body as { response: string };
        const bytes = base64urlnopad.decode(b.response);
        bytes[bytes.length - 40]! ^= 1;
        return { status: 200, body: { ...b, response: base64urlnopad.encode(bytes) } };
      }
      return r;
    };
    const victim = await Directory.connect(evil);
    await assert.rejects(victim.recipients(['user:alice']), (e) => isDirectoryError(e));
    // The pinned configuration guards against another log's keys.
    const pinned = await Directory.configuration(transport(s));
    const other = pinned.slice(0, 20) + (pinned[20] === 'A' ? 'B' : 'A') + pinned.slice(21);
    await assert.rejects(Directory.connect(transport(s), { pinned: other }), (e) => isDirectoryError(e, 'KT_BAD_RESPONSE'));
    assert.ok(await Directory.connect(transport(s), { pinned }));
  });

  void test('revocation by a device and by an administrator; self-monitoring reports a key the device did not add', async () => {
    const tablet = await generateDevice('tablet');
    const half = await dir.approvalPop('user:alice', tablet);
    await dir.approve('user:alice', phone, half.keys, half);
    // The laptop only knows laptop and phone: the tablet is unexpected to it.
    const report = await dir.monitorSelf('user:alice', ['laptop', 'phone'], 1);
    assert.deepEqual(report.unexpected.map((d) => d.id), ['tablet']);
    assert.deepEqual(report.changes.map((c) => `${c.op}:${c.device}:${c.by}`), ['approve:tablet:device:phone']);
    // The laptop revokes it, signed.
    const r = await dir.revoke('user:alice', 'tablet', laptop);
    assert.equal(r.version, 3);
    assert.equal((await s.store.getSigningKey(tablet.requestKeyId))?.revokedAt instanceof Date, true, 'its request key is revoked with it');
    // A revoked device can no longer sign changes.
    assert.equal(await code(dir.revoke('user:alice', 'phone', tablet)), 'KW_DIR_NOT_A_DEVICE');
    // An administrator revokes the phone.
    const del = await call(s, 'DELETE', '/v1/directory/identities/user:alice/devices/phone', { token: admin });
    assert.equal(del.status, 200, JSON.stringify(del.body));
    const full = await dir.monitorSelf('user:alice', ['laptop']);
    assert.deepEqual(full.unexpected, []);
    assert.deepEqual(full.changes.map((c) => c.op), ['enroll', 'approve', 'approve', 'revoke', 'revoke']);
    assert.match(full.changes[4]!.by, /^admin:/);
    const unknown = await call(s, 'DELETE', '/v1/directory/identities/user:alice/devices/phone', { token: admin });
    assert.equal(unknown.body.error.code, 'KW_DIR_UNKNOWN_DEVICE');
  });

  void test('safety numbers agree from both sides and change with the keys', async () => {
    const a = (await dir.identity('user:alice'))!;
    const b = (await dir.identity('service:billing-2'))!;
    const n = safetyNumber(a, b);
    assert.match(n, /^(\d{5} ){11}\d{5}$/);
    assert.equal(safetyNumber(b, a), n);
    const other = { ...a, devices: a.devices.map((d) => ({ ...d, sign: b.devices[0]!.sign })) };
    assert.notEqual(safetyNumber(other, b), n);
  });

  void test("the log's keys are the keyholder's: the API has only its public keys, and no key file", async () => {
    const held = await s.keyholder.call('directory-keys', {});
    assert.equal(held.source, 'derived');
    const cfg = await call(s, 'GET', '/v1/directory/config');
    assert.equal(cfg.body.signature_public_key, held.signaturePublicKey.replace(/=+$/, ''));
    assert.equal(cfg.body.vrf_public_key, held.vrfPublicKey.replace(/=+$/, ''));
    assert.equal(existsSync(join(s.dataDir, 'directory.key')), false);
    // The keyholder signed the current head and remembers it.
    const head = await call(s, 'GET', '/v1/directory/head');
    assert.equal(held.lastHead?.size, head.body.tree_size);
  });

  void test('head, consistency, monitor, admin views, audit trail', async () => {
    const head = await call(s, 'GET', '/v1/directory/head');
    assert.equal(head.status, 200);
    assert.equal(head.body.tree_size, await s.store.ktTreeSize());
    const cons = await call(s, 'GET', `/v1/directory/consistency?from=2&to=${head.body.tree_size}`);
    assert.equal(cons.status, 200);
    dir.kt.checkHead({ treeSize: head.body.tree_size, root: base64urlnopad.decode(head.body.root), signature: base64urlnopad.decode(head.body.signature) }, []);
    const mon = await call(s, 'POST', '/v1/directory/monitor', { body: { name: 'user:alice', kind: 'contact', entries: [] } });
    assert.equal(mon.status, 200, JSON.stringify(mon.body));
    const shown = await call(s, 'GET', '/v1/directory/identities/user:alice', { token: admin });
    assert.equal(shown.body.principal, 'alice-svc');
    assert.deepEqual(shown.body.devices.map((d: { id: string }) => d.id), ['laptop']);
    const noAuth = await call(s, 'GET', '/v1/directory/identities');
    assert.equal(noAuth.status, 401);
    const ops = await auditOps(s, 0);
    for (const op of ['directory.enroll_token', 'directory.enroll', 'directory.approve', 'directory.revoke', 'directory.group']) {
      assert.ok(ops.some((e) => e.op === op && e.outcome === 'allowed'), `${op} allowed is audited`);
    }
    assert.ok(ops.some((e) => e.op === 'directory.enroll' && e.code === 'KW_DIR_BAD_SIGNATURE'), 'a refused change is audited with its code');
  });

  void test('the OpenAPI document lists the directory routes', async () => {
    const doc = await call(s, 'GET', '/v1/openapi.json');
    for (const p of ['/v1/directory/search', '/v1/directory/enroll', '/v1/directory/head', '/v1/directory/monitor', '/v1/directory/groups/{name}']) {
      assert.ok(Object.keys(doc.body.paths).includes(p), p);
    }
  });

  void test('a device the server slips in with a forged approver signature is refused by clients', async () => {
    // A compromised API process writes straight into the log, and has the keyholder sign its heads.
    const log = await DirectoryService.open({ store: s.store, keys: new KeyholderDirectorySource(s.keyholder) });
    const current = (await dir.identity('service:billing-2'))!;
    const intruderSecrets = await generateDevice('intruder');
    const keys = await devicePublicKeys(intruderSecrets);
    const version = current.change.version + 1;
    const at = Date.now();
    const pop = signChange(base64urlnopad.decode(intruderSecrets.signSeed), 'service:billing-2', 'approve', version, at, keys);
    const forged = signChange(base64urlnopad.decode(intruderSecrets.signSeed), 'service:billing-2', 'approve', version, at, keys); // not node-1's key
    const value = { v: 1 as const, name: 'service:billing-2', devices: [...current.devices, { ...keys, added: at, addedBy: 'device:node-1' }], change: { op: 'approve' as const, version, at, device: keys, by: { kind: 'device' as const, id: 'node-1' }, pop, sig: forged } };
    await (await log.builder()).update([{ label: entityLabel('service:billing-2'), value: encodeEntityValue(value) }]);
    assert.equal(await code(dir.identity('service:billing-2')), 'KW_DIR_BAD_SIGNATURE');
    assert.equal(await code(dir.recipients(['service:billing-2'])), 'KW_DIR_BAD_SIGNATURE');
  });

  void test('a server without the directory answers KW_DIR_NOT_ENABLED', async () => {
    const plain = await newServer({ schedulerMs: 0 });
    try {
      const r = await call(plain, 'GET', '/v1/directory/config');
      assert.equal(r.status, 404);
      assert.equal(r.body.error.code, 'KW_DIR_NOT_ENABLED');
    } finally {
      await plain.close();
    }
  });

  void DirectoryServiceError;
});
