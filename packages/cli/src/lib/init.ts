/**
 * Initializing a data directory (`keyward init`, and `keyward server --dev`):
 *
 *   DIR/                        mode 0700
 *     keyward.db                the SQLite store (0600)
 *     keyholder.json            the keyholder's state: custody hashes, wrapped checkpoint key (0600)
 *     audit-verifier-key.txt    the audit log's public key, for `keyward audit verify --key`
 *     shares/share-N.txt        the unseal shares (0600), or share-N.kw.txt sealed to custodians
 *     initial-admin-token       only with --token-file (0600)
 *
 * The master key lives only in memory: it is split, wraps the checkpoint
 * signing key (buildInitState), and is wiped.
 *
 * The initial admin token is 256 random bits, `kw_<base64url>` (the API's token
 * format); the store keeps only SHA-256(token) (hex) under principal `root` of namespace
 * `sys`, admin = true, and the store meta `init.admin_token_id` names it so
 * the API can restrict it to enrolling the first administrators.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fail } from './errors.js';
import { ioFailure } from './io.js';
import * as server from './server-modules.js';

export const STORE_FILE = 'keyward.db';
export const SHARES_DIR = 'shares';
export const VERIFIER_KEY_FILE = 'audit-verifier-key.txt';
export const TOKEN_FILE = 'initial-admin-token';
export const INIT_PRINCIPAL = 'root';
export const INIT_NAMESPACE = 'sys';
/** The initial token expires: it exists to enroll the first administrators. */
const INIT_TOKEN_TTL_MS = 24 * 3600 * 1000;

export interface InitOptions {
  readonly dir: string;
  readonly shares: number;
  readonly threshold: number;
  /** One custodian recipient per share; shares are then sealed, never written in clear. */
  readonly recipients?: readonly string[];
  readonly origin?: string;
  /** Use this token value instead of a random one (`--dev` with KEYWARD_DEV_ROOT_TOKEN). */
  readonly token?: string;
  /** Keep the share texts in memory for the caller (`--dev` auto-unseal) instead of writing them. */
  readonly keepSharesInMemory?: boolean;
  /** Write the token to DIR/initial-admin-token instead of returning it for stdout. */
  readonly tokenToFile?: boolean;
}

export interface InitOutcome {
  readonly dataDir: string;
  readonly initId: string;
  readonly shares: number;
  readonly threshold: number;
  readonly shareFiles: readonly { readonly index: number; readonly file: string | null; readonly recipient: string | null }[];
  /** In-memory share texts (only with keepSharesInMemory). */
  readonly shareTexts: readonly string[];
  readonly origin: string;
  readonly verifierKey: string;
  readonly tokenId: string;
  readonly token: string;
  readonly tokenFile: string | null;
}

export const newToken = (): string => `kw_${randomBytes(32).toString('base64url')}`;
export const tokenHash = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

async function writeSecret(file: string, text: string): Promise<void> {
  try {
    await fsp.writeFile(file, text, { mode: 0o600, flag: 'wx' });
    await fsp.chmod(file, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') fail('KW_IO', `'${file}' already exists; refusing to overwrite it`);
    throw ioFailure(e, 'write', `'${file}'`);
  }
}

/** Creates DIR (0700) or accepts an existing empty one; refuses anything already there. */
async function prepareDir(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const entries = await fsp.readdir(dir);
    if (entries.length > 0) fail('KW_INVALID_ARGUMENT', `the data directory '${dir}' is not empty (already initialized?); init needs a new or empty directory`);
    await fsp.chmod(dir, 0o700);
  } catch (e) {
    throw ioFailure(e, 'create', `'${dir}'`);
  }
}

export async function initDataDir(opts: InitOptions): Promise<InitOutcome> {
  const dir = path.resolve(opts.dir);
  const { initCustody } = await server.custody();
  const { buildInitState, StateFile, STATE_FILE_NAME } = await server.keyholderState();
  const { openSqliteStore } = await server.store();
  if (opts.recipients && opts.recipients.length !== opts.shares) {
    fail('KW_INVALID_ARGUMENT', `--share-recipients lists ${opts.recipients.length} recipient(s) but there are ${opts.shares} shares: give one recipient per share`);
  }
  await prepareDir(dir);

  const init = await initCustody({ shares: opts.shares, threshold: opts.threshold });
  const origin = opts.origin ?? `keyward.local/audit/${init.initId.slice(0, 16)}`;
  let state;
  try {
    state = buildInitState({ masterKey: init.masterKey, custody: init.state, origin });
  } finally {
    init.masterKey.fill(0);
  }

  // Custodians' shares are sealed first: a bad recipient stops init before anything is written.
  const sealed = opts.recipients ? await (await server.custodians()).splitToRecipients(init.shares, opts.recipients) : null;

  const token = opts.token ?? newToken();
  const tokenId = `tok_${randomBytes(8).toString('hex')}`;
  const now = new Date();
  const store = await openSqliteStore({ path: path.join(dir, STORE_FILE) });
  try {
    await store.transaction(async (tx) => {
      await tx.createNamespace({ name: INIT_NAMESPACE, created: now });
      await tx.createPrincipal({ id: INIT_PRINCIPAL, ns: INIT_NAMESPACE, kind: 'person', name: 'initial administrator (from keyward init)', roles: [], created: now });
      await tx.createToken({ id: tokenId, tokenHash: tokenHash(token), principal: INIT_PRINCIPAL, admin: true, expiresAt: new Date(now.getTime() + INIT_TOKEN_TTL_MS), created: now });
      await tx.setMeta('init.id', init.initId);
      await tx.setMeta('init.admin_token_id', tokenId);
      await tx.setMeta('audit.origin', origin);
      await tx.setMeta('audit.verifier_key', state.audit.verifierKey);
    });
  } finally {
    await store.close();
  }
  await new StateFile(path.join(dir, STATE_FILE_NAME)).write({ ...state, lastCheckpoint: null });
  await writeSecret(path.join(dir, VERIFIER_KEY_FILE), `${state.audit.verifierKey}\n`);

  const shareFiles: { index: number; file: string | null; recipient: string | null }[] = [];
  const shareTexts: string[] = [];
  if (opts.keepSharesInMemory) {
    for (const s of init.shares) {
      shareTexts.push(s.text);
      shareFiles.push({ index: s.index, file: null, recipient: null });
    }
  } else {
    const sharesDir = path.join(dir, SHARES_DIR);
    await fsp.mkdir(sharesDir, { mode: 0o700 });
    for (const s of init.shares) {
      const c = sealed?.find((x) => x.index === s.index);
      const file = path.join(sharesDir, c ? `share-${s.index}.kw.txt` : `share-${s.index}.txt`);
      await writeSecret(file, c ? c.armored : s.text);
      shareFiles.push({ index: s.index, file, recipient: c ? c.recipient : null });
    }
  }
  let tokenFile: string | null = null;
  if (opts.tokenToFile) {
    tokenFile = path.join(dir, TOKEN_FILE);
    await writeSecret(tokenFile, `${token}\n`);
  }
  return {
    dataDir: dir, initId: init.initId, shares: opts.shares, threshold: opts.threshold, shareFiles, shareTexts,
    origin, verifierKey: state.audit.verifierKey, tokenId, token, tokenFile,
  };
}
