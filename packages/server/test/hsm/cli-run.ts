/**
 * Running the real `keyward` CLI (built or from source: test/built.ts) and `keyward server` processes
 * in the HSM tests: rewrap, outage under HTTP load, PostgreSQL nodes.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { CLI_ARGS } from '../built.js';
import { runCliHere } from '../../../cli/test/here.js';

export const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

export interface Run { code: number | null; out: string; err: string }

export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS' && !k.startsWith('KEYWARD_')) env[k] = v;
  return { ...env, ...extra };
}

export function kw(args: string[], extra: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [...CLI_ARGS, ...args], { cwd: REPO, env: childEnv(extra), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

/**
 * Runs `keyward ARGS` in this process: the same `main` as the binary (argument parsing, commands,
 * error → exit code), with the environment a child would get, without a child's start-up cost
 * (~2 s of CPU per spawn here). The binary itself is run by {@link kw}.
 */
export function kwHere(args: string[], extra: Record<string, string> = {}): Promise<Run> {
  return runCliHere(args, childEnv(extra));
}

export function ok(r: Run): Run {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.err}`);
  return r;
}

export function fails(r: Run, code: string): Run {
  assert.notEqual(r.code, 0, `expected ${code}, but it succeeded: ${r.out}`);
  assert.match(r.err, new RegExp(`error\\[${code}\\]`), r.err);
  return r;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export async function until(what: string, fn: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A `keyward server` process. */
export class ServerProcess {
  private constructor(readonly child: ChildProcess, readonly addr: string, private readonly err: () => string) {}

  static async start(args: string[], extraEnv: Record<string, string> = {}): Promise<ServerProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, [...CLI_ARGS, 'server', '--listen', `127.0.0.1:${port}`, ...args], {
      cwd: REPO, env: childEnv(extraEnv), stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout.resume();
    const deadline = Date.now() + 60_000;
    while (!/keyward server listening/.test(err)) {
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL');
        throw new Error(`server did not start: ${err}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return new ServerProcess(child, `http://127.0.0.1:${port}`, () => err);
  }

  get log(): string { return this.err(); }

  async stop(): Promise<string> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    return this.err();
  }
}
