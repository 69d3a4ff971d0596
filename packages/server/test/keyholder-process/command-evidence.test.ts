/**
 * Evidence from a helper program (issue #8; docs/tee.md §Evidence from a
 * helper program): the keyholder process runs apart with `--evidence
 * command`, and for every channel handshake runs a real program that gets
 * the binding on stdin and prints evidence bytes; the API verifies them with
 * the @keyward/attest verifier of the platform (here Nitro) and pins the PCRs.
 *
 * What is proven, honestly: the plumbing — the binding reaches the program,
 * its bytes reach the API's Nitro verifier, the policy pins PCR0, a failing,
 * hanging, oversized or replaying helper is refused with a typed error.
 * The helper here is a stand-in (fixtures/nitro-evidence.mjs) signing a
 * Nitro-format document with a TEST P-384 chain configured as the Nitro
 * root; no NSM device is involved (real NSM documents cannot carry a fresh
 * binding of ours, and /dev/nsm exists only inside an enclave).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isAttestError, parseReleasePolicy } from '@keyward/attest';
import { AttestedTransport } from '../../src/keyholder/attested-channel.js';
import { KeyholderClient } from '../../src/keyholder/client.js';
import { CommandChannelEvidence, commandEvidenceVerifier } from '../../src/keyholder/command-evidence.js';
import { isProtocolError } from '../../src/keyholder/protocol.js';
import { TcpTransport } from '../../src/keyholder/tcp-transport.js';
import { sealShareForBoot } from '../../src/keyholder/unseal-key.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { makeCert, type TestCert } from '../../../attest/test/helpers.js';
import { KEYHOLDER_ARGS } from '../built.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/nitro-evidence.mjs', import.meta.url));

void describe('keyholder evidence from a helper program (--evidence command, Nitro format)', () => {
  let dir: string;
  let program: string;
  let child: ChildProcess;
  let port: number;
  let root: TestCert;
  const pcr = (i: number) => createHash('sha384').update(`pcr ${i} of the test image`).digest('hex');
  const apiKey = generateKeyPairSync('ed25519');
  const env = () => ({ ...process.env, KW_TEST_NITRO_FIXTURE: join(dir, 'fixture.json') });
  const roots = () => ({ nitro: [root.certPem], amd: [], intel: [] });
  const clientOf = (pcr0: string, nitroRoots: string[] = [root.certPem]) => new KeyholderClient({
    transport: new AttestedTransport(new TcpTransport('127.0.0.1', port), {
      client: { key: apiKey.privateKey, policy: parseReleasePolicy({ platforms: ['aws-nitro'], measurements: { PCR0: pcr0 } }), verifier: commandEvidenceVerifier({ roots: { nitro: nitroRoots, amd: [], intel: [] } }) },
    }),
    autoReconnect: false, connectTimeoutMs: 5000,
  });
  const expectCode = async (p: Promise<unknown>, code: string, reason?: string) => {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(isProtocolError(e), String(e));
      assert.equal(e.code, code, e.message);
      if (reason) assert.equal(e.details.reason, reason, e.message);
      return true;
    });
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-khcmd-'));
    root = makeCert({ subject: '/CN=test nitro root', alg: 'p384', ca: true });
    const inter = makeCert({ subject: '/CN=test nitro intermediate', alg: 'p384', ca: true, issuer: root });
    const leaf = makeCert({ subject: '/CN=test enclave', alg: 'p384', ca: false, issuer: inter });
    const b64 = (c: TestCert) => Buffer.from(c.der).toString('base64');
    writeFileSync(join(dir, 'fixture.json'), JSON.stringify({ keyPem: leaf.keyPem, leaf: b64(leaf), chain: [b64(root), b64(inter)], pcrs: { 0: pcr(0), 1: pcr(1), 2: pcr(2) } }));
    // The helper as a deployment installs it: an executable file at an absolute path.
    program = join(dir, 'nsm-evidence');
    copyFileSync(FIXTURE, program);
    chmodSync(program, 0o755);
    writeFileSync(join(dir, 'api.pub.pem'), apiKey.publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'api.key.pem'), apiKey.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    child = spawn(process.execPath, [...KEYHOLDER_ARGS, '--listen', 'tcp:127.0.0.1:0',
      '--state', join(dir, 'kh', 'keyholder.json'), '--authorized-client', join(dir, 'api.pub.pem'),
      '--evidence', 'command', '--evidence-command', program, '--evidence-platform', 'aws-nitro', '--evidence-timeout-ms', '5000'], {
      cwd: REPO, env: env(), stdio: ['ignore', 'ignore', 'pipe'],
    });
    port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (c: string) => {
        buf += c;
        const m = /"msg":"ready","listen":"tcp:127\.0\.0\.1:(\d+)"/.exec(buf);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`the keyholder exited ${code}: ${buf}`)));
    });
  });

  after(async () => {
    child?.kill('SIGTERM');
    if (child && child.exitCode === null) await new Promise((r) => { child.once('exit', r); setTimeout(r, 3000).unref(); });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  void test('a server pinned to PCR0 verifies the helper\'s Nitro-format evidence and initialises and unseals the keyholder over the channel', async () => {
    let server: RunningServer | undefined;
    try {
      server = await startServer({
        data: mkdtempSync(join(dir, 'api-')), listen: '127.0.0.1:0', logLevel: 'silent', schedulerMs: 0,
        keyholderConnect: `tcp:127.0.0.1:${port}`, keyholderClientKey: join(dir, 'api.key.pem'),
        keyholderPolicy: { platforms: ['aws-nitro'], measurements: { PCR0: pcr(0), PCR2: pcr(2) } }, attest: { nitroRoots: [root.certPem] },
      });
      const init = await server.initialize({ shares: 2, threshold: 2 });
      for (const sh of init.shares) {
        const k = await server.keyholder.call('unseal-key', {});
        await server.keyholder.call('unseal', { share: Buffer.from(await sealShareForBoot(sh.text, k.recipient, k.bootId)).toString('base64url') });
      }
      const st = await server.keyholder.call('status', {});
      assert.deepEqual([st.initialized, st.sealed], [true, false]);
    } finally {
      await server?.close();
    }
  });

  void test('another PCR0 is KW_KEYHOLDER_MEASUREMENT_MISMATCH; a root the API does not trust is KW_KEYHOLDER_ATTESTATION_FAILED', async () => {
    await expectCode(clientOf('ab'.repeat(48)).call('status', {}), 'KW_KEYHOLDER_MEASUREMENT_MISMATCH', 'ATTEST_POLICY_MEASUREMENT_MISMATCH');
    const rogue = makeCert({ subject: '/CN=test nitro root', alg: 'p384', ca: true });
    await expectCode(clientOf(pcr(0), [rogue.certPem]).call('status', {}), 'KW_KEYHOLDER_ATTESTATION_FAILED', 'ATTEST_UNTRUSTED_ROOT');
    const ok = clientOf(pcr(0));
    assert.equal(typeof (await ok.call('status', {})).sealed, 'boolean');
    await ok.close();
  });

  void test('the helper gets the binding; evidence made for another binding, a failing, hanging or oversized helper is refused', async () => {
    const run = (mode: string, timeoutMs = 5000) => {
      process.env.KW_TEST_NITRO_MODE = mode;
      process.env.KW_TEST_NITRO_FIXTURE = join(dir, 'fixture.json');
      try {
        return new CommandChannelEvidence({ program, platform: 'aws-nitro', timeoutMs }).prove({}, new Uint8Array(32).fill(9));
      } finally {
        delete process.env.KW_TEST_NITRO_MODE;
      }
    };
    const pending = commandEvidenceVerifier({ roots: roots() }).challenge('aws-nitro', {});
    const claims = pending.verify(await run(''), new Uint8Array(32).fill(9));
    assert.equal(claims.platform, 'aws-nitro');
    assert.equal(Buffer.from(claims.measurements.PCR0!).toString('hex'), pcr(0));
    // A helper that does not embed the binding (a replayed document): the verifier refuses it.
    assert.throws(() => pending.verify({ evidence: '' }, new Uint8Array(32)), (e: unknown) => isProtocolError(e) && e.code === 'KW_KEYHOLDER_ATTESTATION_FAILED');
    const fixed = await run('fixed');
    assert.throws(() => pending.verify(fixed, new Uint8Array(32).fill(9)), (e: unknown) => isAttestError(e) && e.code === 'ATTEST_NONCE_MISMATCH');
    const unavailable = async (p: Promise<unknown>, message: RegExp) => {
      await assert.rejects(p, (e: unknown) => isProtocolError(e) && e.code === 'KW_KEYHOLDER_UNAVAILABLE' && message.test(e.message));
    };
    await unavailable(run('fail'), /exited 3: no \/dev\/nsm here/);
    const t0 = Date.now();
    await unavailable(run('sleep', 500), /within 500 ms/);
    assert.ok(Date.now() - t0 < 3000);
    await unavailable(run('big'), /more than 65536 bytes/);
    assert.throws(() => new CommandChannelEvidence({ program: 'relative/path', platform: 'aws-nitro' }), (e: unknown) => isProtocolError(e) && e.code === 'KW_INVALID_ARGUMENT');
  });
});
