/**
 * Initializing a data directory — the one implementation behind `keyward
 * init`, `keyward server --dev` and `RunningServer.initialize()`:
 *
 *   DIR/                        mode 0700
 *     keyward.db                the SQLite store (0600), unless `store` names a PostgreSQL database
 *     keyholder.json            the keyholder's state: custody hashes, wrapped checkpoint key (0600)
 *     audit-verifier-key.txt    the audit log's public key, for `keyward audit verify --key` (0600)
 *     shares/share-N.txt        the unseal shares (0600), or share-N.kw.txt sealed to custodians
 *     initial-admin-token       only with `tokenToFile` (0600)
 *
 * The master key lives only in memory: it is split (Shamir, default 3 of 5),
 * wraps the checkpoint signing key (buildInitState), and is wiped.
 *
 * The initial admin token is 256 random bits, `kw_<base64url>`; the store
 * keeps only SHA-256(token) (hex) under principal `root` of namespace `sys`,
 * admin = true, and the store meta `init.admin_token_id` names it. It
 * expires after {@link INIT_TOKEN_TTL_SECONDS} (24 hours) everywhere — CLI
 * init, dev mode and `initialize()` alike. It is a *bootstrap token*
 * (api/bootstrap.ts): it can only enroll the first administrators, who then
 * get their own tokens. Dev mode alone (`bootstrapOnly: false`) puts its
 * token under `dev-root`, a full administrator.
 *
 * Audit: the `sys.init` event (token id, shares, threshold) is the log's
 * first event. Offline (no keyholder running: `keyward init`, dev mode before
 * the keyholder starts) it is written to the store as event 0 in the same
 * transaction as the token; the keyholder adopts it at its first start,
 * when the API replays the stored events after its last checkpoint into the
 * frontier (docs/key-service-design.md §Audit). Attached to a running
 * service (`running`), the state goes to the keyholder with `init-state` and
 * the event through the audit pipe.
 *
 * @example
 * const r = await initDataDir('/var/lib/keyward', { shares: 5, threshold: 3 });
 * console.log(r.token); // shown once
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { KeywardError } from '@keyward/core';
import { newId, newToken, tokenHash } from './api/auth.js';
import { BOOTSTRAP_NAMESPACE, BOOTSTRAP_PRINCIPAL, DEV_ROOT_PRINCIPAL } from './api/bootstrap.js';
import { GENESIS_PREV } from './audit/bytes.js';
import { buildEvent, eventLeafHash, type AuditEventInput } from './audit/event.js';
import { initCustody, type ShareFile } from './keyholder/custody.js';
import { splitToRecipients, type CustodianShare } from './keyholder/custodians.js';
import { initHsmCustody, type HsmConnection } from './keyholder/hsm-custody.js';
import { STATE_FILE_NAME, StateFile, buildInitState, openCheckpointSigner, type InitState } from './keyholder/state.js';
import { genesis as governanceGenesis } from './keyholder/governance.js';
import { emptyState } from './mfa/governance.js';
import { openConfiguredStore, type Store, type StoreTx } from './store/index.js';

export const STORE_FILE = 'keyward.db';
export const SHARES_DIR = 'shares';
export const VERIFIER_KEY_FILE = 'audit-verifier-key.txt';
export const TOKEN_FILE = 'initial-admin-token';
export const INIT_PRINCIPAL = BOOTSTRAP_PRINCIPAL;
export const INIT_NAMESPACE = BOOTSTRAP_NAMESPACE;
/** The lifetime of the initial admin token (every init path): 24 hours. */
export const INIT_TOKEN_TTL_SECONDS = 24 * 3600;

/** A running key service's side of init (`RunningServer.initialize`). */
export interface RunningInit {
  /** The service's open store (the directory is the service's own, not empty). */
  readonly store: Store;
  /** Gives the state to the running keyholder (`init-state`: the keyholder writes keyholder.json itself). */
  installState(state: InitState): Promise<void>;
  /** Records the `sys.init` event with `body` in one store transaction (the audit pipe). */
  record(input: AuditEventInput, body: (tx: StoreTx) => Promise<void>): Promise<void>;
}

export interface InitDataDirOptions {
  /** Number of unseal shares, 2..255 (default 5). */
  readonly shares?: number;
  /** Shares needed to unseal, 2..shares (default 3). */
  readonly threshold?: number;
  /** One custodian recipient per share: shares are then sealed to them, never written in clear. */
  readonly shareRecipients?: readonly string[];
  /** Lifetime of the initial admin token (default {@link INIT_TOKEN_TTL_SECONDS}). */
  readonly tokenTtlSeconds?: number;
  /** The audit log origin (default `keyward.local/audit/<first 16 hex of the init id>`). */
  readonly origin?: string;
  /** Use this token value instead of a random one (dev mode with KEYWARD_DEV_ROOT_TOKEN). */
  readonly token?: string;
  /** Keep the shares in memory for the caller (dev auto-unseal, `initialize()`) instead of writing them. */
  readonly keepSharesInMemory?: boolean;
  /** Write the token to DIR/initial-admin-token (0600) instead of only returning it. */
  readonly tokenToFile?: boolean;
  /** Attach to a running service instead of writing the store and keyholder.json directly. */
  readonly running?: RunningInit;
  /**
   * The store (store/open.ts): absent = SQLite `keyward.db` in the directory;
   * a `postgres://` URL = that database, which must not be initialized yet
   * (other nodes join it with a copy of this directory's keyholder.json and
   * audit-verifier-key.txt: docs/key-service-design.md §Several nodes).
   */
  readonly store?: string;
  /**
   * The token is a bootstrap token that only enrolls the first administrators
   * (default true). Dev mode alone passes false: its token is a full admin of `dev-root`.
   */
  readonly bootstrapOnly?: boolean;
  /**
   * HSM-wrapped mode (docs/hsm.md): the master key is wrapped by a new
   * non-extractable AES-256 key generated in this token, the keyholder
   * auto-unseals from it, and the shares are *recovery* shares of a separate
   * key. `auditKey`: the checkpoint key pair is generated in the HSM too.
   */
  readonly hsm?: HsmConnection & { readonly auditKey?: boolean };
}

export interface InitOutcome {
  readonly dataDir: string;
  readonly initId: string;
  readonly shares: number;
  readonly threshold: number;
  readonly shareFiles: readonly { readonly index: number; readonly file: string | null; readonly recipient: string | null }[];
  /** The shares (only with keepSharesInMemory; otherwise empty). */
  readonly shareRecords: readonly ShareFile[];
  readonly origin: string;
  readonly verifierKey: string;
  readonly tokenId: string;
  readonly token: string;
  readonly tokenExpiresAt: string;
  readonly tokenFile: string | null;
  /** HSM-wrapped mode: the token and the labels of the keys made in it; null otherwise. */
  readonly hsm: { readonly tokenLabel: string; readonly keyLabel: string; readonly auditKeyLabel: string | null; readonly wrapMechanism: 'pad' | 'kwp' } | null;
}

const TOKEN_RE = /^kw_[A-Za-z0-9_-]{43}$/;

function ioError(e: unknown, what: string): unknown {
  if (e instanceof KeywardError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  return new KeywardError('KW_IO', `cannot ${what}${code ? ` (${code})` : ''}`, { cause: e });
}

async function writeSecret(file: string, text: string): Promise<void> {
  try {
    await fsp.writeFile(file, text, { mode: 0o600, flag: 'wx' });
    await fsp.chmod(file, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new KeywardError('KW_IO', `'${file}' already exists; refusing to overwrite it`);
    throw ioError(e, `write '${file}'`);
  }
}

/** Creates DIR (0700) or accepts an existing empty one; refuses anything already there (unless `running`). */
async function prepareDir(dir: string, running: boolean): Promise<void> {
  let entries: string[];
  try {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    entries = await fsp.readdir(dir);
  } catch (e) {
    throw ioError(e, `create '${dir}'`);
  }
  if (running && entries.includes(STATE_FILE_NAME)) throw new KeywardError('KW_INVALID_ARGUMENT', `the data directory '${dir}' is already initialized (it holds ${STATE_FILE_NAME})`);
  if (!running && entries.length > 0) {
    throw new KeywardError('KW_INVALID_ARGUMENT', `the data directory '${dir}' is not empty (already initialized?); init needs a new or empty directory`);
  }
  try {
    await fsp.chmod(dir, 0o700);
  } catch (e) {
    throw ioError(e, `chmod '${dir}'`);
  }
}

/**
 * Signs the genesis governance snapshot — the empty state: no policy, role,
 * approval key or quorum rule — with the new checkpoint key, so the
 * keyholder starts anchored and never takes a genesis from the API
 * (docs/mfa.md §Signed policy). With the checkpoint key in the HSM
 * (`--hsm-audit-key`) init cannot sign here: that deployment keeps the legacy
 * genesis at the first governance change.
 */
function anchorGovernance(state: InitState, masterKey: Uint8Array): InitState {
  if (state.audit.signingKeyWrapped === undefined) return state;
  const signer = openCheckpointSigner(masterKey, state);
  const g = governanceGenesis(emptyState(), new Date().toISOString(), (m) => signer.sign(m));
  return { ...state, governance: { snapshot: g.text, signature: g.signature } };
}

/** Initializes `dir` (see the module comment). Typed errors: KW_INVALID_ARGUMENT, KW_IO. */
export async function initDataDir(dir: string, opts: InitDataDirOptions = {}): Promise<InitOutcome> {
  const dataDir = path.resolve(dir);
  const n = opts.shares ?? 5;
  const k = opts.threshold ?? 3;
  const ttl = opts.tokenTtlSeconds ?? INIT_TOKEN_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 60) throw new KeywardError('KW_INVALID_ARGUMENT', 'tokenTtlSeconds must be a whole number of seconds, at least 60');
  if (opts.token !== undefined && !TOKEN_RE.test(opts.token)) throw new KeywardError('KW_INVALID_ARGUMENT', 'the token must be kw_ followed by 43 base64url characters');
  if (opts.shareRecipients && opts.shareRecipients.length !== n) {
    throw new KeywardError('KW_INVALID_ARGUMENT', `--share-recipients lists ${opts.shareRecipients.length} recipient(s) but there are ${n} shares: give one recipient per share`);
  }
  if (opts.shareRecipients && opts.keepSharesInMemory) throw new KeywardError('KW_INVALID_ARGUMENT', 'shares sealed to custodians are written to files, not kept in memory');
  const running = opts.running ?? null;
  if (opts.hsm && (running || opts.keepSharesInMemory)) throw new KeywardError('KW_INVALID_ARGUMENT', 'HSM-wrapped mode is set up by keyward init on a new data directory only');
  await prepareDir(dataDir, running !== null);

  // HSM-wrapped mode: keys generated in the HSM first, so a token error stops init before anything is written.
  const hsmInit = opts.hsm ? await initHsmCustody({ ...opts.hsm, shares: n, threshold: k }) : null;
  const init = hsmInit ?? await initCustody({ shares: n, threshold: k });
  const origin = opts.origin ?? `keyward.local/audit/${init.initId.slice(0, 16)}`;
  let state: InitState;
  try {
    state = anchorGovernance(buildInitState({ masterKey: init.masterKey, custody: init.state, origin, ...(hsmInit?.auditKey ? { hsmAuditKey: hsmInit.auditKey } : {}) }), init.masterKey);
  } finally {
    init.masterKey.fill(0);
  }

  // Custodians' shares are sealed first: a bad recipient stops init before anything is written.
  const sealed: CustodianShare[] | null = opts.shareRecipients ? await splitToRecipients(init.shares, opts.shareRecipients) : null;

  const token = opts.token ?? newToken().token;
  const tokenId = newId('tok_');
  const now = new Date();
  const expiresAt = new Date(now.getTime() + ttl * 1000);
  const bootstrapOnly = opts.bootstrapOnly ?? true;
  const principal = bootstrapOnly ? INIT_PRINCIPAL : DEV_ROOT_PRINCIPAL;
  const event: AuditEventInput = { ns: null, principal: null, auth: 'none', op: 'sys.init', outcome: 'allowed', details: { token_id: tokenId, threshold: k, shares: n, init_id: init.initId, principal, bootstrap_only: bootstrapOnly, ...(hsmInit ? { custody: 'hsm-wrapped', hsm_token: hsmInit.state.hsm!.tokenLabel, hsm_key: hsmInit.state.hsm!.keyLabel, hsm_audit_key: hsmInit.auditKey?.label ?? null } : {}) } };
  const rows = async (tx: StoreTx): Promise<void> => {
    if (!(await tx.getNamespace(INIT_NAMESPACE))) await tx.createNamespace({ name: INIT_NAMESPACE, created: now });
    if (!(await tx.getPrincipal(principal))) {
      const name = bootstrapOnly ? 'initial administrator (from init; enrolls the first administrators only)' : 'dev mode administrator';
      await tx.createPrincipal({ id: principal, ns: INIT_NAMESPACE, kind: 'person', name, roles: [], created: now });
    }
    await tx.createToken({ id: tokenId, tokenHash: tokenHash(token), principal, admin: true, expiresAt, created: now });
    await tx.setMeta('init.id', init.initId);
    await tx.setMeta('init.admin_token_id', tokenId);
    await tx.setMeta('audit.origin', origin);
    await tx.setMeta('audit.verifier_key', state.audit.verifierKey);
  };

  if (running) {
    await running.installState(state);
    await running.record(event, rows);
  } else {
    const store = await openConfiguredStore({ store: opts.store, dataDir });
    try {
      await store.transaction(async (tx) => {
        // A shared (PostgreSQL) store is initialized once, by one node.
        if ((await tx.getMeta('init.id')) !== null) {
          throw new KeywardError('KW_INVALID_ARGUMENT', 'the store is already initialized (by another node or an earlier init); join it with a copy of that node\'s keyholder.json instead');
        }
        await rows(tx);
        // Event 0 of the log; the keyholder adopts it when the API first replays the store into its frontier.
        const { bytes } = buildEvent(event, { index: 0, time: now, prev: GENESIS_PREV });
        await tx.appendAuditEvent({ time: now, event: new TextDecoder().decode(bytes), leafHash: eventLeafHash(bytes), expectedIdx: 0 });
      });
    } finally {
      await store.close();
    }
    await new StateFile(path.join(dataDir, STATE_FILE_NAME)).write({ ...state, lastCheckpoint: null });
  }
  await writeSecret(path.join(dataDir, VERIFIER_KEY_FILE), `${state.audit.verifierKey}\n`);

  const shareFiles: { index: number; file: string | null; recipient: string | null }[] = [];
  if (opts.keepSharesInMemory) {
    for (const s of init.shares) shareFiles.push({ index: s.index, file: null, recipient: null });
  } else {
    const sharesDir = path.join(dataDir, SHARES_DIR);
    try {
      await fsp.mkdir(sharesDir, { mode: 0o700 });
    } catch (e) {
      throw ioError(e, `create '${sharesDir}'`);
    }
    for (const s of init.shares) {
      const c = sealed?.find((x) => x.index === s.index);
      const file = path.join(sharesDir, c ? `share-${s.index}.kw.txt` : `share-${s.index}.txt`);
      await writeSecret(file, c ? c.armored : s.text);
      shareFiles.push({ index: s.index, file, recipient: c ? c.recipient : null });
    }
  }
  let tokenFile: string | null = null;
  if (opts.tokenToFile) {
    tokenFile = path.join(dataDir, TOKEN_FILE);
    await writeSecret(tokenFile, `${token}\n`);
  }
  return {
    dataDir, initId: init.initId, shares: n, threshold: k, shareFiles,
    shareRecords: opts.keepSharesInMemory ? [...init.shares] : [],
    origin, verifierKey: state.audit.verifierKey, tokenId, token, tokenExpiresAt: expiresAt.toISOString(), tokenFile,
    hsm: hsmInit ? { tokenLabel: hsmInit.state.hsm!.tokenLabel, keyLabel: hsmInit.state.hsm!.keyLabel, auditKeyLabel: hsmInit.auditKey?.label ?? null, wrapMechanism: hsmInit.state.hsm!.wrapMechanism } : null,
  };
}
