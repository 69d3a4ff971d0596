/**
 * Talking to a running key service from the CLI: where it is (`--addr`,
 * `KEYWARD_ADDR`, a comma-separated list tried in turn), the bearer token
 * (never from argv), and HTTP through `@keyward/client`'s KeywardHttpClient
 * (its failover and retry rule: GETs fail over, writes only when the
 * connection provably never opened).
 *
 * Errors of the client, the keyholder modules and the audit module carry
 * their own `KW_…` codes; `serviceErrors` turns them into KeywardErrors with
 * the same code, so `error[CODE]` shows the service's code, not KW_INTERNAL.
 */
import { KeywardError, isKeywardError, type KeywardErrorCode } from '@keyward/core';
import { KeywardHttpClient, type DeviceKey, type HttpMethod } from '@keyward/client';
import { defineCommand, type Command, type CommandDef } from './command.js';
import type { FlagsSpec } from './args.js';
import { usageError } from './errors.js';
import { readFirstLine, type Io, type StdinClaim } from './io.js';

export const ADDR_ENV = 'KEYWARD_ADDR';
export const TOKEN_ENV = 'KEYWARD_TOKEN';
export const TOKEN_FILE_ENV = 'KEYWARD_TOKEN_FILE';
export const DEFAULT_ADDR = 'http://127.0.0.1:8200';

/** Flags shared by the commands that talk to a service. */
export const ADDR_FLAG = {
  addr: { type: 'string', value: 'URL', help: `key service address(es), comma-separated for failover (default $${ADDR_ENV}, else ${DEFAULT_ADDR})` },
} as const satisfies FlagsSpec;

export const TOKEN_FLAGS = {
  ...ADDR_FLAG,
  'token-file': { type: 'string', value: 'FILE', help: `read the bearer token from FILE ("-" = stdin); else $${TOKEN_FILE_ENV}, $${TOKEN_ENV}, stdin` },
} as const satisfies FlagsSpec;

export const TOKEN_DETAILS = `
The address is --addr, else $${ADDR_ENV} (a comma-separated list: tried in
turn on connection errors and 503), else ${DEFAULT_ADDR}. The bearer token is
never a command-line argument: --token-file FILE, else $${TOKEN_FILE_ENV}, else
$${TOKEN_ENV}, else the first line of standard input (a prompt on a terminal).`;

/** The service addresses. */
export function addresses(flag: string | undefined, io: Io): string[] {
  const raw = flag ?? io.env[ADDR_ENV] ?? DEFAULT_ADDR;
  const list = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) usageError(`no key service address: give --addr URL or set ${ADDR_ENV}`);
  return list;
}

/** The bearer token: --token-file, KEYWARD_TOKEN_FILE, KEYWARD_TOKEN, then stdin (or a prompt). */
export async function readToken(flag: string | undefined, io: Io, stdin: StdinClaim): Promise<string> {
  const file = flag ?? nonEmpty(io.env[TOKEN_FILE_ENV]);
  let token: string | null;
  let from: string;
  if (file !== undefined) {
    if (file === '-') stdin.claim('the token');
    token = (await readFirstLine(file, io)).trim();
    from = file === '-' ? 'standard input' : `'${file}'`;
  } else if (nonEmpty(io.env[TOKEN_ENV]) !== undefined) {
    token = io.env[TOKEN_ENV]!.trim();
    from = `$${TOKEN_ENV}`;
  } else if (io.stdin.isTTY) {
    token = await io.prompt('Token: ');
    from = 'the terminal';
  } else {
    stdin.claim('the token');
    token = (await readFirstLine('-', io)).trim();
    from = 'standard input';
  }
  if (token === null || token === '') {
    usageError(`a bearer token is needed: use --token-file FILE, ${TOKEN_FILE_ENV}, ${TOKEN_ENV} or standard input (got nothing from ${from})`);
  }
  if (!/^[\x21-\x7e]+$/.test(token)) usageError(`the token from ${from} is not printable ASCII`);
  return token;
}

const nonEmpty = (s: string | undefined) => (s === undefined || s === '' ? undefined : s);

/**
 * Admin and system calls carry no request signature, so the client's device
 * key is a throwaway that is never used (KeywardHttpClient requires one).
 */
function unusedDevice(): DeviceKey {
  return { keyId: 'unused', signingSeed: globalThis.crypto.getRandomValues(new Uint8Array(32)) };
}

export interface ServiceOptions {
  readonly addresses: readonly string[];
  /** Bearer token; null for the unauthenticated system routes. */
  readonly token: string | null;
  readonly device?: DeviceKey;
  /** Allow http to non-loopback hosts. */
  readonly insecure?: boolean;
}

export function httpClient(opts: ServiceOptions): KeywardHttpClient {
  return new KeywardHttpClient({
    addresses: opts.addresses,
    token: opts.token ?? 'none',
    device: opts.device ?? unusedDevice(),
    allowInsecureHttp: opts.insecure ?? false,
  });
}

/** One JSON call; the body of the answer. */
export async function call<T = Record<string, unknown>>(opts: ServiceOptions, method: HttpMethod, path: string, body?: unknown): Promise<T> {
  const http = httpClient(opts);
  try {
    const res = await http.request<T>({ method, path, ...(body === undefined ? {} : { body }), auth: opts.token !== null });
    return res.body;
  } finally {
    http.dispose();
  }
}

/** A path segment (namespace, key name, id), percent-encoded. */
export const seg = (s: string): string => encodeURIComponent(s);

/** Any error with a `KW_…` string code keeps that code; others pass unchanged. */
export function serviceError(e: unknown): unknown {
  if (isKeywardError(e)) return e;
  const code = (e as { code?: unknown } | null)?.code;
  if (e instanceof Error && typeof code === 'string' && /^KW_[A-Z0-9_]+$/.test(code)) {
    return new KeywardError(code as KeywardErrorCode, e.message, { cause: e });
  }
  return e;
}

/** defineCommand, with foreign `KW_…` errors kept under their own code. */
export function defineServiceCommand<S extends FlagsSpec>(def: CommandDef<S>): Command {
  return defineCommand({
    ...def,
    async run(args, ctx) {
      try {
        return await def.run(args, ctx);
      } catch (e) {
        throw serviceError(e);
      }
    },
  });
}

/** Parses a `ns/name` key reference. */
export function keyRef(s: string | undefined, what = 'KEY'): { ns: string; name: string } {
  if (s === undefined) usageError(`${what} is missing: give it as NAMESPACE/NAME`);
  const i = s.indexOf('/');
  const ns = s.slice(0, i);
  const name = s.slice(i + 1);
  if (i < 0 || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(ns) || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    usageError(`${what} ${JSON.stringify(s.slice(0, 140))} is not NAMESPACE/NAME (each 1–64 of A–Z a–z 0–9 . _ -)`);
  }
  return { ns, name };
}
