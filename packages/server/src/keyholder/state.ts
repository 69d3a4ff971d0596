/**
 * The keyholder's own state file, `keyholder.json` next to its socket,
 * written only by the keyholder (docs/key-service-design.md §Custody):
 *
 *   { format: 1,
 *     custody: { initId, threshold, shareHashes, mkCheck },            (custody.ts)
 *     audit:   { origin, verifierKey,                                  (C2SP note verifier key, name = origin)
 *                signingKeyWrapped: b64u(wrap(mk, "checkpoint-key", { init, origin }, Ed25519 seed)) },
 *     lastCheckpoint: { size, root: b64u } | null,
 *     governance?: { snapshot, signature },                            (signed policy: governance.ts)
 *     directory?: { keysWrapped, signaturePublicKey, vrfPublicKey,      (KEYTRANS keys: directory-keys.ts)
 *                   source, lastHead: { size, root: b64u } | null } }
 *
 * Nothing in it unseals anything: the checkpoint key is wrapped under the
 * master key. (Audit redaction HMAC keys are ordinary `hmac-sha256` key
 * versions in the store, per namespace, as audit/redact.ts expects.) `lastCheckpoint` is what makes the keyholder refuse to sign a fork or
 * accept a rolled-back frontier after a restart, so it is written before a
 * checkpoint is returned, atomically (temporary file, fsync, rename, fsync of
 * the directory), with mode 0600. An unreadable or malformed file stops the
 * keyholder: it is never mistaken for "not initialized" (which would let the
 * API install a fresh state and forget the last checkpoint).
 *
 * @example
 * const init = await initCustody();                                        // keyward init
 * const state = buildInitState({ masterKey: init.masterKey, custody: init.state, origin: 'kms.example.com/audit' });
 * await client.call('init-state', { state });                              // installs it; written here
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { SIGNATURE_TYPE_ED25519, formatVerifierKey, isValidKeyName, keyId, parseVerifierKey, type NoteSigner } from '@keyward/tlog';
import { fromBase64url, toBase64url, toHex } from './bytes.js';
import { custodyStateSchema, type CustodyState } from './custody.js';
import { KeyholderError } from './errors.js';
import {
  ed25519PrivateKey, ed25519PublicBytes, ed25519Sign, equalCT, randomBytes, wipe,
  type KeyObject, type SecretInput,
} from './primitives.js';
import { parseArg } from './schemas.js';
import { hsmLabelSchema } from './hsm-state.js';
import { unwrap, wrap } from './wrap.js';

export const STATE_FILE_NAME = 'keyholder.json';
export const STATE_FORMAT = 1;
/** Wrap purpose of the checkpoint signing key (wrap.ts binds it into HKDF info and the AAD). */
export const CHECKPOINT_KEY_PURPOSE = 'checkpoint-key';
const SEED_LENGTH = 32;
const MAX_STATE_FILE = 5 * 1024 * 1024; // the governance snapshot lives here too

const b64uString = (bytes: number) =>
  z.string().max(Math.ceil((bytes * 4) / 3)).refine((s) => fromBase64url(s)?.length === bytes, `must be canonical base64url of ${bytes} bytes`);

/** A log origin: also the checkpoint key's name, so it follows the note key-name rules. */
export const originSchema = z.string().min(1).max(256).refine(isValidKeyName, 'the origin must be a valid note key name (no spaces, no "+")');

/** The last checkpoint the keyholder signed. */
export const checkpointHeadSchema = z.strictObject({
  size: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  root: b64uString(32),
});
export type CheckpointHead = z.infer<typeof checkpointHeadSchema>;

const auditStateSchema = z
  .strictObject({
    origin: originSchema,
    verifierKey: z.string().min(1).max(512),
    /** The checkpoint key wrapped under the master key; absent when it lives in the HSM. */
    signingKeyWrapped: b64uString(SEED_LENGTH + 49).optional(),
    /** The label of the checkpoint key pair in the HSM (`keyward init --hsm-audit-key`; hsm-custody.ts). */
    hsmKeyLabel: hsmLabelSchema.optional(),
  })
  .superRefine((a, ctx) => {
    if ((a.signingKeyWrapped === undefined) === (a.hsmKeyLabel === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'the audit state names exactly one checkpoint key: signingKeyWrapped or hsmKeyLabel', path: ['signingKeyWrapped'] });
    }
    try {
      const v = parseVerifierKey(a.verifierKey);
      if (v.type !== SIGNATURE_TYPE_ED25519) ctx.addIssue({ code: 'custom', message: 'the checkpoint verifier key must be an Ed25519 (type 0x01) key', path: ['verifierKey'] });
      if (v.name !== a.origin) ctx.addIssue({ code: 'custom', message: 'the checkpoint verifier key must be named after the origin', path: ['verifierKey'] });
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not a C2SP note verifier key', path: ['verifierKey'] });
    }
  });
export type AuditState = z.infer<typeof auditStateSchema>;

/** A signed governance snapshot as the state file keeps it (governance.ts). */
export const governanceStateSchema = z.strictObject({ snapshot: z.string().max(4 * 1024 * 1024), signature: z.string().regex(/^[0-9a-f]{128}$/) });

/** What `keyward init` produces and `init-state` installs. */
export const initStateSchema = z.strictObject({
  format: z.literal(STATE_FORMAT),
  custody: custodyStateSchema,
  audit: auditStateSchema,
  /** The genesis governance snapshot (the empty state) signed at init, so no genesis is ever taken from the API; absent from states made before it existed and with an HSM-held checkpoint key. */
  governance: governanceStateSchema.optional(),
});
export type InitState = z.infer<typeof initStateSchema>;

/** The directory's keys (directory-keys.ts): `signing seed ‖ VRF key` wrapped under the master key, and the last head signed. */
export const directoryStateSchema = z.strictObject({
  keysWrapped: b64uString(64 + 49),
  signaturePublicKey: b64uString(32),
  vrfPublicKey: b64uString(32),
  source: z.enum(['derived', 'imported']),
  lastHead: checkpointHeadSchema.nullable(),
});
export type DirectoryState = z.infer<typeof directoryStateSchema>;

/** The whole state file. */
export const keyholderStateSchema = z.strictObject({
  format: z.literal(STATE_FORMAT),
  custody: custodyStateSchema,
  audit: auditStateSchema,
  lastCheckpoint: checkpointHeadSchema.nullable(),
  /** The signed governance snapshot in force (governance.ts); absent before genesis. */
  governance: governanceStateSchema.optional(),
  /** The directory's keys, once the directory was enabled (directory-keys.ts). */
  directory: directoryStateSchema.optional(),
});
export type KeyholderState = z.infer<typeof keyholderStateSchema>;

const checkpointKeyAad = (initId: string, origin: string) => ({ init: initId, origin });

/**
 * Builds the state `keyward init` hands to the keyholder: the custody
 * fragment and a fresh checkpoint signing key wrapped under the master key
 * (which the caller then wipes).
 */
export function buildInitState(opts: { masterKey: SecretInput; custody: CustodyState; origin: string; hsmAuditKey?: { label: string; publicKey: Uint8Array } }): InitState {
  const custody = parseArg(custodyStateSchema, opts.custody, 'custody state');
  const origin = parseArg(originSchema, opts.origin, 'origin');
  if (opts.hsmAuditKey) {
    // The checkpoint key pair lives in the HSM (hsm-custody.ts): the state names it and its public key.
    const { label, publicKey } = opts.hsmAuditKey;
    return { format: STATE_FORMAT, custody, audit: { origin, verifierKey: formatVerifierKey(origin, SIGNATURE_TYPE_ED25519, publicKey), hsmKeyLabel: label } };
  }
  const seed = randomBytes(SEED_LENGTH);
  try {
    const publicKey = ed25519PublicBytes(ed25519PrivateKey(seed));
    return {
      format: STATE_FORMAT,
      custody,
      audit: {
        origin,
        verifierKey: formatVerifierKey(origin, SIGNATURE_TYPE_ED25519, publicKey),
        signingKeyWrapped: toBase64url(wrap(opts.masterKey, CHECKPOINT_KEY_PURPOSE, checkpointKeyAad(custody.initId, origin), seed)),
      },
    };
  } finally {
    wipe(seed);
  }
}

/**
 * A C2SP note signer (Ed25519, type 0x01) over an OpenSSL-held private key,
 * so the seed is not copied into a JavaScript array that cannot be wiped
 * (tlog's `ed25519Signer` keeps one).
 */
export function keyObjectNoteSigner(name: string, privateKey: KeyObject): NoteSigner {
  const id = keyId(name, SIGNATURE_TYPE_ED25519, ed25519PublicBytes(privateKey));
  return Object.freeze({ name, keyId: id, sign: (text: Uint8Array) => ed25519Sign(privateKey, text) });
}

/**
 * Unwraps the checkpoint signing key with the master key and checks it is the
 * one the state's verifier key names. A mismatch means the state file and the
 * master key disagree: KW_INTERNAL.
 */
export function openCheckpointSigner(masterKey: SecretInput, state: InitState): NoteSigner {
  const { initId } = state.custody;
  const { origin, signingKeyWrapped } = state.audit;
  if (signingKeyWrapped === undefined) throw new KeyholderError('KW_INTERNAL', 'the checkpoint signing key is in the HSM (hsmKeyLabel): it is opened through the HSM, not the master key');
  const seed = unwrap(masterKey, CHECKPOINT_KEY_PURPOSE, checkpointKeyAad(initId, origin), fromBase64url(signingKeyWrapped)!);
  try {
    const privateKey = ed25519PrivateKey(seed);
    const expected = parseVerifierKey(state.audit.verifierKey);
    if (!equalCT(ed25519PublicBytes(privateKey), expected.publicKey)) {
      throw new KeyholderError('KW_INTERNAL', 'the checkpoint signing key in the state does not match its verifier key');
    }
    return keyObjectNoteSigner(origin, privateKey);
  } finally {
    wipe(seed);
  }
}

/**
 * The state file: read once at start, rewritten atomically on every change.
 * Writes are serialised, so two changes never race on the temporary file.
 */
export class StateFile {
  #queue: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string) {}

  /** The default location: `keyholder.json` in the socket's directory. */
  static besideSocket(socketPath: string): StateFile {
    return new StateFile(join(dirname(socketPath), STATE_FILE_NAME));
  }

  /** The state, or null when there is no file yet. A file that exists but does not parse is KW_INTERNAL. */
  async read(): Promise<KeyholderState | null> {
    let text: string;
    try {
      const buf = await readFile(this.path);
      if (buf.length > MAX_STATE_FILE) throw new KeyholderError('KW_INTERNAL', `the state file ${this.path} is larger than a state file can be`);
      text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      if (e instanceof KeyholderError) throw e;
      throw new KeyholderError('KW_INTERNAL', `the state file ${this.path} cannot be read`, { cause: e });
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new KeyholderError('KW_INTERNAL', `the state file ${this.path} is not JSON`, { cause: e });
    }
    const r = keyholderStateSchema.safeParse(value);
    if (!r.success) throw new KeyholderError('KW_INTERNAL', `the state file ${this.path} is malformed: ${r.error.issues[0]?.message ?? 'rejected'}`, { cause: r.error });
    return r.data;
  }

  /** Writes `state` atomically (mode 0600): temporary file, fsync, rename, fsync of the directory. */
  write(state: KeyholderState): Promise<void> {
    const checked = parseArg(keyholderStateSchema, state, 'keyholder state');
    const run = this.#queue.then(() => this.#writeNow(checked));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #writeNow(state: KeyholderState): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${process.pid}-${toHex(randomBytes(6))}`;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(state, null, 2)}\n`, 'utf8');
      await fh.chmod(0o600);
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw new KeyholderError('KW_INTERNAL', `writing the state file ${this.path} failed`, { cause: e });
    }
    await fh.close();
    try {
      await rename(tmp, this.path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw new KeyholderError('KW_INTERNAL', `writing the state file ${this.path} failed`, { cause: e });
    }
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }
}
