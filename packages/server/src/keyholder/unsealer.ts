/**
 * Collects unseal shares in memory and rebuilds the master key once the
 * threshold is reached. Every share is checked on submission, before any
 * combination, in this order:
 *
 *   1. format and checksum      → KW_SHARE_CORRUPTED (naming the index when it can be known)
 *   2. init id                  → KW_SHARE_WRONG_INIT
 *   3. hash of the share vs the → KW_SHARE_CORRUPTED naming the index
 *      state's share_hash[index]
 *   4. index already received   → KW_SHARE_DUPLICATE (not counted again)
 *
 * A refused share changes nothing. With k shares the unsealer combines them,
 * compares HMAC(mk, "keyward/v1 mk-check") with the state in constant time,
 * wipes the shares and returns the master key; if the check fails (the state
 * and the shares disagree) it wipes everything and starts over
 * (KW_UNSEAL_FAILED). Submissions are serialised, so two concurrent ones can
 * never both count as the k-th.
 *
 * @example
 * const u = new Unsealer(state);
 * await u.submit(share1);                  // { sealed: true, received: 1, threshold: 3 }
 * await u.submit(share2);
 * const r = await u.submit(share3);        // { sealed: false, masterKey, … }
 */
import { combine } from 'shamir-secret-sharing';
import { fromHex } from './bytes.js';
import { KeyholderError } from './errors.js';
import { equalCT, wipe } from './primitives.js';
import { MASTER_KEY_LENGTH, mkCheckOf, parseCustodyState, shareHashOfBody, type CustodyState } from './custody.js';
import { decodeShareFile } from './share-file.js';

export type UnsealProgress =
  | { readonly sealed: true; readonly received: number; readonly threshold: number }
  | { readonly sealed: false; readonly received: number; readonly threshold: number; readonly masterKey: Uint8Array };

export class Unsealer {
  private readonly state: CustodyState;
  private readonly hashes: readonly Uint8Array[];
  private readonly mkCheck: Uint8Array;
  /** index → share bytes, only while sealed. */
  private readonly received = new Map<number, Uint8Array>();
  private unsealed = false;
  private queue: Promise<unknown> = Promise.resolve();

  private readonly checkOf: (key: Uint8Array) => Uint8Array;

  /**
   * `state` is the custody fragment of the keyholder state file; it is checked
   * here. `check` replaces the master-key check for shares of another key (the
   * recovery key of HSM-wrapped mode: hsm-custody.ts).
   */
  constructor(state: unknown, check?: { value: string; of: (key: Uint8Array) => Uint8Array }) {
    this.state = parseCustodyState(state);
    this.hashes = this.state.shareHashes.map((h) => fromHex(h, 32)!);
    this.mkCheck = fromHex(check?.value ?? this.state.mkCheck, 32)!;
    this.checkOf = check?.of ?? mkCheckOf;
  }

  get threshold(): number { return this.state.threshold; }

  /** Current progress (no secrets). */
  progress(): { sealed: boolean; received: number; threshold: number } {
    return { sealed: !this.unsealed, received: this.received.size, threshold: this.state.threshold };
  }

  /**
   * Submits one share file (text or its UTF-8 bytes). Resolves with progress,
   * and with the master key when this share completed the threshold.
   */
  submit(shareFile: string | Uint8Array): Promise<UnsealProgress> {
    const run = this.queue.then(() => this.submitNow(shareFile));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Forgets the shares received so far (wiping them). */
  reset(): void {
    for (const s of this.received.values()) wipe(s);
    this.received.clear();
  }

  private async submitNow(shareFile: string | Uint8Array): Promise<UnsealProgress> {
    if (this.unsealed) throw new KeyholderError('KW_ALREADY_UNSEALED');
    const s = decodeShareFile(shareFile);
    if (s.initId !== this.state.initId) {
      throw new KeyholderError('KW_SHARE_WRONG_INIT', `share ${s.index} was made by init ${s.initId}, this keyholder is init ${this.state.initId}`, { details: { index: s.index } });
    }
    const expected = this.hashes[s.index - 1];
    if (!expected) {
      throw new KeyholderError('KW_SHARE_CORRUPTED', `unseal share ${s.index} is corrupted: this init has only ${this.hashes.length} shares`, { details: { index: s.index } });
    }
    if (!equalCT(shareHashOfBody(s.body), expected)) {
      wipe(s.share, s.body);
      throw new KeyholderError('KW_SHARE_CORRUPTED', `unseal share ${s.index} is corrupted: it does not match the hash recorded at init`, { details: { index: s.index } });
    }
    wipe(s.body);
    if (this.received.has(s.index)) {
      wipe(s.share);
      throw new KeyholderError('KW_SHARE_DUPLICATE', `share ${s.index} was already submitted (${this.received.size} of ${this.state.threshold} received)`, { details: { index: s.index } });
    }
    this.received.set(s.index, s.share);
    const { threshold } = this.state;
    if (this.received.size < threshold) return { sealed: true, received: this.received.size, threshold };

    // shamir-secret-sharing checks `constructor === Uint8Array` / `=== Array`: pass exactly those.
    const shares = [...this.received.values()].map((b) => Uint8Array.from(b));
    this.reset();
    let masterKey: Uint8Array;
    try {
      masterKey = await combine(shares);
    } catch (e) {
      throw new KeyholderError('KW_INTERNAL', 'combining the shares failed', { cause: e });
    } finally {
      for (const b of shares) wipe(b);
    }
    if (masterKey.length !== MASTER_KEY_LENGTH || !equalCT(this.checkOf(masterKey), this.mkCheck)) {
      wipe(masterKey);
      throw new KeyholderError('KW_UNSEAL_FAILED');
    }
    this.unsealed = true;
    return { sealed: false, received: threshold, threshold, masterKey };
  }
}
