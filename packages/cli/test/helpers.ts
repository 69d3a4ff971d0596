/**
 * Runs the real, built `keyward` binary (packages/cli/bin/keyward.js →
 * dist/) in a child process, as a user would. Build first: `npm run build`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../bin/keyward.js', import.meta.url));
const DIST_MAIN = fileURLToPath(new URL('../dist/bundle/main.js', import.meta.url));

export interface Result {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
  /** stdout as UTF-8 text. */
  readonly out: string;
}

export interface RunOptions {
  /** Bytes for stdin (stdin is closed empty when absent). */
  readonly input?: Uint8Array | string;
  /** Extra environment; KEYWARD_PASSPHRASE is never inherited from the test runner. */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Contents written to extra pipes at fd 3, 4, … (for --passphrase-file /dev/fd/N). */
  readonly fds?: readonly string[];
}

/**
 * Runs `keyward …`. The child gets its own session (no controlling terminal),
 * so a passphrase prompt cannot block: it fails as it would in CI.
 */
export function kw(args: readonly string[], opts: RunOptions = {}): Promise<Result> {
  assert.ok(existsSync(DIST_MAIN), `build the CLI first (npm run build): ${DIST_MAIN} is missing`);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'KEYWARD_PASSPHRASE' && k !== 'NODE_OPTIONS') env[k] = v;
  Object.assign(env, opts.env ?? {});
  const extra = (opts.fds ?? []).map(() => 'pipe' as const);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe', ...extra], detached: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.stdin.on('error', () => undefined); // the child may exit before reading everything
    (opts.fds ?? []).forEach((text, i) => {
      const w = child.stdio[3 + i] as NodeJS.WritableStream;
      w.on('error', () => undefined);
      w.end(text);
    });
    child.stdin.end(opts.input ?? '');
    child.on('close', (code) => {
      const stdout = Buffer.concat(out);
      resolve({ code, stdout, out: stdout.toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Asserts success (exit 0, empty stderr unless allowed). */
export function ok(r: Result, allowStderr = false): Result {
  assert.equal(r.code, 0, `expected exit 0, got ${r.code}; stderr: ${r.stderr}`);
  if (!allowStderr) assert.equal(r.stderr, '', 'unexpected stderr');
  return r;
}

/** Asserts a failure with `error[CODE]` on stderr and the exit code that code maps to. */
export function fails(r: Result, code: string, exit = code === 'KW_INVALID_ARGUMENT' ? 2 : 1): Result {
  assert.equal(r.code, exit, `expected exit ${exit}, got ${r.code}; stderr: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^error\\[${code}\\]: `, 'm'), `expected error[${code}], got: ${r.stderr}`);
  return r;
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(): { dir: string; path: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-cli-'));
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic test bytes. */
export function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

/** A new identity file; returns its path and recipient. */
export async function newIdentity(path: string, extra: readonly string[] = []): Promise<{ file: string; recipient: string }> {
  const r = ok(await kw(['keygen', ...extra, '-o', path]));
  return { file: path, recipient: r.out.trim() };
}

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Runs a command under a pseudo-terminal (util-linux `script`), answering
 * each prompt matching `promptRe` with the next of `answers`. Resolves with
 * the exit code and everything the terminal showed.
 */
export function withTerminal(argv: readonly string[], answers: readonly string[], promptRe = /passphrase[^:\n]*: /gi): Promise<{ code: number | null; output: string }> {
  const command = argv.map(shellQuote).join(' ');
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.KEYWARD_PASSPHRASE;
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env });
    let output = '';
    let answered = 0;
    const onData = (d: Buffer) => {
      output += d.toString('utf8');
      const prompts = output.match(promptRe)?.length ?? 0;
      while (answered < prompts && answered < answers.length) child.stdin.write(answers[answered++] + '\r');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code, output });
    });
  });
}

export const node = process.execPath;
