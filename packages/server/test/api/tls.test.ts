/**
 * Listening rules: HTTPS with PEM files (checked at start), loopback without
 * TLS, non-loopback only with TLS or `insecure: true` (with a loud warning).
 * The certificates are made here with the openssl CLI.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { before, describe, test } from 'node:test';
import { ServerStartError } from '../../src/config.js';
import { newServer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kw-tls-'));
process.once('exit', () => rmSync(dir, { recursive: true, force: true }));

function selfSigned(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const refused = (reason: string, code = 'KW_INVALID_ARGUMENT') => (e: unknown) => {
  assert.ok(e instanceof ServerStartError, String(e));
  assert.equal(e.code, code);
  assert.equal(e.reason, reason);
  return true;
};

void describe('TLS and listening rules', () => {
  let a: { cert: string; key: string };
  let b: { cert: string; key: string };
  before(() => {
    a = selfSigned('a');
    b = selfSigned('b');
  });

  void test('HTTPS: /v1/sys/health over TLS with the CA trusted; an untrusting client is refused', async () => {
    const s = await newServer({ tlsCert: a.cert, tlsKey: a.key });
    try {
      assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const r = await get(`${s.url}/v1/sys/health`, readFileSync(a.cert, 'utf8'));
      assert.equal(r.status, 200);
      const h = JSON.parse(r.body) as { initialized: boolean; keyholder: string };
      assert.deepEqual([h.initialized, h.keyholder], [false, 'up']);
      // Trusting another CA: the handshake fails.
      await assert.rejects(get(`${s.url}/v1/sys/health`, readFileSync(b.cert, 'utf8')));
    } finally {
      await s.close();
    }
  });

  void test('HTTPS on a non-loopback address needs no insecure flag', async () => {
    const s = await newServer({ listen: '0.0.0.0:0', tlsCert: a.cert, tlsKey: a.key });
    try {
      assert.match(s.url, /^https:/);
      const port = new URL(s.url).port;
      const r = await get(`https://127.0.0.1:${port}/v1/sys/health`, readFileSync(a.cert, 'utf8'));
      assert.equal(r.status, 200);
    } finally {
      await s.close();
    }
  });

  void test('unreadable, malformed, incomplete or mismatched TLS files: typed errors before anything starts', async () => {
    await assert.rejects(newServer({ tlsCert: join(dir, 'missing.crt'), tlsKey: a.key }), refused('TLS_UNREADABLE', 'KW_IO'));
    await assert.rejects(newServer({ tlsCert: a.cert, tlsKey: join(dir, 'missing.key') }), refused('TLS_UNREADABLE', 'KW_IO'));
    writeFileSync(join(dir, 'junk.pem'), 'not a certificate\n');
    await assert.rejects(newServer({ tlsCert: join(dir, 'junk.pem'), tlsKey: a.key }), refused('TLS_INVALID'));
    await assert.rejects(newServer({ tlsCert: a.cert, tlsKey: join(dir, 'junk.pem') }), refused('TLS_INVALID'));
    await assert.rejects(newServer({ tlsCert: a.cert, tlsKey: b.key }), refused('TLS_KEY_MISMATCH'));
    await assert.rejects(newServer({ tlsCert: a.cert }), refused('TLS_INCOMPLETE'));
  });

  void test('non-loopback without TLS and without insecure → TLS_REQUIRED', async () => {
    await assert.rejects(newServer({ listen: '0.0.0.0:0' }), refused('TLS_REQUIRED'));
    await assert.rejects(newServer({ listen: '10.1.2.3:8200' }), refused('TLS_REQUIRED'));
    await assert.rejects(newServer({ listen: '0.0.0.0:0', dev: true }), refused('DEV_LOOPBACK_ONLY'));
  });

  void test('non-loopback plain HTTP with insecure: true → allowed, with a loud warning in the log', async () => {
    const log = new PassThrough();
    let text = '';
    log.on('data', (c: Buffer) => { text += c.toString(); });
    const s = await newServer({ listen: '0.0.0.0:0', insecure: true, logStream: log });
    try {
      assert.match(s.url, /^http:\/\//);
      const port = new URL(s.url).port;
      assert.equal((await fetch(`http://127.0.0.1:${port}/v1/sys/health`)).status, 200);
      assert.match(text, /"level":"warn".*INSECURE: listening on 0\.0\.0\.0 with plain HTTP/);
    } finally {
      await s.close();
    }
  });

});
