/**
 * Migration of a pre-keyholder directory key file (docs/directory.md §Key custody):
 * the server imports `<data>/directory.key` into its keyholder on first use after
 * unseal, zeroes and deletes it, and from then on the API process holds only public
 * keys — the private bytes appear in no file of the data directory (store, keyholder
 * state) nor in anything the API answers.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { memoryDirectoryKeys } from '@keyward/directory';
import { Directory, generateDevice, type DirectoryTransport } from '@keyward/client';
import { base64urlnopad } from '@scure/base';
import { startServer, type RunningServer } from '../../src/server.js';
import { headLogKey } from '../../src/directory/witness.js';
import { call, enrollAdmin, unsealAll } from '../api/helpers.js';

const data = mkdtempSync(join(tmpdir(), 'kw-dirkeys-'));
let server: RunningServer | null = null;
after(async () => {
  await server?.close();
  rmSync(data, { recursive: true, force: true });
});

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
}

/** Every encoding of `secret` a careless writer could have left. */
const encodings = (secret: Uint8Array): Buffer[] => [Buffer.from(secret), Buffer.from(Buffer.from(secret).toString('hex')), Buffer.from(base64urlnopad.encode(secret).slice(0, 40)), Buffer.from(Buffer.from(secret).toString('base64').slice(0, 40))];

void test('a directory.key file is imported into the keyholder once, then zeroed and deleted; no private byte stays on the API side', async () => {
  const legacy = new Uint8Array(64).map((_, i) => (i * 53 + 7) & 0xff);
  const keyFile = join(data, 'directory.key');
  writeFileSync(keyFile, legacy, { mode: 0o600 });
  server = await startServer({ data, listen: '127.0.0.1:0', logLevel: 'silent', checkpointMs: 200, schedulerMs: 0, directory: { enabled: true } });
  // Not initialised: the directory answers the keyholder's code, and the file is untouched.
  const early = await call(server, 'GET', '/v1/directory/config');
  assert.equal(early.status, 503);
  assert.equal(early.body.error.code, 'KW_NOT_INITIALIZED');
  assert.ok(existsSync(keyFile));

  const init = await server.initialize({ shares: 2, threshold: 2 });
  await unsealAll(server, init.shares);
  const admin = await enrollAdmin(server, init.rootToken);
  const cfg = await call(server, 'GET', '/v1/directory/config');
  assert.equal(cfg.status, 200, JSON.stringify(cfg.body));
  const mem = memoryDirectoryKeys({ signingKey: legacy.slice(0, 32), vrfKey: legacy.slice(32) });
  assert.equal(cfg.body.signature_public_key, base64urlnopad.encode(mem.signaturePublicKey));
  assert.equal(cfg.body.vrf_public_key, base64urlnopad.encode(mem.vrfPublicKey));
  // The witness head log keeps its key (witnesses configured with it before the import still apply).
  assert.equal(cfg.body.head_log_key, headLogKey({ signingKey: legacy.slice(0, 32), vrfKey: legacy.slice(32) }).verifierKey);
  assert.equal(existsSync(keyFile), false, 'the key file is deleted after the import');
  assert.equal((await server.keyholder.call('directory-keys', {})).source, 'imported');

  // Use the log: an enrollment and searches sign heads and prove VRF outputs through the keyholder; the verifying client accepts them.
  const t = await call(server, 'POST', '/v1/directory/enroll-tokens', { token: admin, body: { name: 'user:alice' } });
  assert.equal(t.status, 201, JSON.stringify(t.body));
  const s = server;
  const transport: DirectoryTransport = async ({ method, path, body }) => {
    const r = await call(s, method, path, body !== undefined ? { body } : {});
    return { status: r.status, body: r.body };
  };
  const dir = await Directory.connect(transport);
  const laptop = await generateDevice('laptop', 'x25519');
  await dir.enroll('user:alice', t.body.token as string, laptop);
  assert.deepEqual((await dir.identity('user:alice'))!.devices.map((d) => d.id), ['laptop']);
  const head = await call(server, 'GET', '/v1/directory/head');
  assert.equal(head.status, 200, JSON.stringify(head.body));
  const search = await call(server, 'POST', '/v1/directory/search', { body: { name: 'user:nobody' } });
  assert.equal(search.status, 200, JSON.stringify(search.body));

  // No file of the data directory (SQLite store, WAL, keyholder state, logs) holds a private key, in any encoding.
  const secrets = [legacy.subarray(0, 32), legacy.subarray(32, 64)];
  for (const f of files(data)) {
    if (f.endsWith('.sock')) continue;
    const bytes = readFileSync(f);
    for (const s of secrets) for (const e of encodings(s)) assert.ok(!bytes.includes(e), `${f} holds directory key bytes`);
  }
  // Nor does anything the API answers about the directory.
  const answers = JSON.stringify([cfg.body, head.body, search.body, t.body]);
  for (const s of secrets) assert.ok(!answers.includes(Buffer.from(s).toString('hex')) && !answers.includes(base64urlnopad.encode(s).slice(0, 40)));
});
