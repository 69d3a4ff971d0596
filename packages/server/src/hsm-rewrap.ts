/**
 * `keyward hsm rewrap` (docs/hsm.md §HSM migration, issue #5): moves a
 * deployment's master key under a new wrapping key in a PKCS#11 token —
 * another token, label or module — or from software custody (Shamir) into an
 * HSM. An offline ceremony on a stopped service, like `keyward init`:
 *
 *   1. the state file is read, the service must be stopped (nothing answers on
 *      DIR/keyholder.sock: KW_HSM_SERVICE_RUNNING), and the store must hold no
 *      HSM-resident key (they exist only in the old token and are never
 *      extractable: KW_HSM_RESIDENT_KEYS);
 *   2. authorisation: a quorum of shares — recovery shares checked against
 *      `recoveryCheck` (HSM-wrapped), or unseal shares combined into the master
 *      key (software) — same checks as the keyholder (checksum, init, recorded
 *      hash, duplicates; KW_SHARE_*, KW_UNSEAL_FAILED);
 *   3. HSM-wrapped: the old token unwraps the master key, checked against
 *      `mkCheck` (KW_UNSEAL_FAILED when they disagree);
 *   4. in the target token: a new AES-256 key (sensitive, never extractable)
 *      wraps the master key (RFC 5649), unwrapped once to check;
 *   5. audit checkpoint key in the old HSM (`--hsm-audit-key`): it cannot
 *      leave the token, so a new Ed25519 pair is generated in the target
 *      token and the last checkpoint the keyholder signed is signed again by
 *      BOTH keys — the key-rotation checkpoint, written to
 *      DIR/audit-key-rotation-<old id>-<new id>.txt. Old exports and saved
 *      checkpoints still verify with the old verifier key (kept as
 *      audit-verifier-key.<old id>.txt); new ones with the new key; the
 *      rotation checkpoint verifies with either, linking them.
 *   6. software → HSM: a new recovery key is split into recovery shares (same
 *      init id) written to DIR/recovery-shares/ (sealed to custodians with
 *      recipients) BEFORE the commit.
 *   7. commit: the old keyholder.json is copied to
 *      keyholder.json.before-rewrap-<time>, then the new one replaces it
 *      atomically (temporary file, fsync, rename). That rename is the only
 *      commit point: any failure before it destroys what was generated in the
 *      target token and removes what was written, so the old keyholder.json
 *      and the old token still open the store. Nothing in the old token is
 *      touched (delete the old wrapping key only after the new one has
 *      auto-unsealed the service and a vendor backup of it exists).
 *
 * The master key exists only in this process's memory, between step 2/3 and
 * the end, and is wiped. The PINs come from files or the environment. The
 * quorum check is a procedural control enforced by this tool: whoever holds
 * the old token, its PIN and keyholder.json can unwrap the master key anyway
 * (docs/hsm.md says so).
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import { createConnection } from 'node:net';
import path from 'node:path';
import { KeywardError } from '@keyward/core';
import { SIGNATURE_TYPE_ED25519, formatVerifierKey, keyId, parseVerifierKey, signCheckpoint } from '@keyward/tlog';
import { residentMetaKey } from './api/lifecycle/rotate.js';
import { HsmError } from './hsm/errors.js';
import { Pkcs11Token, type HsmConfig, type HsmKeyKind } from './hsm/token.js';
import { fromBase64url, toBase64url, toHex } from './keyholder/bytes.js';
import { initCustody, mkCheckOf, MASTER_KEY_LENGTH, type CustodyState, type ShareFile } from './keyholder/custody.js';
import { splitToRecipients, type CustodianShare } from './keyholder/custodians.js';
import { KeyholderError } from './keyholder/errors.js';
import { auditKeyLabel, hsmNoteSigner, masterKeyLabel, recoveryCheckOf } from './keyholder/hsm-custody.js';
import { hsmLabelSchema, type HsmCustody } from './keyholder/hsm-state.js';
import { equalCT, randomBytes, wipe } from './keyholder/primitives.js';
import { STATE_FILE_NAME, StateFile, type KeyholderState } from './keyholder/state.js';
import { Unsealer } from './keyholder/unsealer.js';
import { VERIFIER_KEY_FILE } from './init.js';
import { openConfiguredStore, type Store } from './store/index.js';

/** Where the new wrapping key goes. */
export interface RewrapTarget {
  readonly module: string;
  readonly tokenLabel: string;
  /** The target token's user PIN (from a file or the environment; never argv). */
  readonly pin: string;
  readonly wrapMechanism?: 'pad' | 'kwp';
  /** Label of the new wrapping key (default keyward-mk-<init id>-<8 hex>). */
  readonly keyLabel?: string;
  /** Label of the new checkpoint key pair when the audit key is in the HSM (default keyward-audit-<init id>-<same suffix>). */
  readonly auditKeyLabel?: string;
}

export interface HsmRewrapOptions {
  readonly dataDir: string;
  /** The PostgreSQL store (postgres://…); default the data directory's keyward.db. */
  readonly store?: string;
  /** The share files' text (opened already if they were sealed to custodians): recovery shares, or unseal shares in software custody. */
  readonly shares: readonly string[];
  /** The current token's PIN (HSM-wrapped deployments). */
  readonly sourcePin?: string;
  readonly target: RewrapTarget;
  /** Software → HSM: recovery shares to make (default the unseal shares' count and threshold). */
  readonly recoveryShares?: number;
  readonly recoveryThreshold?: number;
  /** Software → HSM: seal recovery share i to the i-th Keyward recipient. */
  readonly shareRecipients?: readonly string[];
  /** Opens a token (tests inject one); default Pkcs11Token.open. */
  readonly openToken?: (cfg: HsmConfig) => Promise<Pkcs11Token>;
  /** The time (file names); default now. */
  readonly now?: Date;
}

export interface HsmRewrapOutcome {
  readonly dataDir: string;
  readonly initId: string;
  readonly from: { readonly custody: 'software' | 'hsm-wrapped'; readonly module: string | null; readonly tokenLabel: string | null; readonly keyLabel: string | null };
  readonly to: { readonly module: string; readonly tokenLabel: string; readonly keyLabel: string; readonly wrapMechanism: 'pad' | 'kwp'; readonly auditKeyLabel: string | null };
  /** The previous keyholder.json, kept beside it. */
  readonly backupFile: string;
  /** Set when the checkpoint key moved (it was in the old HSM). */
  readonly auditKey: { readonly oldVerifierKey: string; readonly newVerifierKey: string; readonly oldVerifierKeyFile: string; readonly rotationCheckpointFile: string | null } | null;
  /** Software → HSM: the new recovery shares (the old unseal shares still rebuild the master key: destroy them). */
  readonly recoveryShareFiles: readonly { readonly index: number; readonly file: string; readonly recipient: string | null }[] | null;
  readonly threshold: number;
  /** Steps after the commit that failed (the migration stands; do them by hand). */
  readonly warnings: readonly string[];
}

const RECOVERY_SHARES_DIR = 'recovery-shares';

function ioError(e: unknown, what: string): unknown {
  if (e instanceof KeywardError || e instanceof HsmError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  return new KeywardError('KW_IO', `cannot ${what}${code ? ` (${code})` : ''}`, { cause: e });
}

/** True when something answers on the keyholder socket (a running service). */
function socketAnswers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(socket);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

/** The HSM-resident keys of the store, as ns/name (at most `limit`). */
async function residentKeys(store: Store, limit = 20): Promise<string[]> {
  const found: string[] = [];
  for (const ns of await store.listNamespaces()) {
    for (const k of await store.listKeys(ns.name)) {
      if ((await store.getMeta(residentMetaKey(ns.name, k.name))) === 'hsm') found.push(`${ns.name}/${k.name}`);
      if (found.length >= limit) return found;
    }
  }
  return found;
}

/** Submits the shares; the recovered key (master or recovery) when they reach the threshold. */
async function combineShares(custody: CustodyState, shares: readonly string[], recovery: boolean): Promise<Uint8Array> {
  const unsealer = recovery
    ? new Unsealer(custody, { value: custody.recoveryCheck!, of: recoveryCheckOf })
    : new Unsealer(custody);
  for (const text of shares) {
    const p = await unsealer.submit(text);
    if (!p.sealed) return p.masterKey;
  }
  unsealer.reset();
  throw new KeywardError('KW_INVALID_ARGUMENT', `${shares.length} valid ${recovery ? 'recovery' : 'unseal'} share(s) given; the quorum is ${custody.threshold}: give --share once per custodian`);
}

/** See the module comment. Typed errors: KW_HSM_*, KW_SHARE_*, KW_UNSEAL_FAILED, KW_INVALID_ARGUMENT, KW_IO; nothing changes on any of them. */
export async function hsmRewrap(opts: HsmRewrapOptions): Promise<HsmRewrapOutcome> {
  const dataDir = path.resolve(opts.dataDir);
  const stateFile = new StateFile(path.join(dataDir, STATE_FILE_NAME));
  const state = await stateFile.read();
  if (state === null) throw new KeywardError('KW_INVALID_ARGUMENT', `'${dataDir}' holds no ${STATE_FILE_NAME}: not an initialized data directory`);
  const { custody, audit } = state;
  const source = custody.hsm ?? null;
  const target = opts.target;
  const wrapMechanism = target.wrapMechanism ?? 'pad';
  const suffix = toHex(randomBytes(4));
  const newKeyLabel = target.keyLabel ?? `${masterKeyLabel(custody.initId)}-${suffix}`;
  const newAuditLabel = target.auditKeyLabel ?? `${auditKeyLabel(custody.initId)}-${suffix}`;
  for (const [l, what] of [[newKeyLabel, 'the new wrapping key label'], [newAuditLabel, 'the new audit key label']] as const) {
    if (!hsmLabelSchema.safeParse(l).success) throw new KeywardError('KW_INVALID_ARGUMENT', `${what} must be 1–128 printable ASCII characters`);
  }
  if (target.tokenLabel.length < 1 || target.tokenLabel.length > 32) throw new KeywardError('KW_INVALID_ARGUMENT', 'a token label is 1–32 characters');
  const sameToken = source !== null && source.module === target.module && source.tokenLabel === target.tokenLabel;
  if (sameToken && newKeyLabel === source.keyLabel) throw new KeywardError('KW_INVALID_ARGUMENT', `the master key is already wrapped by '${newKeyLabel}' in token '${target.tokenLabel}'`);
  if (source !== null && opts.sourcePin === undefined) throw new KeywardError('KW_INVALID_ARGUMENT', 'the deployment is HSM-wrapped: the current token\'s PIN is needed');
  if (source === null && (opts.shareRecipients !== undefined) && opts.shareRecipients.length !== (opts.recoveryShares ?? custody.shareHashes.length)) {
    throw new KeywardError('KW_INVALID_ARGUMENT', 'give one share recipient per recovery share');
  }
  if (source !== null && (opts.recoveryShares !== undefined || opts.recoveryThreshold !== undefined || opts.shareRecipients !== undefined)) {
    throw new KeywardError('KW_INVALID_ARGUMENT', 'the recovery shares of an HSM-wrapped deployment stay as they are: new ones are made only when moving from software custody');
  }

  // 1. Stopped service, no resident keys.
  if (await socketAnswers(path.join(dataDir, 'keyholder.sock'))) {
    throw new HsmError('KW_HSM_SERVICE_RUNNING', `a key service is running on '${dataDir}' (its keyholder answers on keyholder.sock): stop it, and every other node of the deployment, first`);
  }
  const store = await openConfiguredStore({ store: opts.store, dataDir });
  let resident: string[];
  let storeInit: string | null;
  try {
    storeInit = await store.getMeta('init.id');
    resident = await residentKeys(store);
  } finally {
    await store.close();
  }
  if (storeInit !== custody.initId) throw new KeywardError('KW_INVALID_ARGUMENT', `the store belongs to init ${storeInit ?? '(none)'}, keyholder.json to init ${custody.initId}: wrong --store?`);
  if (resident.length > 0) {
    throw new HsmError('KW_HSM_RESIDENT_KEYS', `HSM-resident keys exist (${resident.join(', ')}): they live only in token '${source?.tokenLabel ?? '?'}' and cannot be moved; migrate with the vendor's cloning instead (docs/operations/hsm-migration.md)`);
  }

  const open = opts.openToken ?? ((cfg: HsmConfig) => Pkcs11Token.open(cfg));
  let masterKey: Uint8Array | null = null;
  let from: Pkcs11Token | null = null;
  let to: Pkcs11Token | null = null;
  const made: { kind: HsmKeyKind; label: string }[] = [];
  const written: string[] = [];
  try {
    // 2–3. Authorisation and the master key.
    if (source === null) {
      masterKey = await combineShares(custody, opts.shares, false);
    } else {
      const rk = await combineShares(custody, opts.shares, true);
      wipe(rk);
      from = await open({ module: source.module, tokenLabel: source.tokenLabel, pin: opts.sourcePin!, sessions: 1, wrapMechanism: source.wrapMechanism });
      masterKey = await from.unwrapPad(source.keyLabel, fromBase64url(source.wrappedMasterKey)!);
      if (masterKey.length !== MASTER_KEY_LENGTH || !equalCT(mkCheckOf(masterKey), Buffer.from(custody.mkCheck, 'hex'))) {
        throw new KeyholderError('KW_UNSEAL_FAILED', 'the key the current HSM unwrapped fails the master-key check: keyholder.json and the HSM key disagree');
      }
    }

    // 4. The new wrapping key.
    to = sameToken ? from! : await open({ module: target.module, tokenLabel: target.tokenLabel, pin: target.pin, sessions: 1, wrapMechanism });
    await to.generate('aes', newKeyLabel);
    made.push({ kind: 'aes', label: newKeyLabel });
    const wrapped = await to.wrapPad(newKeyLabel, masterKey);
    const back = await to.unwrapPad(newKeyLabel, wrapped);
    const same = equalCT(back, masterKey);
    wipe(back);
    if (!same) throw new HsmError('KW_HSM_FAILED', 'the target HSM did not unwrap the master key it had just wrapped');
    const hsm: HsmCustody = { module: target.module, tokenLabel: target.tokenLabel, keyLabel: newKeyLabel, wrapMechanism, wrappedMasterKey: toBase64url(wrapped) };

    // 5. The checkpoint key, if it is in the old HSM.
    let newAudit = audit;
    let rotation: { note: string | null; oldId: string; newId: string } | null = null;
    if (audit.hsmKeyLabel !== undefined) {
      const oldPub = await from!.ed25519PublicKey(audit.hsmKeyLabel);
      const oldKey = parseVerifierKey(audit.verifierKey);
      if (!equalCT(oldPub, oldKey.publicKey)) throw new KeyholderError('KW_UNSEAL_FAILED', `the HSM key pair '${audit.hsmKeyLabel}' is not the checkpoint key keyholder.json names`);
      await to.generate('ed25519', newAuditLabel);
      made.push({ kind: 'ed25519', label: newAuditLabel });
      const newPub = await to.ed25519PublicKey(newAuditLabel);
      newAudit = { origin: audit.origin, verifierKey: formatVerifierKey(audit.origin, SIGNATURE_TYPE_ED25519, newPub), hsmKeyLabel: newAuditLabel };
      const hex = (pub: Uint8Array) => keyId(audit.origin, SIGNATURE_TYPE_ED25519, pub).toString(16).padStart(8, '0');
      let note: string | null = null;
      if (state.lastCheckpoint !== null) {
        note = signCheckpoint(
          [hsmNoteSigner(from!, audit.hsmKeyLabel, audit.origin, oldPub), hsmNoteSigner(to, newAuditLabel, audit.origin, newPub)],
          { origin: audit.origin, size: state.lastCheckpoint.size, root: fromBase64url(state.lastCheckpoint.root)! },
        );
      }
      rotation = { note, oldId: hex(oldPub), newId: hex(newPub) };
    }

    // 6. Software → HSM: new recovery shares of a new recovery key, same init id.
    let newCustody: CustodyState;
    let recoveryShareFiles: { index: number; file: string; recipient: string | null }[] | null = null;
    if (source === null) {
      const n = opts.recoveryShares ?? custody.shareHashes.length;
      const k = opts.recoveryThreshold ?? custody.threshold;
      const recovery = await initCustody({ shares: n, threshold: k, initId: custody.initId });
      let sealed: CustodianShare[] | null = null;
      let shares: readonly ShareFile[];
      try {
        newCustody = { initId: custody.initId, threshold: k, shareHashes: recovery.state.shareHashes, mkCheck: custody.mkCheck, recoveryCheck: toHex(recoveryCheckOf(recovery.masterKey)), hsm };
        shares = recovery.shares;
        if (opts.shareRecipients) sealed = await splitToRecipients(shares, opts.shareRecipients);
      } finally {
        wipe(recovery.masterKey);
      }
      const dir = path.join(dataDir, RECOVERY_SHARES_DIR);
      try {
        await fsp.mkdir(dir, { mode: 0o700 });
      } catch (e) {
        throw (e as NodeJS.ErrnoException).code === 'EEXIST'
          ? new KeywardError('KW_INVALID_ARGUMENT', `'${dir}' exists (from an earlier migration?): move it away first`)
          : ioError(e, `create '${dir}'`);
      }
      written.push(dir);
      recoveryShareFiles = [];
      for (const s of shares) {
        const c = sealed?.find((x) => x.index === s.index);
        const file = path.join(dir, c ? `share-${s.index}.kw.txt` : `share-${s.index}.txt`);
        try {
          await fsp.writeFile(file, c ? c.armored : s.text, { mode: 0o600, flag: 'wx' });
        } catch (e) {
          throw ioError(e, `write '${file}'`);
        }
        recoveryShareFiles.push({ index: s.index, file, recipient: c?.recipient ?? null });
      }
    } else {
      newCustody = { ...custody, hsm };
    }

    // 7. Commit: backup, then the atomic replace.
    const stamp = (opts.now ?? new Date()).toISOString().replace(/[:.]/g, '-');
    const backupFile = path.join(dataDir, `${STATE_FILE_NAME}.before-rewrap-${stamp}`);
    try {
      await fsp.copyFile(stateFile.path, backupFile, fsc.COPYFILE_EXCL);
      await fsp.chmod(backupFile, 0o600);
    } catch (e) {
      throw ioError(e, `back up ${STATE_FILE_NAME} to '${backupFile}'`);
    }
    written.push(backupFile);
    // Everything else in the state (last checkpoint, the signed governance snapshot, …) is kept as it is.
    const next: KeyholderState = { ...state, custody: newCustody, audit: newAudit };
    await stateFile.write(next);
    made.length = 0; // committed: the new keys are in use
    written.length = 0;

    // After the commit: files that help verifiers; a failure here is a warning, not a rollback.
    const warnings: string[] = [];
    let auditOut: HsmRewrapOutcome['auditKey'] = null;
    if (rotation !== null) {
      const oldVerifierKeyFile = path.join(dataDir, `audit-verifier-key.${rotation.oldId}.txt`);
      const rotationFile = rotation.note === null ? null : path.join(dataDir, `audit-key-rotation-${rotation.oldId}-${rotation.newId}.txt`);
      const put = async (file: string, text: string) => {
        try {
          const tmp = `${file}.tmp-${suffix}`;
          await fsp.writeFile(tmp, text, { mode: 0o600 });
          await fsp.rename(tmp, file);
        } catch (e) {
          warnings.push(`could not write '${file}' (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
        }
      };
      await put(oldVerifierKeyFile, `${audit.verifierKey}\n`);
      if (rotationFile !== null) await put(rotationFile, rotation.note!);
      await put(path.join(dataDir, VERIFIER_KEY_FILE), `${newAudit.verifierKey}\n`);
      try {
        const s = await openConfiguredStore({ store: opts.store, dataDir });
        try { await s.setMeta('audit.verifier_key', newAudit.verifierKey); } finally { await s.close(); }
      } catch (e) {
        warnings.push(`could not record the new verifier key in the store (${e instanceof Error ? e.message : 'error'})`);
      }
      auditOut = { oldVerifierKey: audit.verifierKey, newVerifierKey: newAudit.verifierKey, oldVerifierKeyFile, rotationCheckpointFile: rotationFile };
    }
    return {
      dataDir, initId: custody.initId,
      from: { custody: source ? 'hsm-wrapped' : 'software', module: source?.module ?? null, tokenLabel: source?.tokenLabel ?? null, keyLabel: source?.keyLabel ?? null },
      to: { module: target.module, tokenLabel: target.tokenLabel, keyLabel: newKeyLabel, wrapMechanism, auditKeyLabel: newAudit.hsmKeyLabel ?? null },
      backupFile, auditKey: auditOut, recoveryShareFiles, threshold: newCustody.threshold, warnings,
    };
  } catch (e) {
    for (const k of made) await to?.destroy(k.kind, k.label).catch(() => undefined);
    for (const f of written.reverse()) await fsp.rm(f, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  } finally {
    if (masterKey) wipe(masterKey);
    if (to && to !== from) to.close();
    from?.close();
  }
}
