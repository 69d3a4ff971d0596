/**
 * Key schedule (docs/format.md §Key schedule):
 *   prk          = HKDF-Extract(salt, data_key)
 *   commitment   = HKDF-Expand(prk, "keyward/v1 commitment", 32)
 *   mac_key      = HKDF-Expand(prk, "keyward/v1 header-mac", 32)
 *   payload_key  = HKDF-Expand(prk, "keyward/v1 payload" ‖ header_mac, 32)
 * The commitment makes the header key-committing: one header opens under one
 * data key only. The payload key is bound to the exact authenticated header.
 */
import { platform } from '#platform';
import { equalCT, wipe } from '../bytes.js';
import { KeywardError } from '../errors.js';
import { hkdfExpand, hkdfExpandParts, hkdfExtract } from '../hpke/kdf.js';
import { COMMITMENT_LENGTH, LABELS } from './constants.js';

export class KeySchedule {
  private readonly prk: Uint8Array;
  readonly commitment: Uint8Array;

  constructor(dataKey: Uint8Array, salt: Uint8Array) {
    this.prk = hkdfExtract(salt, dataKey);
    this.commitment = hkdfExpand(this.prk, LABELS.commitment, COMMITMENT_LENGTH);
  }

  /** Constant-time check of the header's commitment; throws KW_COMMITMENT_MISMATCH. */
  checkCommitment(expected: Uint8Array): void {
    if (!equalCT(this.commitment, expected)) {
      this.dispose();
      throw new KeywardError('KW_COMMITMENT_MISMATCH');
    }
  }

  headerMac(authenticated: Uint8Array): Uint8Array {
    const key = hkdfExpand(this.prk, LABELS.headerMac, 32);
    const mac = platform.hmacSha256(key, authenticated);
    wipe(key);
    return mac;
  }

  /** Throws KW_HEADER_MAC_MISMATCH. */
  checkHeaderMac(authenticated: Uint8Array, mac: Uint8Array): void {
    if (!equalCT(this.headerMac(authenticated), mac)) {
      this.dispose();
      throw new KeywardError('KW_HEADER_MAC_MISMATCH');
    }
  }

  payloadKey(headerMac: Uint8Array): Uint8Array {
    return hkdfExpandParts(this.prk, [LABELS.payload, headerMac], 32);
  }

  dispose(): void { wipe(this.prk); }
}
