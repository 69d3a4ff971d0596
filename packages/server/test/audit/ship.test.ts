/**
 * Audit shipping: segments to a rotated file, an HTTP endpoint and syslog
 * over TCP, each verifying on its own and chaining with the next; resumed
 * from the stored position; re-shipped after a crash without breaking
 * verification; and a sink that loses, edits, reorders or truncates what it
 * was given is caught by verifySegments with the log's public key alone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { AuditShipper, fileSink, httpSink, sinkFromUrl, splitSegments, syslogSink, verifySegments, type ShipPosition } from '../../src/audit/ship.js';
import { verifyExport } from '../../src/audit/verify.js';
import { buildLog, sampleInput } from './helpers.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'keyward-ship-'));
  dirs.push(d);
  return d;
}

function memoryPosition(start = 0): ShipPosition & { value: number } {
  const p = { value: start, get: () => Promise.resolve(p.value), set: (n: number) => { p.value = n; return Promise.resolve(); } };
  return p;
}

/** A log of `n` events with a checkpoint, plus a way to grow it and sign again. */
async function growingLog(n: number) {
  const built = await buildLog(n);
  return {
    ...built,
    grow: async (k: number) => {
      const size = await built.storage.size();
      for (let i = 0; i < k; i++) await built.log.appendEvent(sampleInput(size + i));
      await built.log.checkpoint(built.key.signer);
    },
  };
}

/** The shipped files, oldest first, concatenated. */
function readRotated(file: string): string {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const rotated = readdirSync(dir).filter((f) => f.startsWith(`${base}.`)).map((f) => Number(f.slice(base.length + 1))).sort((a, b) => b - a);
  return [...rotated.map((i) => readFileSync(`${file}.${i}`, 'utf8')), readFileSync(file, 'utf8')].join('');
}

void describe('file sink', () => {
  void test('segments rotate by size, each verifies, and together they chain over the whole log', async () => {
    const { storage, key, grow } = await growingLog(25);
    const file = path.join(tempDir(), 'audit.jsonl');
    const position = memoryPosition();
    const shipper = new AuditShipper({ storage, sink: fileSink(file, { maxBytes: 4000, keep: 50 }), position, segmentEvents: 10 });
    assert.equal(await shipper.tick(), 25);
    await grow(17);
    assert.equal(await shipper.tick(), 42);
    assert.equal(await shipper.tick(), 42, 'nothing new: nothing shipped');
    assert.ok(readdirSync(path.dirname(file)).length > 2, 'the file rotated');
    const text = readRotated(file);
    const segments = splitSegments(text);
    assert.equal(segments.length, 5, '25 = 10+10+5, then 17 = 10+7');
    for (const s of segments) assert.equal(verifyExport(s, { verifierKey: key.vkey }).ok, true);
    const r = verifySegments(text, { verifierKey: key.vkey });
    assert.deepEqual(r.problems, []);
    assert.equal(r.ok, true);
    assert.deepEqual([r.from, r.to], [0, 42]);
    await shipper.stop();
  });

  void test('a crash before the position was stored re-ships a segment; the overlap still verifies', async () => {
    const { storage, key } = await growingLog(12);
    const file = path.join(tempDir(), 'audit.jsonl');
    const position = memoryPosition();
    const shipper = new AuditShipper({ storage, sink: fileSink(file), position, segmentEvents: 5 });
    await shipper.tick();
    position.value = 5; // the last two acknowledgements were lost
    await shipper.tick();
    const text = readFileSync(file, 'utf8');
    assert.equal(splitSegments(text).length, 5);
    assert.equal(verifySegments(text, { verifierKey: key.vkey }).ok, true);
  });

  void test('what a sink can do wrong is caught: a lost segment, an edited event, a reordering, a truncation', async () => {
    const { storage, key, grow } = await growingLog(20);
    const dir = tempDir();
    const file = path.join(dir, 'audit.jsonl');
    const shipper = new AuditShipper({ storage, sink: fileSink(file, { maxBytes: 1, keep: 50 }), position: memoryPosition(), segmentEvents: 5 });
    await shipper.tick();
    await grow(5);
    await shipper.tick();
    const good = readRotated(file);
    const segs = splitSegments(good);
    assert.equal(segs.length, 5);
    const codes = (text: string) => {
      const r = verifySegments(text, { verifierKey: key.vkey });
      assert.equal(r.ok, false);
      return new Set([...r.problems.map((p) => p.code), ...r.segments.flatMap((s) => s.problems.map((p) => p.code))]);
    };
    assert.ok(codes(segs.filter((_, i) => i !== 2).join('')).has('AUDIT_DELETED'), 'a lost segment');
    const edited = segs.slice();
    edited[1] = edited[1]!.replace(/"n":(\d+)/, (_m, n: string) => `"n":${Number(n) + 100}`);
    assert.notEqual(edited[1], segs[1]);
    assert.ok(codes(edited.join('')).has('AUDIT_MODIFIED'), 'an edited event');
    assert.ok(codes([segs[0], segs[2], segs[1], segs[3], segs[4]].join('')).size > 0, 'reordered segments');
    const last = segs[4]!;
    const truncated = segs.slice(0, 4).join('') + last.slice(0, last.lastIndexOf('\n', last.length - 2) + 1);
    assert.ok(codes(truncated).has('AUDIT_TRUNCATED'), 'a truncated segment');
    // a rotated file deleted by whoever holds the sink
    unlinkSync(`${file}.3`);
    assert.equal(verifySegments(readRotated(file), { verifierKey: key.vkey }).ok, false);
  });
});

void describe('network sinks', () => {
  void test('HTTP: a failing endpoint is retried from where it stopped', async () => {
    const { storage, key, grow } = await growingLog(8);
    const received: string[] = [];
    let failNext = true;
    const srv = createHttpServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => {
        if (failNext) { failNext = false; res.writeHead(503).end(); return; }
        assert.equal(req.headers['content-type'], 'application/x-ndjson');
        received.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    const position = memoryPosition();
    const shipper = new AuditShipper({ storage, sink: httpSink(`http://127.0.0.1:${port}/audit`), position, segmentEvents: 4 });
    await assert.rejects(shipper.tick());
    assert.equal(position.value, 0, 'nothing counted as shipped');
    assert.equal(await shipper.tick(), 8);
    await grow(3);
    assert.equal(await shipper.tick(), 11);
    srv.close();
    const r = verifySegments(received.join(''), { verifierKey: key.vkey });
    assert.equal(r.ok, true);
    assert.deepEqual([r.from, r.to], [0, 11]);
  });

  void test('syslog over TCP: RFC 5424 messages, octet-counted; the lines reassemble into verifying segments', async () => {
    const { storage, key } = await growingLog(6);
    let raw = Buffer.alloc(0);
    const srv = createTcpServer((sock) => sock.on('data', (c: Buffer) => { raw = Buffer.concat([raw, c]); }));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    const sink = sinkFromUrl(`syslog://127.0.0.1:${port}`);
    assert.equal(sink.name, 'syslog');
    const shipper = new AuditShipper({ storage, sink: syslogSink('127.0.0.1', port), position: memoryPosition(), segmentEvents: 4 });
    assert.equal(await shipper.tick(), 6);
    await shipper.stop();
    await new Promise((r) => setTimeout(r, 100));
    srv.close();
    const lines: string[] = [];
    for (let off = 0; off < raw.length;) {
      const sp = raw.indexOf(0x20, off);
      const len = Number(raw.subarray(off, sp).toString());
      const msg = raw.subarray(sp + 1, sp + 1 + len).toString();
      assert.match(msg, /^<110>1 \S+ \S+ keyward - audit - /);
      lines.push(msg.replace(/^<110>1 \S+ \S+ keyward - audit - /, ''));
      off = sp + 1 + len;
    }
    assert.equal(lines.length, 2 + 6, 'two headers and six events');
    assert.equal(verifySegments(lines.map((l) => `${l}\n`).join(''), { verifierKey: key.vkey }).ok, true);
  });

  void test('sink specifications: typed refusals for anything unknown', () => {
    assert.equal(sinkFromUrl('file:/tmp/x.jsonl?max_bytes=10&keep=2').name, 'file');
    assert.equal(sinkFromUrl('https://audit.example/ingest').name, 'http');
    for (const bad of ['ftp://x', 'file:', 'file:/x?keep=0', 'file:/x?max_bytes=-1', 'syslog']) {
      assert.throws(() => sinkFromUrl(bad), (e: unknown) => (e as { code?: string }).code === 'KW_INVALID_ARGUMENT', bad);
    }
  });
});
