/**
 * Streaming seal/open of a 2 GiB input adds less than 64 MiB resident over
 * the idle process.
 *
 * A child process (memory-child.ts) seals a sparse 2 GiB file with sealFile
 * and opens it with openFile, sampling its RSS every 2 ms; RSS covers the
 * worker threads too. The test itself never holds the data. With less than
 * 10 GB free on the temp file system the input is 1 GiB (the test says so).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statfsSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHUNK_SIZE, TAG_LENGTH } from '../../src/format/constants.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const BUDGET = 64 * MiB;
const CHILD = fileURLToPath(new URL('./memory-child.ts', import.meta.url));

interface Report { idle: number; peakSeal: number; peakOpen: number; sealMs: number; openMs: number }

function runChild(args: string[]): Promise<Report> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`memory-child exited with ${code}: ${err}`));
      else resolve(JSON.parse(out) as Report);
    });
  });
}

/** True when `file` holds only zero bytes at a few spread positions (the input is a sparse file of zeros). */
function zerosAt(file: string, size: number): boolean {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(4096);
    for (const at of [0, Math.floor(size / 3), size - 4096]) {
      readSync(fd, buf, 0, buf.length, at);
      if (buf.some((b) => b !== 0)) return false;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

void test('streaming seal/open of a 2 GiB input adds less than 64 MiB resident over the idle process', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'keyward-memory-'));
  try {
    const fs = statfsSync(dir);
    const free = fs.bavail * fs.bsize;
    const size = free >= 10e9 ? 2 * GiB : GiB;
    if (size !== 2 * GiB) t.diagnostic(`only ${(free / 1e9).toFixed(1)} GB free under ${tmpdir()}: using a 1 GiB input`);
    const input = path.join(dir, 'input');
    writeFileSync(input, '');
    truncateSync(input, size); // sparse: zeros that occupy no disk
    const sealed = path.join(dir, 'sealed.kw');
    const opened = path.join(dir, 'opened');

    const r = await runChild([input, sealed, opened]);
    const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
    t.diagnostic(`${size / GiB} GiB: idle ${mib(r.idle)}; seal +${mib(r.peakSeal - r.idle)} in ${r.sealMs.toFixed(0)} ms; open +${mib(r.peakOpen - r.idle)} in ${r.openMs.toFixed(0)} ms`);

    const chunks = Math.ceil(size / CHUNK_SIZE);
    assert.ok(statSync(sealed).size > size + chunks * TAG_LENGTH, 'the envelope holds every chunk');
    assert.equal(statSync(opened).size, size, 'the opened file has the input size');
    assert.ok(zerosAt(opened, size), 'the opened file holds the input');
    assert.ok(r.peakSeal - r.idle < BUDGET, `sealing added ${mib(r.peakSeal - r.idle)} (budget ${mib(BUDGET)})`);
    assert.ok(r.peakOpen - r.idle < BUDGET, `opening added ${mib(r.peakOpen - r.idle)} (budget ${mib(BUDGET)})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
