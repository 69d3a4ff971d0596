/**
 * Helpers for the crash tests: the key service as a real process (test/server-runner.mjs),
 * process-tree inspection through /proc, an HTTP client (bearer token and
 * RFC 9421 signed data-plane requests, over real sockets with fetch), unseal,
 * and an audit export read through the API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { armor } from '@keyward/core';
import { signRequest } from '@keyward/client';
import { exportLog } from '../../src/audit/export.js';
import { AuditLog, type AuditStorage } from '../../src/audit/log.js';
import { sealShareForBoot } from '../../src/keyholder/unseal-key.js';
import { SERVER_RUNNER_ARGS } from '../built.js';

export const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

export const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
export const unb64u = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'base64url'));
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Processes

export interface RunnerInfo {
  url: string;
  pid: number;
  keyholderPid: number | null;
  init: { shares: string[]; rootToken: string } | null;
}

export interface Runner {
  readonly child: ChildProcess;
  readonly info: RunnerInfo;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last lines the process wrote on stderr (diagnostics). */
  stderrTail(): string;
}

/** Spawns test/server-runner.mjs on `dataDir` (initialised on its first start) and waits for its ready line. */
export function spawnRunner(dataDir: string, timeoutMs = 60_000): Promise<Runner> {
  const child = spawn(process.execPath, [...SERVER_RUNNER_ARGS, dataDir, '--init', '--checkpoint-ms', '100'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => { err = (err + c).slice(-8000); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return new Promise<Runner>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`runner not ready after ${timeoutMs} ms; stderr: ${err}`)); }, timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      out += c;
      const m = /^KW_RUNNER_READY (.*)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, info: JSON.parse(m[1]!) as RunnerInfo, exited, stderrTail: () => err });
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`runner exited before ready (${code ?? signal}); stderr: ${err}`));
    });
  });
}

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The command line of `pid` ('' if gone). */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Direct children of `pid`, from /proc/<pid>/task/<tid>/children. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
        if (text) out.push(...text.split(/\s+/).map(Number));
      } catch { /* thread gone */ }
    }
  } catch { /* process gone */ }
  return [...new Set(out)];
}

/** Whether a command line runs the keyholder (dist/keyholder.mjs, or keyholder/process from source). */
export const isKeyholderCommand = (cmd: string): boolean => /keyholder\/process\.|keyholder\.mjs/.test(cmd);

/** The keyholder process among the children of the API process `pid`. */
export function keyholderChild(pid: number): number | null {
  return childPids(pid).find((c) => isKeyholderCommand(cmdline(c)) && isAlive(c)) ?? null;
}

/** Waits until `pred` holds (polling), or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 20_000, stepMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** SIGKILLs `pid` (if alive) and waits until it is gone. */
export async function killAndWait(pid: number): Promise<void> {
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  await waitFor(`pid ${pid} to die`, () => !isAlive(pid), 10_000, 10);
}

// ---------------------------------------------------------------------------
// HTTP

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- responses are checked field by field
export interface Res { status: number; body: any }

export interface Device { keyId: string; seed: Uint8Array }

/** A client of one running API process (base URL), over real sockets. */
export class Api {
  constructor(readonly base: string) {}

  async call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, opts: { token?: string; body?: unknown } = {}): Promise<Res> {
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let payload: string | undefined;
    if (opts.body !== undefined) { payload = JSON.stringify(opts.body); headers['content-type'] = 'application/json'; }
    const r = await fetch(this.base + path, { method, headers, ...(payload !== undefined ? { body: payload } : {}), signal: AbortSignal.timeout(30_000) });
    const text = await r.text();
    let body: unknown = text;
    try { body = JSON.parse(text); } catch { /* text */ }
    return { status: r.status, body };
  }

  /** A data-plane POST signed like a client (RFC 9421, label kw); returns the signature fields too. */
  async signed(token: string, device: Device, path: string, body: unknown): Promise<Res & { sig: Record<string, string> }> {
    const text = JSON.stringify(body);
    const url = this.base + path;
    const headers = { 'content-type': 'application/json' };
    const sig = signRequest({ method: 'POST', url, headers, body: new TextEncoder().encode(text) }, { keyId: device.keyId, privateKey: device.seed, label: 'kw' }) as unknown as Record<string, string>;
    const r = await fetch(url, { method: 'POST', headers: { ...headers, authorization: `Bearer ${token}`, ...sig }, body: text, signal: AbortSignal.timeout(30_000) });
    const t = await r.text();
    let parsed: unknown = t;
    try { parsed = JSON.parse(t); } catch { /* text */ }
    return { status: r.status, body: parsed, sig };
  }

  /** Submits shares until the keyholder is unsealed (each sealed to the current boot key). */
  async unseal(shares: readonly string[]): Promise<void> {
    for (const share of shares) {
      const k = await this.call('GET', '/v1/sys/unseal-key');
      if (k.status === 409 || k.body?.error?.code === 'KW_ALREADY_UNSEALED') return;
      if (k.status !== 200) throw new Error(`unseal-key: ${k.status} ${JSON.stringify(k.body)}`);
      const sealed = armor(await sealShareForBoot(share, k.body.recipient, k.body.boot));
      const r = await this.call('POST', '/v1/sys/unseal', { body: { share: sealed } });
      if (r.status !== 200) throw new Error(`unseal: ${r.status} ${JSON.stringify(r.body)}`);
      if (r.body.sealed === false) return;
    }
    throw new Error('still sealed after every share');
  }

  /** Every stored audit event (index, text), read in pages until a short page. */
  async allEvents(token: string): Promise<{ index: number; event: string }[]> {
    const out: { index: number; event: string }[] = [];
    for (let from = 0; ; from += 1000) {
      const r = await this.call('GET', `/v1/audit/events?from=${from}&to=${from + 1000}`, { token });
      if (r.status !== 200) throw new Error(`audit events: ${r.status} ${JSON.stringify(r.body)}`);
      out.push(...(r.body.events as { index: number; event: string }[]));
      if (r.body.events.length < 1000) return out;
    }
  }

  /** The audit export (export.ts format) of the log as the API serves it, against the latest stored checkpoint. */
  async exportAudit(token: string, origin: string): Promise<{ text: string; note: string; size: number }> {
    const cp = await this.call('GET', '/v1/audit/checkpoint', { token });
    if (cp.status !== 200) throw new Error(`audit checkpoint: ${cp.status} ${JSON.stringify(cp.body)}`);
    const note = cp.body.note as string;
    const storage: AuditStorage = {
      append: () => Promise.reject(new Error('read only')),
      read: async (from, to) => {
        const r = await this.call('GET', `/v1/audit/events?from=${from}&to=${Math.min(to, from + 1000)}`, { token });
        if (r.status !== 200) throw new Error(`audit events: ${r.status} ${JSON.stringify(r.body)}`);
        return (r.body.events as { index: number; event: string }[]).map((e) => ({ index: e.index, event: new TextEncoder().encode(e.event) }));
      },
      size: () => Promise.reject(new Error('not needed')),
      latestCheckpoint: () => Promise.resolve(note),
      saveCheckpoint: () => Promise.reject(new Error('read only')),
    };
    const text = await exportLog(new AuditLog(storage, { origin }), { checkpoint: note });
    return { text, note, size: cp.body.size as number };
  }
}

/** The keyholder's state file (public parts only are used: origin, verifier key, last checkpoint). */
export function readKeyholderState(dataDir: string): { audit: { origin: string; verifierKey: string }; lastCheckpoint: { size: number; root: string } | null } {
  return JSON.parse(readFileSync(join(dataDir, 'keyholder.json'), 'utf8')) as never;
}
