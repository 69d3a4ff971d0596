/**
 * `npm run bench:hsm`: operations per second through the PKCS#11 backend
 * (packages/server/src/hsm/token.ts) on a private SoftHSM2 token, beside the
 * software keyholder's own primitives (node:crypto / OpenSSL) doing the same
 * operation in process.
 *
 * In HSM-wrapped mode every data-plane operation runs in the keyholder's
 * memory after the auto-unseal (one RFC 5649 unwrap at start), so its
 * throughput is the software keyholder's (docs/benchmarks.md, "the key service
 * under load"); what goes through the HSM is the unseal, the checkpoint
 * signature (signEd25519Sync, at most one a second) and, for HSM-resident
 * keys, every operation — which is what these numbers bound.
 *
 * Options: --duration-ms=1500  --concurrency=1,4  --sessions=4
 * Needs softhsm2 (scripts/install-test-deps.sh). Prints a Markdown table.
 */
import { execFileSync } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pkcs11Token } from '../packages/server/src/hsm/token.js';
import { aesGcmOpen, aesGcmSeal, aesKwpUnwrap, aesKwpWrap } from '../packages/server/src/keyholder/primitives.js';
import { table } from './lib/harness.js';

const { values: args } = parseArgs({
  options: {
    'duration-ms': { type: 'string', default: '1500' },
    concurrency: { type: 'string', default: '1,4' },
    sessions: { type: 'string', default: '4' },
  },
});
const DURATION = Number(args['duration-ms']);
const LEVELS = args.concurrency.split(',').map(Number);
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';

/** Runs `op` with `concurrency` closed-loop workers for DURATION ms; operations per second. */
async function measure(op: () => unknown, concurrency: number): Promise<number> {
  for (let i = 0; i < 20; i++) await op(); // warm up
  let n = 0;
  const end = performance.now() + DURATION;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      await op();
      n++;
    }
  }));
  return n / ((performance.now() - start) / 1000);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'keyward-bench-hsm-'));
  const tokens = path.join(dir, 'tokens');
  mkdirSync(tokens);
  const conf = path.join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  const pin = randomBytes(8).toString('hex');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--pin', pin, '--so-pin', randomBytes(8).toString('hex')], { stdio: 'pipe' });
  const token = await Pkcs11Token.open({ module: MODULE, tokenLabel: 'bench', pin, sessions: Number(args.sessions) });
  try {
    await token.generate('aes', 'kek');
    await token.generate('ed25519', 'sig');
    await token.generate('hmac', 'mac');
    const material = randomBytes(32);
    const blob = await token.wrapPad('kek', material);
    const iv = randomBytes(12);
    const aad = Buffer.from('{"key":"orders","ns":"billing","version":1}');
    const dataKey = randomBytes(32);
    const ct = await token.encryptGcm('kek', iv, aad, dataKey);
    const msg = Buffer.from('keyward.local/audit\n123456\nq6z0x8Xb0bq7Cq5rQ0a1k2m3n4o5p6q7r8s9t0u1v2w=\n');

    // The software keyholder's equivalents (primitives.ts: node:crypto / OpenSSL).
    const swKek = randomBytes(32);
    const swBlob = aesKwpWrap(swKek, material);
    const swCt = aesGcmSeal(swKek, iv, aad, dataKey);
    const { privateKey } = generateKeyPairSync('ed25519');
    const swMac = randomBytes(32);

    const ops: { name: string; hsm: () => unknown; sw: () => unknown }[] = [
      { name: 'RFC 5649 wrap (32-byte key)', hsm: () => token.wrapPad('kek', material), sw: () => aesKwpWrap(swKek, material) },
      { name: 'RFC 5649 unwrap (auto-unseal)', hsm: () => token.unwrapPad('kek', blob), sw: () => aesKwpUnwrap(swKek, swBlob) },
      { name: 'AES-256-GCM encrypt 32 B (resident aes256)', hsm: () => token.encryptGcm('kek', iv, aad, dataKey), sw: () => aesGcmSeal(swKek, iv, aad, dataKey) },
      { name: 'AES-256-GCM decrypt 32 B (resident aes256)', hsm: () => token.decryptGcm('kek', iv, aad, ct), sw: () => aesGcmOpen(swKek, iv, aad, swCt) },
      { name: 'Ed25519 sign (resident ed25519)', hsm: () => token.signEd25519('sig', msg), sw: () => sign(null, msg, privateKey) },
      { name: 'Ed25519 sign, sync session (checkpoints)', hsm: () => token.signEd25519Sync('sig', msg), sw: () => sign(null, msg, privateKey) },
      { name: 'HMAC-SHA256 (resident hmac-sha256)', hsm: () => token.hmacSha256('mac', msg), sw: () => createHmac('sha256', swMac).update(msg).digest() },
    ];
    const rows: string[][] = [];
    for (const op of ops) {
      const sw = await measure(op.sw, 1);
      const row = [op.name];
      for (const c of LEVELS) row.push(Math.round(await measure(op.hsm, op.name.includes('sync') ? 1 : c)).toLocaleString('en-US'));
      row.push(Math.round(sw).toLocaleString('en-US'));
      rows.push(row);
    }
    process.stdout.write(`\nHSM backend (SoftHSM2 ${softhsmVersion()}, pool of ${args.sessions} sessions) vs software keyholder, ops/s, ${DURATION} ms per cell\n`);
    process.stdout.write(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}, ${new Date().toISOString()}\n\n`);
    process.stdout.write(`${table(['operation', ...LEVELS.map((c) => `HSM, ${c} concurrent`), 'software (node:crypto), 1'], rows)}\n`);
    process.stdout.write('\n(sync signing uses one dedicated session: its concurrency is always 1)\n');
  } finally {
    token.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function softhsmVersion(): string {
  try {
    return execFileSync('softhsm2-util', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
}

await main();
