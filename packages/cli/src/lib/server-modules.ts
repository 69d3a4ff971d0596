/**
 * The parts of `@keyward/server` the CLI runs locally (init, unseal, offline
 * audit verify, `keyward server`).
 *
 * STOP-GAP: `@keyward/server`'s entry point (src/index.ts) does not export
 * these yet. Each is taken from the package's public entry point when it
 * exports the name; otherwise from the module beside it (the same file the
 * entry point would re-export), found from where `@keyward/server` resolves
 * (dist/*.js, or src/*.ts under the `source` condition). Types come from the
 * server's own sources, so a change of signature there breaks the CLI build,
 * not a user's run. Remove the fallback once index.ts exports them.
 */
import { KeywardError } from '@keyward/core';

import type * as CustodyNs from '../../../server/src/keyholder/custody.js';
import type * as CustodiansNs from '../../../server/src/keyholder/custodians.js';
import type * as UnsealKeyNs from '../../../server/src/keyholder/unseal-key.js';
import type * as ShareFileNs from '../../../server/src/keyholder/share-file.js';
import type * as StateNs from '../../../server/src/keyholder/state.js';
import type * as StoreNs from '../../../server/src/store/index.js';
import type * as AuditNs from '../../../server/src/audit/index.js';

export type CustodyModule = typeof CustodyNs;
export type CustodiansModule = typeof CustodiansNs;
export type UnsealKeyModule = typeof UnsealKeyNs;
export type ShareFileModule = typeof ShareFileNs;
export type StateModule = typeof StateNs;
export type StoreModule = typeof StoreNs;
export type AuditModule = typeof AuditNs;

/** The part of the server's ServerConfigInput (packages/server/src/config.ts) the CLI sets. */
export interface ServerConfig {
  readonly listen: string;
  readonly data?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly insecure: boolean;
  readonly dev: boolean;
  readonly devRootToken?: string;
}

/** What the CLI needs back from `startServer`. */
export interface RunningServer {
  readonly url: string;
  readonly rootToken: string | null;
  close(): Promise<void>;
}

export interface ServerEntry {
  startServer(config: ServerConfig): Promise<RunningServer>;
}

let entryUrl: string | undefined;

function siblingUrl(sub: string): string {
  entryUrl ??= import.meta.resolve('@keyward/server');
  return new URL(`./${sub}${entryUrl.endsWith('.ts') ? '.ts' : '.js'}`, entryUrl).href;
}

/**
 * Loads `sub` (e.g. "keyholder/custody") of @keyward/server, preferring the
 * package's public exports when they include `names`.
 */
async function load<T>(sub: string, names: readonly string[]): Promise<T> {
  const pub = (await import('@keyward/server')) as Record<string, unknown>;
  if (names.every((n) => typeof pub[n] !== 'undefined')) return pub as T;
  try {
    return (await import(siblingUrl(sub))) as T;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND') {
      throw new KeywardError('KW_UNSUPPORTED', `this build of @keyward/server has no ${names.join(', ')} (${sub} is missing)`, { cause: e });
    }
    throw e;
  }
}

export const custody = () => load<CustodyModule>('keyholder/custody', ['initCustody']);
export const custodians = () => load<CustodiansModule>('keyholder/custodians', ['splitToRecipients', 'openCustodianShare']);
export const unsealKey = () => load<UnsealKeyModule>('keyholder/unseal-key', ['sealShareForBoot']);
export const shareFile = () => load<ShareFileModule>('keyholder/share-file', ['decodeShareFile']);
export const keyholderState = () => load<StateModule>('keyholder/state', ['buildInitState', 'StateFile']);
export const store = () => load<StoreModule>('store/index', ['openSqliteStore']);
export const audit = () => load<AuditModule>('audit/index', ['verifyExport', 'canonicalJson']);

/** `startServer` (packages/server/src/server.ts); KW_UNSUPPORTED until the HTTP server lands. */
export async function serverEntry(): Promise<ServerEntry> {
  const m = await load<Partial<ServerEntry>>('server', ['startServer']);
  if (typeof m.startServer !== 'function') throw new KeywardError('KW_UNSUPPORTED', 'this build of @keyward/server exports no startServer');
  return m as ServerEntry;
}
