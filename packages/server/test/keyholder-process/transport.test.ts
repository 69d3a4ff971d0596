/**
 * Framing and failure handling: malformed or oversize frames get a typed
 * error and never take the process down; a killed keyholder is
 * KW_KEYHOLDER_UNAVAILABLE to the API (no crash), and the client reconnects
 * when it comes back.
 */
import assert from 'node:assert/strict';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { KeyholderClient } from '../../src/keyholder/client.js';
import { MAX_FRAME_BYTES } from '../../src/keyholder/protocol.js';
import { FrameDecoder, encodeFrame } from '../../src/keyholder/transport.js';
import { makeInit, newDir, rejectsCode, startKeyholder } from './helpers.js';

const frame = (json: string | Uint8Array): Buffer => {
  const body = typeof json === 'string' ? Buffer.from(json, 'utf8') : Buffer.from(json);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
};

/** A raw connection that collects decoded response frames. */
async function raw(socket: string): Promise<{ s: Socket; next: () => Promise<Record<string, unknown>>; closed: Promise<void> }> {
  const s = createConnection(socket);
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
  const dec = new FrameDecoder();
  const queue: Record<string, unknown>[] = [];
  const waiters: ((v: Record<string, unknown>) => void)[] = [];
  s.on('data', (chunk: Buffer) => {
    for (const p of dec.push(chunk)) {
      const v = JSON.parse(p.toString('utf8')) as Record<string, unknown>;
      const w = waiters.shift();
      if (w) w(v); else queue.push(v);
    }
  });
  s.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  return { s, closed, next: () => new Promise((resolve) => { const v = queue.shift(); if (v) resolve(v); else waiters.push(resolve); }) };
}

const errorCode = (r: Record<string, unknown>) => (r.error as { code: string } | undefined)?.code;

void describe('framing (in process)', () => {
  void test('frames split across chunks and several per chunk decode in order', () => {
    const d = new FrameDecoder();
    const all = Buffer.concat([encodeFrame({ a: 1 }), encodeFrame({ b: 2 }), encodeFrame({ c: 'x'.repeat(1000) })]);
    const got: unknown[] = [];
    for (let i = 0; i < all.length; i += 7) for (const p of d.push(all.subarray(i, i + 7))) got.push(JSON.parse(p.toString('utf8')));
    assert.deepEqual(got, [{ a: 1 }, { b: 2 }, { c: 'x'.repeat(1000) }]);
  });

  void test('an announced length over 1 MiB or of zero breaks the stream with KW_LIMIT_EXCEEDED', () => {
    const big = Buffer.alloc(4);
    big.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
    const d = new FrameDecoder();
    assert.throws(() => d.push(big), (e: { code?: string }) => e.code === 'KW_LIMIT_EXCEEDED');
    assert.deepEqual(d.push(encodeFrame({ ok: 1 })), [], 'nothing after a fatal frame');
    assert.throws(() => new FrameDecoder().push(Buffer.alloc(4)), (e: { code?: string }) => e.code === 'KW_LIMIT_EXCEEDED');
    assert.equal(new FrameDecoder().push(frame('x'.repeat(MAX_FRAME_BYTES))).length, 1, 'exactly 1 MiB is accepted');
  });

  void test('encodeFrame refuses a message over the limit', () => {
    assert.throws(() => encodeFrame({ s: 'x'.repeat(MAX_FRAME_BYTES) }), (e: { code?: string }) => e.code === 'KW_LIMIT_EXCEEDED');
  });
});

void describe('the keyholder process under bad input and failure', () => {
  void test('malformed frames get typed errors on a connection that stays usable; oversize ones close it; the process stays up', async () => {
    const kh = await startKeyholder();
    try {
      const c = await raw(kh.socket);
      c.s.write(frame('{not json'));
      let r = await c.next();
      assert.deepEqual([r.id, r.ok, errorCode(r)], [null, false, 'KW_INVALID_ARGUMENT']);
      c.s.write(frame(Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d)));
      r = await c.next();
      assert.equal(errorCode(r), 'KW_INVALID_ARGUMENT', 'invalid UTF-8');
      c.s.write(frame('{"id":5,"op":"launch-missiles","params":{}}'));
      r = await c.next();
      assert.deepEqual([r.id, errorCode(r)], [5, 'KW_INVALID_ARGUMENT']);
      c.s.write(frame('{"id":6,"op":"status","params":{"extra":true}}'));
      r = await c.next();
      assert.deepEqual([r.id, errorCode(r)], [6, 'KW_INVALID_ARGUMENT']);
      c.s.write(frame('{"id":7,"op":"unseal","params":{"share":"a+b/"}}'));
      r = await c.next();
      assert.deepEqual([r.id, errorCode(r)], [7, 'KW_INVALID_ARGUMENT'], 'non-base64url binary');
      c.s.write(frame('[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'));
      r = await c.next();
      assert.equal(errorCode(r), 'KW_INVALID_ARGUMENT');
      c.s.write(frame('{"id":8,"op":"status","params":{}}'));
      r = await c.next();
      assert.deepEqual([r.id, r.ok], [8, true], 'the same connection still serves');

      const big = Buffer.alloc(4);
      big.writeUInt32BE(2 * MAX_FRAME_BYTES, 0);
      c.s.write(big);
      r = await c.next();
      assert.equal(errorCode(r), 'KW_LIMIT_EXCEEDED');
      await c.closed;

      // A frame cut short by the peer going away.
      const half = await raw(kh.socket);
      half.s.end(frame('{"id":1,"op":"status"}').subarray(0, 10));
      await half.closed;

      assert.equal(kh.child.exitCode, null, 'the process is still running');
      assert.equal((await kh.client.call('status', {})).initialized, false);
    } finally {
      await kh.stop();
    }
  });

  void test('SIGKILL: the client reports KW_KEYHOLDER_UNAVAILABLE (no crash) and reconnects to a restarted keyholder', async () => {
    const dir = newDir();
    const init = await makeInit(3, 2);
    const kh = await startKeyholder(dir);
    const api = KeyholderClient.unix(join(dir, 'keyholder.sock'), { backoff: { initialMs: 20, maxMs: 100 }, timeoutMs: 5000 });
    let kh2: Awaited<ReturnType<typeof startKeyholder>> | undefined;
    try {
      await api.call('init-state', { state: init.state });
      assert.equal(api.connected, true);
      kh.child.kill('SIGKILL');
      const exit = await kh.exited;
      assert.equal(exit.signal, 'SIGKILL');
      await rejectsCode(() => api.call('status', {}), 'KW_KEYHOLDER_UNAVAILABLE');
      await rejectsCode(() => api.call('status', {}), 'KW_KEYHOLDER_UNAVAILABLE');
      assert.equal(api.connected, false);

      // Restart on the same directory: the stale socket is replaced, the state is kept, the client comes back.
      kh2 = await startKeyholder(dir);
      let st;
      for (let i = 0; i < 100 && !st; i++) {
        st = await api.call('status', {}).catch(async (e: unknown) => {
          if ((e as { code?: string }).code !== 'KW_KEYHOLDER_UNAVAILABLE') throw e;
          await new Promise((r) => setTimeout(r, 20));
          return undefined;
        });
      }
      assert.ok(st, 'the client reconnected');
      assert.equal(st.initialized, true);
      assert.equal(st.sealed, true);
      assert.equal(st.initId, init.state.custody.initId);
    } finally {
      await api.close();
      await kh2?.stop();
    }
  });

  void test('a second keyholder refuses a socket that is live', async () => {
    const kh = await startKeyholder();
    try {
      await assert.rejects(() => startKeyholder(kh.dir), /exited \(1\)/);
      assert.equal((await kh.client.call('status', {})).initialized, false);
    } finally {
      await kh.stop();
    }
  });

  void test('a damaged state file stops the keyholder instead of letting it start uninitialized', async () => {
    const dir = newDir();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'keyholder.json'), '{"format":1,"custody":', { mode: 0o600 });
    await assert.rejects(() => startKeyholder(dir), /exited \(1\)/);
  });

  void test('bad arguments exit 2', async () => {
    await assert.rejects(() => startKeyholder(newDir(), ['--bogus']), /exited \(2\)/);
  });
});

void describe('KeyholderClient against a misbehaving peer (in process)', () => {
  async function fakeServer(onConn: (s: Socket) => void): Promise<{ path: string; close: () => Promise<void> }> {
    const path = join(newDir(), 'fake.sock');
    const server = createServer(onConn);
    await new Promise<void>((r) => server.listen(path, r));
    return { path, close: () => new Promise<void>((r) => server.close(() => r())) };
  }

  void test('no answer: KW_KEYHOLDER_TIMEOUT; connection dropped mid-request: KW_KEYHOLDER_UNAVAILABLE', async () => {
    const sockets: Socket[] = [];
    const srv = await fakeServer((s) => { sockets.push(s); s.on('error', () => undefined); });
    const c = KeyholderClient.unix(srv.path, { timeoutMs: 100, autoReconnect: false });
    try {
      await rejectsCode(() => c.call('status', {}), 'KW_KEYHOLDER_TIMEOUT');
      const inFlight = c.call('status', {}, { timeoutMs: 5000 });
      await new Promise((r) => setTimeout(r, 20));
      for (const s of sockets) s.destroy();
      await rejectsCode(() => inFlight, 'KW_KEYHOLDER_UNAVAILABLE');
    } finally {
      await c.close();
      await srv.close();
    }
  });

  void test('a peer that answers garbage or results off-schema cannot inject values', async () => {
    const srv = await fakeServer((s) => {
      const d = new FrameDecoder();
      s.on('data', (chunk: Buffer) => {
        for (const p of d.push(chunk)) {
          const { id } = JSON.parse(p.toString('utf8')) as { id: number };
          s.write(frame('not json'));
          s.write(encodeFrame({ id, ok: true, result: { initialized: 'yes' } }));
        }
      });
      s.on('error', () => undefined);
    });
    const c = KeyholderClient.unix(srv.path, { timeoutMs: 2000, autoReconnect: false });
    try {
      await rejectsCode(() => c.call('status', {}), 'KW_INTERNAL');
    } finally {
      await c.close();
      await srv.close();
    }
  });

  void test('nothing listening: KW_KEYHOLDER_UNAVAILABLE at once, then backoff', async () => {
    const c = KeyholderClient.unix(join(newDir(), 'none.sock'), { backoff: { initialMs: 10_000 }, autoReconnect: false });
    await rejectsCode(() => c.call('status', {}), 'KW_KEYHOLDER_UNAVAILABLE');
    const t = Date.now();
    await rejectsCode(() => c.call('status', {}), 'KW_KEYHOLDER_UNAVAILABLE');
    assert.ok(Date.now() - t < 100, 'fails fast while backing off');
    await c.close();
  });
});
