/**
 * Helpers of the witness tests: `keyward witness` (and the malicious log)
 * started as real child processes, and a log of test leaves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_ARGS } from '../built.js';
import { runCliHere } from '../../../cli/test/here.js';

export const MALICIOUS_LOG = fileURLToPath(new URL('./malicious-log.ts', import.meta.url));

const dirs: string[] = [];
process.once('exit', () => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

export function tempDir(prefix = 'kw-witness-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Runs `keyward ARGS` (built or from source: test/built.ts) to completion. */
export function keyward(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...CLI_ARGS, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
    p.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    p.once('error', reject);
    p.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export interface WitnessProcess {
  readonly url: string;
  readonly name: string;
  readonly vkey: string;
  readonly keyFile: string;
  readonly stateDir: string;
  readonly child: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

/** Makes a witness key file with `keyward witness --new-key`. */
export async function newWitnessKey(name: string, dir = tempDir()): Promise<{ keyFile: string; vkey: string }> {
  const keyFile = join(dir, `${name.replace(/\W/g, '_')}.key`);
  const r = await keywardHere(['witness', '--new-key', keyFile, '--name', name, '--json']);
  if (r.code !== 0) throw new Error(`witness --new-key failed: ${r.stderr}`);
  return { keyFile, vkey: (JSON.parse(r.stdout) as { verifier_key: string }).verifier_key };
}

/** Starts `keyward witness` as a child process and waits until it listens. */
export async function startWitnessProcess(opts: { name: string; logKeys: readonly string[]; keyFile?: string; vkey?: string; stateDir?: string; port?: number }): Promise<WitnessProcess> {
  const dir = tempDir();
  const key = opts.keyFile !== undefined ? { keyFile: opts.keyFile, vkey: opts.vkey! } : await newWitnessKey(opts.name, dir);
  const stateDir = opts.stateDir ?? join(dir, 'state');
  const logFiles = opts.logKeys.map((k, i) => { const f = join(dir, `log-${i}.vkey`); writeFileSync(f, `${k}\n`); return f; });
  const child = spawn(process.execPath, [...CLI_ARGS, 'witness', '--key-file', key.keyFile, '--state', stateDir, ...logFiles.flatMap((f) => ['--log', f]), '--listen', `127.0.0.1:${opts.port ?? 0}`, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => { err += c; });
  let timer: NodeJS.Timeout | undefined;
  const info = await new Promise<{ url: string; name: string; verifier_key: string }>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      try { resolve(JSON.parse(out)); } catch { /* not complete yet */ }
    });
    child.once('exit', (code) => reject(new Error(`witness exited (${code}): ${err}`)));
    timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`witness did not start: ${err}`)); }, 30_000);
  }).finally(() => clearTimeout(timer));
  return {
    url: info.url, name: info.name, vkey: info.verifier_key, keyFile: key.keyFile, stateDir, child,
    stderr: () => err,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

/**
 * Runs `keyward ARGS` in this process (the same CLI code as the binary, without
 * the start-up cost of a child process): for the clients of the attack tests.
 */
export async function keywardHere(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await runCliHere(args, { ...process.env });
  return { code: r.code, stdout: r.out, stderr: r.err };
}
