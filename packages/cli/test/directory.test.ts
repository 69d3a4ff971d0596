/**
 * The directory through the real `keyward` CLI (run from source in a child
 * process) against a real key service over HTTP: enroll, approval request and
 * approval, show, group, seal by name and open with each device, reseal to a
 * group's new membership, safety numbers, self-monitoring that reports a key
 * the device did not add, and revocation. Commands run through the CLI's
 * entry point (`main`) in this process, the first one as a child process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PassThrough, Readable } from 'node:stream';
import { startServer, type RunningServer } from '@keyward/server';
import { main } from '../src/main.js';
import type { Io } from '../src/lib/io.js';
import { CLI_ARGS } from '../../server/test/built.js';

const ROOT = `kw_${'A'.repeat(43)}`;

interface Result { code: number | null; out: string; err: string }

/** `keyward ARGS` in this process: the CLI's own entry point (`main`) with the given stdin and environment. */
async function kw(args: readonly string[], env: Record<string, string>, input = ''): Promise<Result> {
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (d: Buffer) => o.push(d));
  err.on('data', (d: Buffer) => e.push(d));
  const io: Io = { stdin: Readable.from([Buffer.from(input)]), stdout: out, stderr: err, env: { ...env }, prompt: () => Promise.resolve(null) };
  const code = await main(args, io);
  return { code, out: Buffer.concat(o).toString('utf8'), err: Buffer.concat(e).toString('utf8') };
}

/** `keyward ARGS` in a child process, as a user runs it (built or from source: server/test/built.ts). */
function kwProcess(args: readonly string[], env: Record<string, string>, input = ''): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], {
      env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.stdin.end(input);
    child.on('close', (code) => resolve({ code, out: Buffer.concat(out).toString('utf8'), err: Buffer.concat(err).toString('utf8') }));
  });
}

void describe('keyward directory (CLI, real server)', () => {
  let s: RunningServer;
  let dir: string;
  const p = (n: string): string => join(dir, n);
  let admin: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-cli-dir-'));
    s = await startServer({ dev: true, listen: '127.0.0.1:0', logLevel: 'silent', devRootToken: ROOT, schedulerMs: 0, directory: { enabled: true } });
    admin = ROOT;
    writeFileSync(p('admin.txt'), `${admin}\n`);
  });
  after(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const enrollToken = async (name: string): Promise<string> => {
    const r = await fetch(`${s.url}/v1/directory/enroll-tokens`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
    assert.equal(r.status, 201, await r.clone().text());
    return ((await r.json()) as { token: string }).token;
  };

  void test('enroll, approve, show, group, seal by name, reseal, safety number, monitor, revoke', async () => {
    const noToken = { KEYWARD_ADDR: s.url };
    // Alice's laptop enrolls with a one-time token (from stdin, never argv).
    const t1 = await enrollToken('user:alice');
    let r = await kwProcess(['directory', 'enroll', 'user:alice', '--device', p('laptop.json'), '--id', 'laptop', '--json'], noToken, `${t1}\n`);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out), { name: 'user:alice', device: 'laptop', version: 0 });
    assert.equal(readFileSync(p('laptop.json'), 'utf8').includes('signSeed'), true);
    // The token is single-use.
    r = await kw(['directory', 'enroll', 'user:alice', '--device', p('other.json')], noToken, `${t1}\n`);
    assert.equal(r.code, 1);
    assert.match(r.err, /error\[KW_DIR_TOKEN_USED\]/);
    // Her phone asks for approval; the laptop approves.
    r = await kw(['directory', 'approve-request', 'user:alice', '--device', p('phone.json'), '--id', 'phone', '--hpke', 'xwing', '-o', p('req.json')], noToken);
    assert.equal(r.code, 0, r.err);
    r = await kw(['directory', 'approve', p('req.json'), '--device', p('laptop.json'), '--json'], noToken);
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).version, 1);
    // Bob (a service) enrolls.
    const t2 = await enrollToken('service:bob');
    r = await kw(['directory', 'enroll', 'service:bob', '--device', p('bob.json'), '--id', 'node-1'], noToken, `${t2}\n`);
    assert.equal(r.code, 0, r.err);
    r = await kw(['directory', 'show', 'user:alice', '--json'], noToken);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out).devices.map((d: { id: string }) => d.id), ['laptop', 'phone']);

    // Groups (admin): auditors = alice.
    r = await kw(['directory', 'group', 'set', 'group:auditors', 'user:alice', '--token-file', p('admin.txt')], noToken);
    assert.equal(r.code, 0, r.err);

    // Seal by name: each of alice's devices and bob open it.
    writeFileSync(p('msg.txt'), 'quarterly numbers');
    r = await kw(['seal', '-r', 'group:auditors', '-r', 'service:bob', '--directory', s.url, '--json', '-o', p('msg.kw'), p('msg.txt')], noToken);
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).recipients.length, 3);
    const identityFile = (device: string): string => {
      const f = p(`${device}.id`);
      writeFileSync(f, `${(JSON.parse(readFileSync(p(`${device}.json`), 'utf8')) as { device: { hpke: { identity: string } } }).device.hpke.identity}\n`);
      return f;
    };
    for (const d of ['laptop', 'phone', 'bob']) {
      r = await kw(['open', '-i', identityFile(d), p('msg.kw')], noToken);
      assert.equal(r.code, 0, `${d}: ${r.err}`);
      assert.equal(r.out, 'quarterly numbers');
    }
    // A name the directory cannot prove refuses the whole seal.
    r = await kw(['seal', '-r', 'user:nobody', '--directory', s.url, '-o', p('x.kw'), p('msg.txt')], noToken);
    assert.equal(r.code, 1);
    assert.match(r.err, /error\[KW_DIR_RECORD_INVALID\]/);

    // Membership changes: auditors = bob only; reseal moves the stored envelope to it.
    r = await kw(['directory', 'group', 'set', 'group:auditors', 'service:bob', '--token-file', p('admin.txt')], noToken);
    assert.equal(r.code, 0, r.err);
    r = await kw(['reseal', '-r', 'group:auditors', '--device', p('laptop.json'), p('msg.kw')], noToken);
    assert.equal(r.code, 0, r.err);
    r = await kw(['open', '-i', identityFile('laptop'), p('msg.kw')], noToken);
    assert.equal(r.code, 1, 'alice is no longer a recipient');
    r = await kw(['open', '-i', identityFile('bob'), p('msg.kw')], noToken);
    assert.equal(r.out, 'quarterly numbers');

    // Safety numbers agree whoever computes them.
    const n1 = await kw(['directory', 'safety-number', 'user:alice', 'service:bob'], noToken);
    const n2 = await kw(['directory', 'safety-number', 'service:bob', 'user:alice'], noToken);
    assert.equal(n1.code, 0, n1.err);
    assert.match(n1.out, /^(\d{5} ){11}\d{5}\n$/);
    assert.equal(n1.out, n2.out);

    // Self-monitoring: the phone was approved by the laptop, so the laptop expects it; now the
    // phone approves a tablet the laptop never saw: the laptop reports it.
    r = await kw(['directory', 'monitor', '--device', p('laptop.json'), '--json'], noToken);
    assert.equal(r.code, 0, r.err);
    r = await kw(['directory', 'approve-request', 'user:alice', '--device', p('tablet.json'), '--id', 'tablet', '-o', p('req2.json')], noToken);
    assert.equal(r.code, 0, r.err);
    r = await kw(['directory', 'approve', p('req2.json'), '--device', p('phone.json')], noToken);
    assert.equal(r.code, 0, r.err);
    r = await kw(['directory', 'monitor', '--device', p('laptop.json'), '--json'], noToken);
    assert.equal(r.code, 1);
    assert.deepEqual(JSON.parse(r.out).unexpected, ['tablet']);
    assert.match(r.err, /error\[KT_UNEXPECTED_VERSION\]: user:alice has 1 device key\(s\) this device did not add: tablet/);

    // The device file keeps the verified head (rollback and fork checks across runs).
    const saved = JSON.parse(readFileSync(p('laptop.json'), 'utf8')) as { kt: { head: { treeSize: number } } };
    assert.equal(saved.kt.head.treeSize, await s.store.ktTreeSize());

    // The laptop revokes the tablet; an administrator revokes the phone.
    r = await kw(['directory', 'revoke', 'user:alice', 'tablet', '--device', p('laptop.json')], noToken);
    assert.equal(r.code, 0, r.err);
    r = await kw(['directory', 'revoke', 'user:alice', 'phone', '--admin', '--token-file', p('admin.txt'), '--json'], noToken);
    assert.equal(r.code, 0, r.err);
    r = await kw(['directory', 'show', 'user:alice', '--json'], noToken);
    assert.deepEqual(JSON.parse(r.out).devices.map((d: { id: string }) => d.id), ['laptop']);
    // A revoked device cannot sign changes any more.
    r = await kw(['directory', 'revoke', 'user:alice', 'laptop', '--device', p('tablet.json')], noToken);
    assert.equal(r.code, 1);
    assert.match(r.err, /error\[KW_DIR_NOT_A_DEVICE\]/);
  });

});
