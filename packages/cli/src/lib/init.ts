/**
 * `keyward init`: initializing a data directory is `@keyward/server`'s
 * `initDataDir` (packages/server/src/init.ts) — the same code the server
 * runs for `--dev` and `initialize()`:
 *
 *   DIR/                        mode 0700
 *     keyward.db                the SQLite store (0600), whose audit log starts with the sys.init event
 *                               (absent with --store postgres://…: that database holds it)
 *     keyholder.json            the keyholder's state: custody hashes, wrapped checkpoint key (0600)
 *     audit-verifier-key.txt    the audit log's public key, for `keyward audit verify --key` (0600)
 *     shares/share-N.txt        the unseal shares (0600), or share-N.kw.txt sealed to custodians
 *     initial-admin-token       only with --token-file (0600)
 *
 * The initial admin token expires after 24 hours (INIT_TOKEN_TTL_SECONDS).
 */
import type { InitOutcome } from '@keyward/server';
import { serverModule } from './server-modules.js';

// The file names of @keyward/server's init.ts, here so the help text needs no server load.
export const STORE_FILE = 'keyward.db';
export const SHARES_DIR = 'shares';
export const VERIFIER_KEY_FILE = 'audit-verifier-key.txt';
export const TOKEN_FILE = 'initial-admin-token';
/** INIT_TOKEN_TTL_SECONDS of @keyward/server, in hours, for the help text. */
export const INIT_TOKEN_TTL_HOURS = 24;

export interface InitOptions {
  readonly dir: string;
  readonly shares: number;
  readonly threshold: number;
  /** One custodian recipient per share; shares are then sealed, never written in clear. */
  readonly recipients?: readonly string[];
  readonly origin?: string;
  /** Write the token to DIR/initial-admin-token instead of returning it for stdout. */
  readonly tokenToFile?: boolean;
  /** A postgres:// URL: initialize that database instead of DIR/keyward.db. */
  readonly store?: string;
  /** HSM-wrapped mode (docs/hsm.md): module, token label, PIN (from a file or the environment), RFC 5649 mechanism, audit key in the HSM. */
  readonly hsm?: { readonly module: string; readonly tokenLabel: string; readonly pin: string; readonly wrapMechanism: 'pad' | 'kwp'; readonly auditKey: boolean };
}

export type { InitOutcome };

export async function initDataDir(opts: InitOptions): Promise<InitOutcome> {
  const { initDataDir: init } = await serverModule();
  return init(opts.dir, {
    shares: opts.shares, threshold: opts.threshold, tokenToFile: opts.tokenToFile ?? false,
    ...(opts.recipients ? { shareRecipients: opts.recipients } : {}),
    ...(opts.origin !== undefined ? { origin: opts.origin } : {}),
    ...(opts.store !== undefined ? { store: opts.store } : {}),
    ...(opts.hsm !== undefined ? { hsm: opts.hsm } : {}),
  });
}
