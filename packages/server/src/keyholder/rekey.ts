/**
 * Rekey — unseal-share rotation, online (docs/key-service-crypto.md §Rekey;
 * Vault's `operator rekey`). An administrator starts ONE attempt on an
 * unsealed keyholder, naming the new n, k and one custodian recipient per new
 * share; custodians then submit their CURRENT shares, each sealed to the
 * attempt's own X25519 key with context { purpose: "rekey", boot: <id> } (so a
 * share sealed for unseal, for another attempt or for anything else is
 * refused, and neither the API nor a TLS terminator sees it). Each share is
 * checked like an unseal share (unsealer.ts: KW_SHARE_CORRUPTED,
 * KW_SHARE_WRONG_INIT, KW_SHARE_DUPLICATE). At the current threshold:
 *
 *   software custody:  mk = combine(shares), checked against mkCheck;
 *                      the SAME mk is split again (fresh polynomial) → new shares, new hashes
 *   HSM-wrapped:       rk = combine(recovery shares), checked against recoveryCheck, wiped;
 *                      a NEW independent recovery key is split (its check replaces recoveryCheck)
 *
 * The new shares are sealed here, inside the keyholder, to the given
 * recipients (custodians.ts), and their plaintext is wiped: only armored
 * envelopes leave. The new custody fragment (generation + 1) is then
 * committed by the service through its serialised, atomic state-file write;
 * from that moment the old shares' hashes are gone and they are refused.
 *
 * What a rekey does not do: replace the master key. Everything stored is
 * wrapped under it, so k OLD shares and a copy of the store (and of
 * keyholder.json) still rebuild it: custodians must destroy their old shares.
 *
 * An attempt expires (default 1 h), is cancelled by `cancel` or by sealing,
 * and is lost in a restart (nothing is committed before completion). A
 * completed attempt keeps its sealed shares (ciphertext only) for `status`
 * until cancelled, replaced or expired, so a lost response loses nothing.
 *
 * @example
 * const a = await RekeyAttempt.start({ custody, shares: 5, threshold: 3, recipients });
 * const env = await sealShareForBoot(shareText, a.recipient, a.id, 'rekey'); // custodian's CLI
 * const r = await a.submit(env);   // { received, required, index, result: null | { custody, sealedShares } }
 */
import { parseRecipient } from '@keyward/core';
import { toHex } from './bytes.js';
import { initCustody, splitMasterKey, type CustodyState, type ShareFile } from './custody.js';
import { splitToRecipients, type CustodianShare } from './custodians.js';
import { generationOf, type CustodyRecord } from './custody-sync.js';
import { KeyholderError, check, isKeyholderError } from './errors.js';
import { recoveryCheckOf } from './hsm-custody.js';
import { wipe } from './primitives.js';
import { decodeShareFile } from './share-file.js';
import { REKEY_PURPOSE, UnsealKey } from './unseal-key.js';
import { Unsealer } from './unsealer.js';

/** How long an attempt waits for its shares by default. */
export const REKEY_TTL_MS = 60 * 60 * 1000;

export interface RekeyStartOptions {
  /** The custody fragment in force (its shares are the ones to submit). */
  readonly custody: CustodyState;
  readonly shares: number;
  readonly threshold: number;
  /** One Keyward recipient string per new share, in share order. */
  readonly recipients: readonly string[];
  readonly now?: number;
  readonly ttlMs?: number;
}

/** What a rekey made: the custody fragment to commit and the new shares sealed to their custodians. */
export interface RekeyResult {
  readonly custody: CustodyState;
  readonly sealedShares: readonly CustodianShare[];
}

/** Status of an attempt (no share material, ever; the sealed shares are ciphertext to their custodians). */
export interface RekeyView {
  readonly id: string;
  /** Where custodians seal their current shares (purpose "rekey", boot = id). */
  readonly recipient: string;
  readonly mode: 'software' | 'hsm-wrapped';
  /** The new set. */
  readonly shares: number;
  readonly threshold: number;
  /** Current shares received, and the current threshold. */
  readonly received: number;
  readonly required: number;
  readonly startedAt: number;
  readonly expiresAt: number;
  /** Set once complete: the new generation and share hashes, and the sealed shares. */
  readonly completed: { generation: number; shareHashes: string[]; sealedShares: CustodianShare[]; record: CustodyRecord } | null;
}

export class RekeyAttempt {
  readonly id: string;
  readonly recipient: string;
  readonly shares: number;
  readonly threshold: number;
  readonly startedAt: number;
  readonly expiresAt: number;
  /** The generation of the custody the attempt started from (a commit checks it is still in force). */
  readonly fromGeneration: number;
  readonly #custody: CustodyState;
  readonly #recipients: readonly string[];
  readonly #key: UnsealKey;
  #unsealer: Unsealer;
  #completed: RekeyView['completed'] = null;
  #finishing = false;

  private constructor(opts: RekeyStartOptions, key: UnsealKey, now: number) {
    this.#custody = opts.custody;
    this.#recipients = [...opts.recipients];
    this.#key = key;
    this.id = key.bootId;
    this.recipient = key.recipient;
    this.shares = opts.shares;
    this.threshold = opts.threshold;
    this.startedAt = now;
    this.expiresAt = now + (opts.ttlMs ?? REKEY_TTL_MS);
    this.fromGeneration = generationOf(opts.custody);
    this.#unsealer = this.#freshUnsealer();
  }

  /**
   * Checks the new n, k and recipients (all parsed before anything is made;
   * the same recipient twice is refused: one person would hold two shares)
   * and makes the attempt's key. KW_INVALID_ARGUMENT naming what is wrong.
   */
  static async start(opts: RekeyStartOptions): Promise<RekeyAttempt> {
    const n = opts.shares;
    const k = opts.threshold;
    check(Number.isInteger(n) && n >= 2 && n <= 255, 'the number of shares must be an integer from 2 to 255');
    check(Number.isInteger(k) && k >= 2 && k <= n, 'the threshold must be an integer from 2 to the number of shares');
    check(opts.recipients.length === n, `${n} shares but ${opts.recipients.length} recipients: give one recipient per share`);
    const seen = new Map<string, number>();
    for (const [i, text] of opts.recipients.entries()) {
      try {
        await parseRecipient(text);
      } catch (e) {
        throw new KeyholderError('KW_INVALID_ARGUMENT', `recipient ${i + 1} is not a Keyward recipient string`, { cause: e });
      }
      const before = seen.get(text);
      check(before === undefined, `recipients ${before} and ${i + 1} are the same: each new share goes to a different custodian`);
      seen.set(text, i + 1);
    }
    const key = await UnsealKey.generate(REKEY_PURPOSE);
    return new RekeyAttempt(opts, key, opts.now ?? Date.now());
  }

  get mode(): RekeyView['mode'] { return this.#custody.hsm ? 'hsm-wrapped' : 'software'; }
  get done(): boolean { return this.#completed !== null; }

  expired(now = Date.now()): boolean { return now > this.expiresAt; }

  view(): RekeyView {
    return {
      id: this.id, recipient: this.recipient, mode: this.mode, shares: this.shares, threshold: this.threshold,
      received: this.#unsealer.progress().received, required: this.#custody.threshold,
      startedAt: this.startedAt, expiresAt: this.expiresAt,
      completed: this.#completed && { ...this.#completed, shareHashes: [...this.#completed.shareHashes], sealedShares: this.#completed.sealedShares.map((x) => ({ ...x })) },
    };
  }

  #freshUnsealer(): Unsealer {
    const c = this.#custody;
    return c.recoveryCheck !== undefined ? new Unsealer(c, { value: c.recoveryCheck, of: recoveryCheckOf }) : new Unsealer(c);
  }

  /**
   * Opens one current share sealed to this attempt's key and submits it.
   * Below the threshold: progress. At the threshold: the new custody and the
   * sealed new shares (not yet committed: the caller commits, then calls
   * {@link markCompleted}). KW_UNSEAL_FAILED discards the progress (the
   * attempt stays open); every other refusal changes nothing.
   */
  async submit(envelope: Uint8Array): Promise<{ index: number; received: number; required: number; result: RekeyResult | null }> {
    if (this.#completed || this.#finishing) throw new KeyholderError('KW_REKEY_NOT_FOUND', `rekey ${this.id} is complete: it takes no more shares`);
    const file = await this.#key.openSealedShare(envelope);
    let index: number;
    let progress;
    try {
      const d = decodeShareFile(file);
      index = d.index;
      wipe(d.share, d.body);
      progress = await this.#unsealer.submit(file);
    } catch (e) {
      if (isKeyholderError(e, 'KW_UNSEAL_FAILED')) this.#unsealer = this.#freshUnsealer();
      throw e;
    } finally {
      wipe(file);
    }
    const required = this.#custody.threshold;
    if (progress.sealed) return { index, received: progress.received, required, result: null };
    this.#finishing = true;
    try {
      return { index, received: progress.received, required, result: await this.#resplit(progress.masterKey) };
    } catch (e) {
      this.#finishing = false;
      this.#unsealer = this.#freshUnsealer();
      throw e;
    }
  }

  /** `key`: the master key (software) or the recovery key (HSM-wrapped), checked already; wiped here. */
  async #resplit(key: Uint8Array): Promise<RekeyResult> {
    const c = this.#custody;
    const opts = { shares: this.shares, threshold: this.threshold, initId: c.initId };
    let made: ShareFile[] = [];
    try {
      let custody: CustodyState;
      if (c.hsm) {
        // The recovery key only proved the quorum: the new recovery shares are of a new, independent key.
        const recovery = await initCustody(opts);
        made = [...recovery.shares];
        try {
          custody = { ...c, threshold: opts.threshold, shareHashes: recovery.state.shareHashes, recoveryCheck: toHex(recoveryCheckOf(recovery.masterKey)), generation: this.fromGeneration + 1 };
        } finally {
          wipe(recovery.masterKey);
        }
      } else {
        const split = await splitMasterKey(key, opts);
        made = split.shares;
        custody = { ...c, threshold: opts.threshold, shareHashes: split.state.shareHashes, generation: this.fromGeneration + 1 };
      }
      const sealedShares = await splitToRecipients(made, this.#recipients);
      return { custody, sealedShares };
    } finally {
      wipe(key);
      for (const s of made) wipe(s.share);
    }
  }

  /**
   * After the commit: the attempt is complete; `status` shows its sealed shares and the share-set
   * record other nodes adopt (custody-sync.ts) until it is cancelled or expires.
   */
  markCompleted(result: RekeyResult, record: CustodyRecord): void {
    this.#finishing = false;
    this.#completed = { generation: generationOf(result.custody), shareHashes: [...result.custody.shareHashes], sealedShares: result.sealedShares.map((x) => ({ ...x })), record };
    this.#unsealer.reset();
    this.#key.dispose();
  }

  /** The commit failed: progress is discarded, the attempt stays open. */
  abortCompletion(): void {
    this.#finishing = false;
    this.#unsealer = this.#freshUnsealer();
  }

  /** Cancels: forgets the shares received (wiping them) and drops the attempt's key. */
  dispose(): void {
    this.#unsealer.reset();
    this.#key.dispose();
  }
}
