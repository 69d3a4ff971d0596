/**
 * The directory's keys as the API process sees them (docs/directory.md §Key
 * custody): a {@link DirectoryKeyHolder} whose VRF proofs and tree-head
 * signatures come from the keyholder (`directory-vrf`, `directory-sign-head`;
 * keyholder/directory-keys.ts). The API holds only the public keys.
 *
 * The keyholder makes the keys the first time the directory is used after it
 * is unsealed (`directory-keys`): derived from its master key, or imported
 * once from a pre-keyholder key file (`<data>/directory.key`, or the
 * configured `directory.keyFile`), which is then overwritten with zeros and
 * deleted. Nothing is asked of the keyholder at start, so a server starts
 * sealed or uninitialised as before; directory requests answer the
 * keyholder's code (KW_SEALED, KW_NOT_INITIALIZED) until it can.
 */
import { existsSync, openSync, closeSync, fstatSync, readSync, writeSync, fsyncSync, unlinkSync } from 'node:fs';
import { SIGNATURE_TYPE_ED25519, ed25519Signer, formatVerifierKey } from '@keyward/tlog';
import { base64urlnopad } from '@scure/base';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import type { DirectoryKeyHolder, SignedHeadRequest } from '@keyward/directory';
import type { KeyholderClient } from '../keyholder/client.js';
import type { DirectoryKeySource } from './service.js';
import type { HeadLogKey } from './witness.js';

const b64 = (b: Uint8Array): string => base64urlnopad.encode(b);
const unb64 = (s: string): Uint8Array => base64urlnopad.decode(s);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
/** Remembered VRF answers (they are deterministic and public once served). */
const VRF_CACHE = 4096;
/** Remembered tree-head signatures (a request that read the log just before an update reuses its head's). */
const SIGNED_CACHE = 256;

/** What the keyholder answers (the `call` method of a {@link KeyholderClient} or a service). */
export type KeyholderCaller = Pick<KeyholderClient, 'call'>;

/**
 * Reads a pre-keyholder key file (64 bytes: signing seed ‖ VRF key) for import, or null when
 * there is none. The caller wipes the bytes.
 */
export function readLegacyKeyFile(path: string): Uint8Array | null {
  if (!existsSync(path)) return null;
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size !== 64) throw new Error(`the directory key file ${path} is not 64 bytes: import refused (docs/directory.md §Key custody)`);
    const b = new Uint8Array(64);
    if (readSync(fd, b, 0, 64, 0) !== 64) throw new Error(`the directory key file ${path} could not be read`);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** Overwrites a key file with zeros, syncs it and deletes it. */
export function destroyLegacyKeyFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, new Uint8Array(fstatSync(fd).size), 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  unlinkSync(path);
}

/**
 * The keyholder's directory keys. {@link KeyholderDirectoryKeys.open} asks the keyholder for its
 * public keys (creating or importing the keys on first use).
 *
 * @example
 * const holder = await KeyholderDirectoryKeys.open(keyholder, { legacyKeyFile: join(data, 'directory.key') });
 * const log = await DirectoryBuilder.create(store, holder);
 */
export class KeyholderDirectoryKeys implements DirectoryKeyHolder {
  readonly #kh: KeyholderCaller;
  readonly #vrf = new Map<string, { output: Uint8Array; proof: Uint8Array }>();
  /** Heads signed for this process (size → root hex and signature), newest last; at most {@link SIGNED_CACHE}. */
  readonly #signed = new Map<number, { root: string; signature: Uint8Array }>();
  /** The size of the last head the keyholder signed, as last learned (its consistency proofs start there). */
  #lastSize: number;

  private constructor(
    kh: KeyholderCaller,
    readonly signaturePublicKey: Uint8Array,
    readonly vrfPublicKey: Uint8Array,
    /** How the keyholder got its keys: derived from its master key, or imported from a key file. */
    readonly source: 'derived' | 'imported',
    lastSize: number,
  ) {
    this.#kh = kh;
    this.#lastSize = lastSize;
  }

  /**
   * Opens the keyholder's directory keys; imports `legacyKeyFile` once if it exists (then zeroes
   * and deletes it). A key file holding other keys than the keyholder's is refused
   * (KW_DIRECTORY_KEY_MISMATCH) and left in place.
   */
  static async open(kh: KeyholderCaller, opts: { legacyKeyFile?: string; log?: (msg: string, fields?: object) => void } = {}): Promise<KeyholderDirectoryKeys> {
    const legacy = opts.legacyKeyFile !== undefined ? readLegacyKeyFile(opts.legacyKeyFile) : null;
    let r;
    try {
      r = await kh.call('directory-keys', legacy ? { import: b64(legacy) } : {});
    } finally {
      legacy?.fill(0);
    }
    if (legacy && opts.legacyKeyFile !== undefined) {
      destroyLegacyKeyFile(opts.legacyKeyFile);
      opts.log?.('directory: the key file was imported into the keyholder, zeroed and deleted', { file: opts.legacyKeyFile });
    }
    return new KeyholderDirectoryKeys(kh, unb64(r.signaturePublicKey), unb64(r.vrfPublicKey), r.source, r.lastHead?.size ?? 0);
  }

  async vrfProve(label: Uint8Array, version: number): Promise<{ output: Uint8Array; proof: Uint8Array }> {
    const id = `${hex(label)}:${version}`;
    const hit = this.#vrf.get(id);
    if (hit) return hit;
    const r = await this.#kh.call('directory-vrf', { label: b64(label), version });
    const v = { output: unb64(r.output), proof: unb64(r.proof) };
    if (this.#vrf.size >= VRF_CACHE) this.#vrf.delete(this.#vrf.keys().next().value!);
    this.#vrf.set(id, v);
    return v;
  }

  /**
   * Has the keyholder sign a tree head. A head larger than the last one it signed goes with the
   * consistency proof from that one (the keyholder refuses a fork, even a growing one:
   * KW_DIRECTORY_HEAD_INCONSISTENT); when the keyholder signed a larger head meanwhile (another
   * caller), its last size is read again and the proof made once more from there.
   */
  async signTreeHead(tbs: Uint8Array, head: SignedHeadRequest): Promise<Uint8Array> {
    const root = hex(head.root);
    // Ed25519 is deterministic: the same head has the same signature, so it is asked for once.
    const hit = this.#signed.get(head.treeSize);
    if (hit && hit.root === root) return hit.signature;
    const ask = async (from: number) => {
      const c = from >= 1 && from < head.treeSize && typeof head.consistency === 'function' ? await head.consistency(from) : null;
      return this.#kh.call('directory-sign-head', {
        tbs: b64(tbs),
        ...(c ? { consistency: { from, fromHeads: c.fromHeads.map(b64), proof: c.proof.map(b64) } } : {}),
      });
    };
    let r;
    try {
      r = await ask(this.#lastSize);
    } catch (e) {
      if ((e as { code?: string }).code !== 'KW_DIRECTORY_HEAD_INCONSISTENT') throw e;
      const known = (await this.#kh.call('directory-keys', {})).lastHead?.size ?? 0;
      if (known === this.#lastSize) throw e;
      this.#lastSize = known;
      r = await ask(known);
    }
    if (head.treeSize > this.#lastSize) this.#lastSize = head.treeSize;
    const signature = unb64(r.signature);
    this.#signed.set(head.treeSize, { root, signature });
    if (this.#signed.size > SIGNED_CACHE) this.#signed.delete(this.#signed.keys().next().value!);
    return signature;
  }

  /**
   * The witness head-log key (docs/witness.md §The directory), from the keyholder: a key
   * derived one-way from the tree-head signing key that signs head-log checkpoints only.
   */
  async headLogKey(): Promise<HeadLogKey> {
    const r = await this.#kh.call('directory-head-log-key', {});
    const seed = unb64(r.seed);
    try {
      const origin = `keyward.local/directory-heads/${r.id}`;
      const der = Buffer.concat([PKCS8_ED25519, seed]);
      const jwk = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
      der.fill(0);
      const pub = base64urlnopad.decode(String(jwk.x));
      return { origin, signer: ed25519Signer(origin, seed), verifierKey: formatVerifierKey(origin, SIGNATURE_TYPE_ED25519, pub) };
    } finally {
      seed.fill(0);
    }
  }
}

/**
 * The server's {@link DirectoryKeySource}: opens {@link KeyholderDirectoryKeys} on first use
 * (retrying after a failure, e.g. while the keyholder is sealed) and, with `headLog`, the
 * witness head-log key with them. {@link headLog} is usable once the keys are open (the
 * publisher asks for the log first).
 *
 * @example
 * const keys = new KeyholderDirectorySource(keyholder, { legacyKeyFile, headLog: true });
 * const service = await DirectoryService.open({ store, keys });
 */
export class KeyholderDirectorySource implements DirectoryKeySource {
  readonly #kh: KeyholderCaller;
  readonly #opts: { legacyKeyFile?: string; headLog?: boolean; log?: (msg: string, fields?: object) => void };
  #opening: Promise<KeyholderDirectoryKeys> | null = null;
  #opened: KeyholderDirectoryKeys | null = null;
  #headLog: HeadLogKey | null = null;

  constructor(kh: KeyholderCaller, opts: { legacyKeyFile?: string; headLog?: boolean; log?: (msg: string, fields?: object) => void } = {}) {
    this.#kh = kh;
    this.#opts = opts;
  }

  holder(): Promise<KeyholderDirectoryKeys> {
    this.#opening ??= (async () => {
      const { headLog, ...open } = this.#opts;
      const keys = await KeyholderDirectoryKeys.open(this.#kh, open);
      if (headLog) this.#headLog = await keys.headLogKey();
      this.#opened = keys;
      return keys;
    })().catch((e: unknown) => {
      this.#opening = null;
      throw e;
    });
    return this.#opening;
  }

  /**
   * The public keys (base64url), once {@link holder} has opened them; null before. Never opens
   * them itself (the node heartbeat reads this: docs/deployment.md §Nodes).
   */
  get publicKeys(): { signature_key: string; vrf_key: string } | null {
    const k = this.#opened;
    return k === null ? null : { signature_key: b64(k.signaturePublicKey), vrf_key: b64(k.vrfPublicKey) };
  }

  /** The head-log key, read through once the keys are open (else an Error: not open yet). */
  get headLog(): HeadLogKey {
    const key = (): HeadLogKey => {
      if (!this.#headLog) throw new Error('the directory keys are not open yet: the head-log key comes from the keyholder once it is unsealed');
      return this.#headLog;
    };
    return {
      get origin() { return key().origin; },
      get signer() { return key().signer; },
      get verifierKey() { return key().verifierKey; },
    };
  }
}
