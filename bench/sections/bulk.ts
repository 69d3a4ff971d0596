/**
 * (a) Bulk: seal and open one large file, file to file, and the same payload
 * in memory. Rounds are interleaved across implementations, in a new random
 * order each round, so that noise (other load, page cache, disk writeback)
 * hits all of them alike. Before every timed file run, untimed: dirty pages
 * are flushed (`sync`), and a scratch file of the same size is written and
 * deleted, so that the run writes into page-cache memory the guest already
 * holds (on VMs with free page reporting, freshly reused memory costs a host
 * fault per page, whichever program happens to touch it first).
 */
import { createHash, createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier, AlgorithmSuiteIdentifier,
} from '@aws-crypto/client-node';
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { open, seal } from '@keyward/core';
import { openFile, sealFile } from '@keyward/core/node';
import { CLI, probeCli, randomFile, run, type Fixtures } from '../lib/fixtures.js';
import { MB, MiB, fmt, rateStat, syncDisks, table, timeMs, type Stat } from '../lib/harness.js';

export interface BulkRow {
  readonly name: string;
  readonly where: 'file' | 'memory';
  readonly seal: Stat | null;
  readonly open: Stat | null;
  readonly note?: string;
}

interface Candidate {
  readonly name: string;
  readonly where: 'file' | 'memory';
  readonly note?: string;
  /** Seals, then opens; each returns its duration in ms. The open result is checked in round 0. */
  seal(): Promise<number>;
  open(): Promise<number>;
  check(): Promise<boolean>;
  cleanup(): void;
}

const CHUNK = 65536;

/**
 * Raw node:crypto AES-256-GCM over 64 KiB chunks, one fresh cipher per chunk
 * (the in-memory bound). With `contiguous`, the ciphertext (and on open the
 * plaintext) is copied into one preallocated buffer, as any API that returns
 * one buffer must; without, it stays a list of node:crypto's chunk buffers.
 */
function rawAesGcm(data: Uint8Array, contiguous: boolean) {
  const key = randomBytes(32);
  const CIPHER = CHUNK + 16;
  let sealed: Buffer[] = [];
  let opened: Buffer[] = [];
  let sealedAll: Uint8Array | null = null;
  let openedAll: Uint8Array | null = null;
  const nonce = Buffer.alloc(12);
  return {
    seal() {
      sealed = [];
      const out = contiguous ? new Uint8Array(data.length + Math.ceil(data.length / CHUNK) * 16) : null;
      for (let o = 0, i = 0; o < data.length; o += CHUNK, i++) {
        nonce.writeUInt32BE(i, 7);
        const c = createCipheriv('aes-256-gcm', key, nonce);
        const body = c.update(data.subarray(o, o + CHUNK));
        c.final();
        if (out) {
          out.set(body, i * CIPHER);
          out.set(c.getAuthTag(), i * CIPHER + body.length);
        } else {
          sealed.push(body, c.getAuthTag());
        }
      }
      sealedAll = out;
    },
    open() {
      opened = [];
      if (sealedAll) {
        const all = sealedAll;
        const out = (openedAll = new Uint8Array(data.length));
        for (let o = 0, i = 0; o < all.length; o += CIPHER, i++) {
          const end = Math.min(all.length, o + CIPHER);
          nonce.writeUInt32BE(i, 7);
          const d = createDecipheriv('aes-256-gcm', key, nonce);
          d.setAuthTag(all.subarray(end - 16, end));
          out.set(d.update(all.subarray(o, end - 16)), i * CHUNK);
          d.final();
        }
        return;
      }
      for (let k = 0; k < sealed.length; k += 2) {
        nonce.writeUInt32BE(k / 2, 7);
        const d = createDecipheriv('aes-256-gcm', key, nonce);
        d.setAuthTag(sealed[k + 1]!);
        opened.push(d.update(sealed[k]!));
        d.final();
      }
    },
    check: () => (openedAll ? Buffer.from(openedAll.buffer, openedAll.byteOffset, openedAll.byteLength) : Buffer.concat(opened)).equals(data),
    cleanup() { sealed = []; opened = []; sealedAll = null; openedAll = null; },
  };
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file, { highWaterMark: 4 * MiB }).on('data', (c) => h.update(c)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}

/** Writes and deletes `size` bytes of scratch file: the page cache then has that much free, warm memory. */
function warmPageCache(dir: string, size: number): void {
  const scratch = path.join(dir, 'scratch');
  const block = Buffer.alloc(4 * MiB);
  const fd = openSync(scratch, 'w');
  try {
    for (let o = 0; o < size; o += block.length) writeSync(fd, block, 0, Math.min(block.length, size - o));
  } finally {
    closeSync(fd);
    rmSync(scratch, { force: true });
  }
}

/** A new random order of `items` (Fisher–Yates). */
function shuffled<T>(items: readonly T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export async function bulk(f: Fixtures, size: number, rounds: number, log: (s: string) => void): Promise<BulkRow[]> {
  const input = path.join(f.dir, 'bulk.in');
  randomFile(input, size);
  const inputHash = await sha256File(input);
  const prepare = (output: string) => {
    rmSync(output, { force: true });
    syncDisks();
    warmPageCache(f.dir, size);
  };
  const fileCandidate = (name: string, note: string | undefined, sealF: (out: string) => Promise<void>, openF: (sealed: string, out: string) => Promise<void>): Candidate => {
    const slug = name.replace(/[^a-z0-9]+/gi, '-');
    const sealed = path.join(f.dir, `${slug}.sealed`);
    const opened = path.join(f.dir, `${slug}.opened`);
    return {
      name, where: 'file', ...(note ? { note } : {}),
      seal: () => { prepare(sealed); return timeMs(() => sealF(sealed)); },
      open: () => { prepare(opened); return timeMs(() => openF(sealed, opened)); },
      check: async () => (await sha256File(opened)) === inputHash,
      cleanup: () => { rmSync(sealed, { force: true }); rmSync(opened, { force: true }); },
    };
  };

  const candidates: Candidate[] = [];
  const rows: BulkRow[] = [];
  const id = f.identity;
  const r = f.recipient;

  candidates.push(fileCandidate('Keyward sealFile/openFile', 'library, worker threads (default)',
    (out) => sealFile(input, out, { recipients: [r] }),
    async (sealed, out) => { await openFile(sealed, out, { identities: [id] }); }));
  candidates.push(fileCandidate('Keyward sealFile/openFile, workers: 0', 'library, streaming on one thread',
    (out) => sealFile(input, out, { recipients: [r], workers: 0 }),
    async (sealed, out) => { await openFile(sealed, out, { identities: [id], workers: 0 }); }));

  const cliProblem = probeCli(f);
  if (cliProblem === null) {
    candidates.push(fileCandidate('Keyward CLI', 'node packages/cli/bin/keyward.js (process start included)',
      (out) => Promise.resolve(run(process.execPath, [CLI, 'seal', '-r', r.toString(), '-o', out, input])),
      (sealed, out) => Promise.resolve(run(process.execPath, [CLI, 'open', '-i', f.identityFile, '-o', out, sealed]))));
  } else {
    rows.push({ name: 'Keyward CLI', where: 'file', seal: null, open: null, note: `not measured: ${cliProblem}` });
  }

  if (f.ageRecipient && f.ageKeyFile) {
    const ageKey = f.ageKeyFile;
    const ageRecipient = f.ageRecipient;
    candidates.push(fileCandidate('age CLI', 'Go, X25519 + ChaCha20-Poly1305 (process start included)',
      (out) => Promise.resolve(run('age', ['-r', ageRecipient, '-o', out, input])),
      (sealed, out) => Promise.resolve(run('age', ['-d', '-i', ageKey, '-o', out, sealed]))));
  } else {
    rows.push({ name: 'age CLI', where: 'file', seal: null, open: null, note: 'not measured: age is not installed (apt-get install age)' });
  }

  {
    const identity = await generateX25519Identity();
    const e = new Encrypter();
    e.addRecipient(await identityToRecipient(identity));
    const d = new Decrypter();
    d.addIdentity(identity);
    const webIn = (file: string) => Readable.toWeb(createReadStream(file, { highWaterMark: MiB })) as unknown as ReadableStream<Uint8Array>;
    const toFile = (s: ReadableStream<Uint8Array>, out: string) => pipeline(Readable.fromWeb(s as unknown as WebReadableStream<Uint8Array>), createWriteStream(out));
    candidates.push(fileCandidate('age-encryption (typage)', 'JS, X25519 + ChaCha20-Poly1305, Web Streams',
      async (out) => toFile(await e.encrypt(webIn(input)), out),
      async (sealed, out) => toFile(await d.decrypt(webIn(sealed)), out)));
  }

  {
    const { encryptStream, decryptUnsignedMessageStream } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const keyring = new RawAesKeyringNode({
      keyName: 'bench', keyNamespace: 'bench', unencryptedMasterKey: randomBytes(32),
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    });
    const suiteId = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY;
    candidates.push(fileCandidate('@aws-crypto/client-node', 'raw AES keyring, committing suite without signature, 64 KiB frames',
      (out) => pipeline(createReadStream(input, { highWaterMark: MiB }), encryptStream(keyring, { suiteId, frameLength: CHUNK }), createWriteStream(out)),
      (sealed, out) => pipeline(createReadStream(sealed, { highWaterMark: MiB }), decryptUnsignedMessageStream(keyring), createWriteStream(out))));
  }

  // In memory: the same payload as one buffer.
  const data = new Uint8Array(readFileSync(input));
  {
    let env: Uint8Array | null = null;
    let pt: Uint8Array | null = null;
    candidates.push({
      name: 'Keyward seal/open (in memory)', where: 'memory', note: 'one thread',
      seal: () => timeMs(async () => { env = await seal(data, { recipients: [r] }); }),
      open: () => timeMs(async () => { pt = (await open(env!, { identities: [id] })).plaintext; }),
      check: () => Promise.resolve(pt !== null && Buffer.from(pt.buffer, pt.byteOffset, pt.byteLength).equals(data)),
      cleanup: () => { env = null; pt = null; },
    });
  }
  for (const contiguous of [false, true]) {
    const raw = rawAesGcm(data, contiguous);
    candidates.push({
      name: contiguous ? 'raw node:crypto AES-256-GCM, one output buffer' : 'raw node:crypto AES-256-GCM (in memory)', where: 'memory',
      note: contiguous ? 'as above, copied into one preallocated buffer per direction' : '64 KiB chunks, a cipher per chunk, chunk buffers kept (the bound)',
      seal: () => timeMs(() => Promise.resolve(raw.seal())),
      open: () => timeMs(() => Promise.resolve(raw.open())),
      check: () => Promise.resolve(raw.check()),
      cleanup: () => raw.cleanup(),
    });
  }

  const samples = new Map<Candidate, { seal: number[]; open: number[]; error?: string }>(candidates.map((c) => [c, { seal: [], open: [] }]));
  for (let round = 0; round < rounds; round++) {
    for (const c of shuffled(candidates)) {
      const s = samples.get(c)!;
      if (s.error) continue;
      try {
        s.seal.push(size / MB / ((await c.seal()) / 1000));
        s.open.push(size / MB / ((await c.open()) / 1000));
        if (round === 0 && !(await c.check())) s.error = 'opened output differs from the input';
        log(`  ${c.name}: seal ${fmt.rate(s.seal.at(-1)!)} MB/s, open ${fmt.rate(s.open.at(-1)!)} MB/s`);
      } catch (e) {
        s.error = (e as Error).message.split('\n')[0];
        log(`  ${c.name}: failed: ${s.error}`);
      } finally {
        c.cleanup();
      }
    }
  }
  rmSync(input, { force: true });
  for (const c of candidates) {
    const s = samples.get(c)!;
    rows.push({
      name: c.name, where: c.where,
      seal: s.error ? null : rateStat(s.seal), open: s.error ? null : rateStat(s.open),
      ...(s.error ? { note: `failed: ${s.error}` } : c.note ? { note: c.note } : {}),
    });
  }
  return rows;
}

/** The bulk tables: MB/s (best of the rounds, median in brackets) and Keyward's ratio to each row. */
export function bulkTables(rows: readonly BulkRow[], size: number): string {
  const cell = (s: Stat | null) => (s ? `${fmt.rate(s.best)} (${fmt.rate(s.median)})` : '—');
  const ours = (where: 'file' | 'memory') => rows.find((r) => r.where === where && r.name.startsWith('Keyward') && r.seal);
  const render = (where: 'file' | 'memory', title: string) => {
    const k = ours(where);
    const body = rows.filter((r) => r.where === where).map((r) => [
      r.name, cell(r.seal), cell(r.open),
      k?.seal && r.seal ? fmt.ratio(k.seal.best / r.seal.best) : '—',
      k?.open && r.open ? fmt.ratio(k.open.best / r.open.best) : '—',
      r.note ?? '',
    ]);
    return `${title}\n\n${table(['implementation', 'seal MB/s', 'open MB/s', `${k?.name ?? 'Keyward'} ÷ row, seal`, '÷ row, open', 'notes'], body)}`;
  };
  const mib = Math.round(size / MiB);
  return [
    render('file', `(a) Bulk, ${mib} MiB, file → file — MB/s (10^6 B/s), best of the rounds (median)`),
    render('memory', `(a) Bulk, ${mib} MiB, in memory — MB/s, best (median)`),
  ].join('\n\n');
}
