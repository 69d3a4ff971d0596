/**
 * sealFile / openFile: the worker-thread path (regular files of
 * PARALLEL_MIN_BYTES or more, path to path) writes the same format as the
 * streaming path and the in-memory API, fails with the same errors, and
 * leaves nothing at the output path (nor a temp file) when it fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isKeywardError } from '../../src/errors.js';
import { CHUNK_SIZE, TAG_LENGTH } from '../../src/format/constants.js';
import { headerLengthFromPreamble } from '../../src/format/header.js';
import { SigningKey } from '../../src/keys/signing.js';
import { HpkeIdentity } from '../../src/recipients/hpke.js';
import { open, seal } from '../../src/seal.js';
import { COLD_PARALLEL_MIN_BYTES, openFile, PARALLEL_MIN_BYTES, sealFile } from '../../src/node/index.js';
import { sharedPool } from '../../src/node/pool.js';

const CIPHER = CHUNK_SIZE + TAG_LENGTH;
const dir = mkdtempSync(path.join(tmpdir(), 'keyward-files-'));
const file = (name: string) => path.join(dir, name);
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const identity = await HpkeIdentity.generate('x25519');
const recipient = await identity.recipient();
const signer = await SigningKey.generate('ed25519');
const verify = [signer.verifyingKey];

/** A file of `size` random bytes; returns its contents. */
function input(name: string, size: number): Buffer {
  const data = randomBytes(size);
  writeFileSync(file(name), data);
  return data;
}

/** The error a call ended with, as "CODE: message", or 'ok'. */
async function failure(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'ok';
  } catch (e) {
    if (!isKeywardError(e)) throw e;
    return `${e.code}: ${e.message}`;
  }
}

const partials = () => readdirSync(dir).filter((n) => n.endsWith('.partial'));

/** The worker path takes files from PARALLEL_MIN_BYTES while workers run (from COLD_PARALLEL_MIN_BYTES before). */
const workersRunning = () => sharedPool.start(2);

const SIZES = {
  'one byte over the threshold': PARALLEL_MIN_BYTES + 1,
  'a whole number of chunks': PARALLEL_MIN_BYTES,
  'a partial final chunk': PARALLEL_MIN_BYTES + 3 * CHUNK_SIZE + 1000,
};

for (const [what, size] of Object.entries(SIZES)) {
  for (const signed of [false, true]) {
    void test(`worker path and in-memory API agree, ${what}${signed ? ', signed' : ''}`, async () => {
      await workersRunning();
      const data = input('in', size);
      const opts = { recipients: [recipient], ...(signed ? { signer } : {}) };
      const openOpts = { identities: [identity], ...(signed ? { verify } : {}) };

      await sealFile(file('in'), file('parallel.kw'), opts);
      assert.ok(sharedPool.running > 0, 'the worker path ran');
      const env = readFileSync(file('parallel.kw'));
      const header = headerLengthFromPreamble(env);
      assert.equal(env.length, header + size + Math.ceil(size / CHUNK_SIZE) * TAG_LENGTH + (signed ? 64 : 0), 'chunked as the format says');
      const inMemory = await open(env, openOpts);
      assert.ok(Buffer.from(inMemory.plaintext).equals(data), 'a file sealed on workers opens in memory');
      assert.equal(inMemory.signature?.verified ?? null, signed ? true : null);

      writeFileSync(file('memory.kw'), await seal(data, opts));
      const info = await openFile(file('memory.kw'), file('out'), openOpts);
      assert.ok(readFileSync(file('out')).equals(data), 'an in-memory envelope opens on workers');
      assert.equal(info.signature?.verified ?? null, signed ? true : null);

      await sealFile(file('in'), file('stream.kw'), { ...opts, workers: 0 });
      await openFile(file('stream.kw'), file('out2'), openOpts);
      assert.ok(readFileSync(file('out2')).equals(data), 'a stream-sealed file opens on workers');
      await openFile(file('parallel.kw'), file('out3'), { ...openOpts, workers: 0 });
      assert.ok(readFileSync(file('out3')).equals(data), 'a file sealed on workers opens on the stream path');
      assert.deepEqual(partials(), []);
    });
  }
}

void test('ChaCha20-Poly1305 payloads on the worker path', async () => {
  await workersRunning();
  const data = input('in', PARALLEL_MIN_BYTES + 777);
  await sealFile(file('in'), file('cc.kw'), { recipients: [recipient], aead: 'chacha20-poly1305' });
  const r = await open(readFileSync(file('cc.kw')), { identities: [identity] });
  assert.equal(r.aead, 'chacha20-poly1305');
  assert.ok(Buffer.from(r.plaintext).equals(data));
  await openFile(file('cc.kw'), file('cc.out'), { identities: [identity] });
  assert.ok(readFileSync(file('cc.out')).equals(data));
});

void test('concurrent calls share the worker pool', async () => {
  await workersRunning();
  const a = input('a', PARALLEL_MIN_BYTES + 5);
  const b = input('b', PARALLEL_MIN_BYTES + 9 * CHUNK_SIZE);
  await Promise.all([
    sealFile(file('a'), file('a.kw'), { recipients: [recipient] }),
    sealFile(file('b'), file('b.kw'), { recipients: [recipient], signer }),
  ]);
  await Promise.all([
    openFile(file('a.kw'), file('a.out'), { identities: [identity] }),
    openFile(file('b.kw'), file('b.out'), { identities: [identity], verify }),
  ]);
  assert.ok(readFileSync(file('a.out')).equals(a));
  assert.ok(readFileSync(file('b.out')).equals(b));
});

/** Ways to damage an envelope of `n` bytes whose payload starts at `h` (signature of `sig` bytes at the end). */
function damages(h: number, sig: number): Record<string, (e: Buffer) => Buffer> {
  const flip = (at: (e: Buffer) => number) => (e: Buffer) => { const c = Buffer.from(e); c[at(e)]! ^= 1; return c; };
  const chunk = (i: number) => h + i * CIPHER;
  const damage: Record<string, (e: Buffer) => Buffer> = {
    'a flipped bit in the header': flip(() => 20),
    'a flipped bit in the header MAC': flip(() => h - 1),
    'a flipped bit in chunk 5': flip(() => chunk(5) + 100),
    'a flipped bit in the last whole chunk': flip((e) => chunk(Math.floor((e.length - sig - h) / CIPHER) - 1) + 7),
    'a flipped bit in the final chunk': flip((e) => e.length - sig - 3),
    'two chunks swapped': (e) => Buffer.concat([e.subarray(0, chunk(3)), e.subarray(chunk(4), chunk(5)), e.subarray(chunk(3), chunk(4)), e.subarray(chunk(5))]),
    'a chunk repeated': (e) => Buffer.concat([e.subarray(0, chunk(4)), e.subarray(chunk(3), chunk(4)), e.subarray(chunk(4))]),
    'cut at a chunk boundary': (e) => e.subarray(0, chunk(100)),
    'cut at a chunk boundary, signature kept': (e) => Buffer.concat([e.subarray(0, chunk(100)), e.subarray(e.length - sig)]),
    'cut inside a chunk': (e) => e.subarray(0, chunk(77) + 1234),
    'the last 10 bytes cut': (e) => e.subarray(0, e.length - 10),
    'one byte appended': (e) => Buffer.concat([e, Buffer.from([0])]),
    'a whole chunk appended': (e) => Buffer.concat([e, e.subarray(chunk(1), chunk(2))]),
    'header only, padded': (e) => Buffer.concat([e.subarray(0, h), Buffer.alloc(PARALLEL_MIN_BYTES)]),
    'not an envelope': () => randomBytes(PARALLEL_MIN_BYTES + 10),
  };
  if (sig) {
    damage['signature stripped'] = (e) => e.subarray(0, e.length - sig);
    damage['a flipped bit in the signature'] = flip((e) => e.length - 5);
  }
  return damage;
}

for (const signed of [false, true]) {
  void test(`damaged envelopes: the worker path fails as the decoder does, and leaves no output${signed ? ' (signed)' : ''}`, async () => {
    await workersRunning();
    input('in', PARALLEL_MIN_BYTES + 2 * CHUNK_SIZE + 4321);
    await sealFile(file('in'), file('good.kw'), { recipients: [recipient], ...(signed ? { signer } : {}) });
    const good = readFileSync(file('good.kw'));
    const openOpts = { identities: [identity], ...(signed ? { verify } : {}) };
    for (const [what, damage] of Object.entries(damages(headerLengthFromPreamble(good), signed ? 64 : 0))) {
      const bad = damage(good);
      writeFileSync(file('bad.kw'), bad);
      rmSync(file('bad.out'), { force: true });
      const expected = await failure(() => open(bad, openOpts));
      assert.notEqual(expected, 'ok', `${what}: the decoder rejects it`);
      assert.equal(await failure(() => openFile(file('bad.kw'), file('bad.out'), openOpts)), expected, `${what}: same error on the worker path`);
      assert.equal(existsSync(file('bad.out')), false, `${what}: no output file`);
      assert.equal(await failure(() => openFile(file('bad.kw'), file('bad.out'), { ...openOpts, workers: 0 })), expected, `${what}: same error on the stream path`);
      assert.equal(existsSync(file('bad.out')), false, `${what}: no output file (stream path)`);
      assert.deepEqual(partials(), [], `${what}: no temp file left`);
    }
  });
}

void test('data after a whole final chunk is KW_TRAILING_DATA on the worker path too', async () => {
  await workersRunning();
  input('in', PARALLEL_MIN_BYTES);
  await sealFile(file('in'), file('whole.kw'), { recipients: [recipient] });
  const env = readFileSync(file('whole.kw'));
  const h = headerLengthFromPreamble(env);
  for (const extra of [env.subarray(h, h + CIPHER), Buffer.concat([env.subarray(h, h + CIPHER), env.subarray(h, h + 10)])]) {
    const bad = Buffer.concat([env, extra]);
    writeFileSync(file('trailing.kw'), bad);
    const expected = await failure(() => open(bad, { identities: [identity] }));
    assert.match(expected, /^KW_TRAILING_DATA/);
    assert.equal(await failure(() => openFile(file('trailing.kw'), file('t.out'), { identities: [identity] })), expected);
    assert.equal(existsSync(file('t.out')), false);
  }
});

void test('signatures on the worker path: the wrong signer and a forged signature are refused', async () => {
  await workersRunning();
  input('in', PARALLEL_MIN_BYTES + 100);
  await sealFile(file('in'), file('signed.kw'), { recipients: [recipient], signer });
  const other = await SigningKey.generate('ed25519');
  assert.match(await failure(() => openFile(file('signed.kw'), file('x'), { identities: [identity], verify: [other.verifyingKey] })), /^KW_SIGNER_UNKNOWN/);
  const env = readFileSync(file('signed.kw'));
  env[env.length - 1]! ^= 0x80;
  writeFileSync(file('forged.kw'), env);
  assert.match(await failure(() => openFile(file('forged.kw'), file('x'), { identities: [identity], verify })), /^KW_SIGNATURE_INVALID/);
  assert.equal(existsSync(file('x')), false);
  // Unsigned when no verification is asked: it opens, and says the signature is unchecked.
  const info = await openFile(file('signed.kw'), file('x'), { identities: [identity] });
  assert.equal(info.signature?.verified, false);
});

void test('I/O failures are KW_IO and leave nothing behind', async () => {
  await workersRunning();
  input('in', PARALLEL_MIN_BYTES + 1);
  assert.match(await failure(() => sealFile(file('in'), path.join(dir, 'missing-dir', 'x.kw'), { recipients: [recipient] })), /^KW_IO/);
  assert.match(await failure(() => sealFile(file('does-not-exist'), file('y.kw'), { recipients: [recipient] })), /^KW_IO/);
  assert.equal(existsSync(file('y.kw')), false);
  assert.deepEqual(partials(), []);
});

void test('small files and stream outputs take the stream path and still work', async () => {
  const data = input('small', 100_000);
  await sealFile(file('small'), file('small.kw'), { recipients: [recipient] });
  assert.ok(Buffer.from((await open(readFileSync(file('small.kw')), { identities: [identity] })).plaintext).equals(data));
  const chunks: Buffer[] = [];
  const { PassThrough } = await import('node:stream');
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => chunks.push(c));
  input('big', PARALLEL_MIN_BYTES + 10);
  await sealFile(file('big'), file('big.kw'), { recipients: [recipient] });
  await openFile(file('big.kw'), sink, { identities: [identity] });
  assert.ok(Buffer.concat(chunks).equals(readFileSync(file('big'))));
});

void test('the worker pool does not keep a process alive', () => {
  // A child seals a file large enough to start the workers and returns; it must exit
  // at once, not when the pool's idle timer fires.
  input('cold', COLD_PARALLEL_MIN_BYTES + 1);
  const script = `
    import { HpkeIdentity } from ${JSON.stringify(new URL('../../src/recipients/hpke.ts', import.meta.url).href)};
    import { sealFile } from ${JSON.stringify(new URL('../../src/node/index.ts', import.meta.url).href)};
    import { sharedPool } from ${JSON.stringify(new URL('../../src/node/pool.ts', import.meta.url).href)};
    const id = await HpkeIdentity.generate('x25519');
    await sealFile(${JSON.stringify(file('cold'))}, ${JSON.stringify(file('child.kw'))}, { recipients: [await id.recipient()] });
    const workers = sharedPool.running;
    const sealedAt = performance.now();
    process.on('exit', () => process.stdout.write(JSON.stringify({ workers, ms: performance.now() - sealedAt })));
  `;
  const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const { workers, ms } = JSON.parse(r.stdout) as { workers: number; ms: number };
  assert.ok(workers > 0, 'the worker path ran');
  assert.ok(existsSync(file('child.kw')));
  assert.ok(ms < 2000, `exited ${ms.toFixed(0)} ms after the seal finished`);
});
