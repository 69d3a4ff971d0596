/**
 * The enclave-ready keyholder (issue #8; docs/tee.md §Enclave-ready keyholder):
 * the reproducible keyholder bundle runs as its own process on TCP behind the
 * attested channel; its "loader" (this test) extends SHA-256 of the bundle
 * into PCR 16 of a real software TPM (swtpm), and the API pins that PCR.
 *
 * Proven: a real server runs init, unseal and its audit over the channel, and
 * the bytes between them (recorded by a TCP proxy) carry no plaintext; a
 * keyholder with another measurement is refused with
 * KW_KEYHOLDER_MEASUREMENT_MISMATCH; replayed evidence with
 * KW_KEYHOLDER_ATTESTATION_FAILED (ATTEST_NONCE_MISMATCH); an API key the
 * keyholder does not authorize with KW_KEYHOLDER_CHANNEL_REFUSED; a record
 * altered in transit closes the channel.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseReleasePolicy } from '@keyward/attest';
import { AttestedTransport, type ChannelEvidenceProvider } from '../../src/keyholder/attested-channel.js';
import { KeyholderClient } from '../../src/keyholder/client.js';
import { isProtocolError } from '../../src/keyholder/protocol.js';
import { TcpTransport } from '../../src/keyholder/tcp-transport.js';
import { Tpm2ChannelEvidence, tpmChannelVerifier } from '../../src/keyholder/tpm-evidence.js';
import { sealShareForBoot } from '../../src/keyholder/unseal-key.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { SoftTpm } from '../../../attest/test/swtpm.js';
// @ts-expect-error -- a plain .mjs script without types
import { buildKeyholder } from '../../../../scripts/build-keyholder.mjs';
import { RUN_BUILT } from '../built.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** A TCP proxy that records every byte in both directions, and can flip one byte of what the keyholder sends. */
class RecordingProxy {
  readonly seen: Buffer[] = [];
  flipNextFromKeyholder = false;
  #server: Server | null = null;
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: number) {}

  async start(): Promise<void> {
    this.#server = createServer((c) => {
      const k = createConnection({ host: '127.0.0.1', port: this.target });
      for (const s of [c, k]) { this.#sockets.add(s); s.on('close', () => this.#sockets.delete(s)); s.on('error', () => undefined); }
      c.on('data', (d: Buffer) => { this.seen.push(Buffer.from(d)); k.write(d); });
      k.on('data', (d: Buffer) => {
        this.seen.push(Buffer.from(d));
        if (this.flipNextFromKeyholder && d.length > 8) { this.flipNextFromKeyholder = false; d = Buffer.from(d); d[d.length - 1]! ^= 1; }
        c.write(d);
      });
      c.on('close', () => k.destroy());
      k.on('close', () => c.destroy());
    });
    await new Promise<void>((r) => this.#server!.listen(0, '127.0.0.1', r));
    this.port = (this.#server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.#server?.close(() => r()));
  }
}

void describe('enclave-ready keyholder: reproducible bundle, TPM-attested TCP channel', () => {
  let tpm: SoftTpm;
  let dir: string;
  let bundleDir: string;
  let measurement: { sha256: string; pcr16: string; file: string };
  let child: ChildProcess;
  let keyholderPort: number;
  let akCtx: string;
  let issuerPem: string;
  const apiKey = generateKeyPairSync('ed25519');
  const roots = (): string[] => [tpm.manufacturerCa().root];
  const pin = (pcr16: string) => parseReleasePolicy({ platforms: ['tpm2'], measurements: { 'sha256:PCR16': pcr16 } });
  const clientOf = (port: number, o: { pcr16?: string; key?: { privateKey: KeyObject } } = {}) => new KeyholderClient({
    transport: new AttestedTransport(new TcpTransport('127.0.0.1', port), { client: { key: (o.key ?? apiKey).privateKey, policy: pin(o.pcr16 ?? measurement.pcr16), verifier: tpmChannelVerifier({ roots: roots() }) } }),
    autoReconnect: false, connectTimeoutMs: 5000,
  });
  const expectCode = async (p: Promise<unknown>, code: string, reason?: string) => {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(isProtocolError(e), String(e));
      assert.equal((e).code, code, (e as Error).message);
      if (reason) assert.equal((e).details.reason, reason);
      return true;
    });
  };

  before(async () => {
    tpm = await SoftTpm.start();
    akCtx = tpm.path(tpm.createAk('khak', 'ecdsa').ctx);
    issuerPem = tpm.manufacturerCa().issuer;
    // Under the checkout (the bundle resolves its dependencies from there); a fresh clone has no .cache yet.
    const cache = join(ROOT, 'node_modules', '.cache');
    mkdirSync(cache, { recursive: true });
    dir = mkdtempSync(join(cache, 'kw-khtest-'));
    bundleDir = join(dir, 'bundle');
    // The reproducible bundle is what runs; its hash is what the "loader" measures into PCR 16.
    measurement = await buildKeyholder(bundleDir) as typeof measurement;
    tpm.extend(16, measurement.sha256);
    assert.equal(Buffer.from(tpm.pcrRead('sha256', [16])[16]!).toString('hex'), measurement.pcr16);

    writeFileSync(join(dir, 'api.pub.pem'), apiKey.publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'api.key.pem'), apiKey.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(join(dir, 'ek-chain.pem'), issuerPem);
    child = spawn(process.execPath, [measurement.file, '--listen', 'tcp:127.0.0.1:0', '--state', join(dir, 'kh', 'keyholder.json'), '--authorized-client', join(dir, 'api.pub.pem'),
      '--evidence', 'tpm2', '--tpm-ak-ctx', akCtx, '--tpm-pcrs', 'sha256:16', '--tpm-ek-chain', join(dir, 'ek-chain.pem')], {
      env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${tpm.port}` }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    keyholderPort = await new Promise<number>((resolve, reject) => {
      let buf = '';
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (c: string) => {
        buf += c;
        const m = /"msg":"ready","listen":"tcp:127\.0\.0\.1:(\d+)"/.exec(buf);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`keyholder exited ${code}: ${buf}`)));
    });
  });

  after(() => {
    child?.kill('SIGTERM');
    tpm?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  void test('the keyholder bundle is reproducible: a second build is byte-identical, so its hash is a publishable measurement', async () => {
    const again = await buildKeyholder(join(dir, 'bundle-2')) as typeof measurement;
    assert.equal(again.sha256, measurement.sha256);
    assert.ok(readFileSync(again.file).equals(readFileSync(measurement.file)));
    assert.ok(!readFileSync(again.file, 'utf8').includes(ROOT), 'no absolute build paths in the bundle');
  });

  void test('the keyholder a built `keyward server` starts is this bundle: what runs is what was measured', { skip: !RUN_BUILT && 'needs dist/ (the test command builds it)' }, async () => {
    const installed = fileURLToPath(new URL('../../dist/keyholder.mjs', import.meta.url));
    assert.ok(readFileSync(installed).equals(readFileSync(measurement.file)), 'dist/keyholder.mjs is the reproducible bundle of this tree');
    const s = await startServer({ data: mkdtempSync(join(dir, 'local-')), listen: '127.0.0.1:0', logLevel: 'silent', schedulerMs: 0, keyholderMode: 'dist' });
    try {
      await s.keyholderReady();
      assert.deepEqual(readFileSync(`/proc/${s.keyholderPid()}/cmdline`, 'utf8').split('\0').slice(1, 2), [installed]);
    } finally {
      await s.close();
    }
  });

  void test('the API verifies the keyholder (TPM quote, pinned PCR 16 = the bundle), then init, unseal and audit run over the channel; the wire carries only ciphertext', async () => {
    const proxy = new RecordingProxy(keyholderPort);
    await proxy.start();
    const apiDir = mkdtempSync(join(dir, 'api-'));
    let server: RunningServer | null = null;
    try {
      server = await startServer({
        data: apiDir, listen: '127.0.0.1:0', logLevel: 'silent', schedulerMs: 0,
        keyholderConnect: `tcp:127.0.0.1:${proxy.port}`, keyholderClientKey: join(dir, 'api.key.pem'),
        keyholderPolicy: { platforms: ['tpm2'], measurements: { 'sha256:PCR16': measurement.pcr16 } },
        attest: { tpmRoots: roots() },
      });
      const init = await server.initialize({ shares: 3, threshold: 2 });
      const secrets: string[] = [];
      for (const sh of init.shares.slice(0, 2)) {
        const k = await server.keyholder.call('unseal-key', {});
        const sealed = Buffer.from(await sealShareForBoot(sh.text, k.recipient, k.bootId)).toString('base64url');
        secrets.push(k.recipient, sealed.slice(0, 40));
        await server.keyholder.call('unseal', { share: sealed });
      }
      const st = await server.keyholder.call('status', {});
      assert.equal(st.sealed, false);
      assert.equal(st.initialized, true);
      const cp = await server.keyholder.call('checkpoint', {});
      assert.ok(cp.size >= 1);
      const wire = Buffer.concat(proxy.seen).toString('latin1');
      assert.ok(wire.length > 2000, 'traffic went through the proxy');
      for (const s of ['"op"', 'unseal', 'status', 'checkpoint', 'init-state', cp.note.slice(0, 30), ...secrets]) {
        assert.ok(!wire.includes(s), `plaintext ${JSON.stringify(s.slice(0, 20))} seen on the wire`);
      }
      // A record altered in transit does not authenticate: the channel closes and the call fails; nothing is answered.
      proxy.flipNextFromKeyholder = true;
      await expectCode(server.keyholder.call('status', {}), 'KW_KEYHOLDER_UNAVAILABLE');
      // The client reconnects with a fresh handshake (new evidence, new keys); the keyholder is still unsealed.
      await server.keyholderReady();
      assert.equal((await server.keyholder.call('status', {})).sealed, false);
    } finally {
      await server?.close();
      await proxy.stop();
    }
  });

  void test('a keyholder whose measurement is not the pinned one is refused (KW_KEYHOLDER_MEASUREMENT_MISMATCH), by the client and at server start', async () => {
    const other = 'aa'.repeat(32);
    const c = clientOf(keyholderPort, { pcr16: other });
    await expectCode(c.call('status', {}), 'KW_KEYHOLDER_MEASUREMENT_MISMATCH', 'ATTEST_POLICY_MEASUREMENT_MISMATCH');
    await c.close();
    await expectCode(startServer({
      data: mkdtempSync(join(dir, 'api-')), listen: '127.0.0.1:0', logLevel: 'silent', schedulerMs: 0,
      keyholderConnect: `tcp:127.0.0.1:${keyholderPort}`, keyholderClientKey: join(dir, 'api.key.pem'),
      keyholderPolicy: { platforms: ['tpm2'], measurements: { 'sha256:PCR16': other } }, attest: { tpmRoots: roots() },
    }), 'KW_KEYHOLDER_MEASUREMENT_MISMATCH');
    // The right pin is accepted by the same keyholder.
    const ok = clientOf(keyholderPort);
    assert.equal(typeof (await ok.call('status', {})).sealed, 'boolean');
    await ok.close();
  });

  void test('an API key the keyholder does not authorize is refused (KW_KEYHOLDER_CHANNEL_REFUSED)', async () => {
    const c = clientOf(keyholderPort, { key: generateKeyPairSync('ed25519') });
    await expectCode(c.call('status', {}), 'KW_KEYHOLDER_CHANNEL_REFUSED');
    await c.close();
  });

  void test('evidence replayed from an earlier handshake is refused (KW_KEYHOLDER_ATTESTATION_FAILED, ATTEST_NONCE_MISMATCH)', async () => {
    // A compromised keyholder host: a fresh credential activation, but the quote of the first handshake's binding.
    const real = new Tpm2ChannelEvidence({ akContext: akCtx, pcrs: 'sha256:16', tcti: `swtpm:host=127.0.0.1,port=${tpm.port}`, ekIntermediatesPem: issuerPem });
    let first: Uint8Array | null = null;
    const replaying: ChannelEvidenceProvider = {
      platform: 'tpm2',
      offer: () => real.offer(),
      prove: (challenge, binding) => { first ??= binding; return real.prove(challenge, first); },
    };
    const tcp = new TcpTransport('127.0.0.1', 0);
    const listener = await new AttestedTransport(tcp, { server: { provider: replaying, authorizedClients: [apiKey.publicKey] } }).listen((s) => { s.on('error', () => undefined); });
    try {
      const connect = () => new AttestedTransport(new TcpTransport('127.0.0.1', tcp.port), { client: { key: apiKey.privateKey, policy: pin(measurement.pcr16), verifier: tpmChannelVerifier({ roots: roots() }) } }).connect({ timeoutMs: 5000 });
      (await connect()).destroy(); // the first handshake is genuine
      await expectCode(connect(), 'KW_KEYHOLDER_ATTESTATION_FAILED', 'ATTEST_NONCE_MISMATCH');
    } finally {
      await listener.close();
      real.close();
    }
  });
});
