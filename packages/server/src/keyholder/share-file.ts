/**
 * The unseal share file: a comment line for humans and one data line.
 *
 *   # keyward unseal share <index> of <n> (threshold <k>)
 *   KEYWARD-SHARE-1:<base64url(body ‖ checksum)>
 *
 *   body     = version (0x01) ‖ init_id (16 bytes) ‖ index (1 byte, 1..255) ‖ share (33 bytes)
 *   checksum = SHA-256("keyward/v1 share-checksum" ‖ 0x00 ‖ body)[0..4]
 *
 * `share` is the output of shamir-secret-sharing (32 bytes ‖ x-coordinate).
 * The checksum catches copy errors before the share is looked at; the
 * keyholder's authoritative check is the share's hash in its state file
 * (custody.ts), which also binds init id and index.
 */
import { concat, fromBase64url, toBase64url, toHex, utf8 } from './bytes.js';
import { KeyholderError, check } from './errors.js';
import { sha256 } from './primitives.js';

export const SHARE_FORMAT = 0x01;
export const SHARE_PREFIX = 'KEYWARD-SHARE-1:';
export const INIT_ID_LENGTH = 16;
/** A Shamir share of a 32-byte master key: 32 bytes and the x-coordinate. */
export const SHARE_LENGTH = 33;
export const CHECKSUM_LENGTH = 4;
export const BODY_LENGTH = 1 + INIT_ID_LENGTH + 1 + SHARE_LENGTH;
const MAX_FILE_LENGTH = 4096;
const CHECKSUM_LABEL = utf8.encode('keyward/v1 share-checksum\0');

/** One custodian's share. */
export interface ShareRecord {
  /** Hex of the 16-byte init id. */
  readonly initId: string;
  /** 1-based position among the n shares (what custodians call "share 2 of 5"). */
  readonly index: number;
  /** The Shamir share bytes. */
  readonly share: Uint8Array;
}

export function shareBody(r: ShareRecord): Uint8Array {
  check(/^[0-9a-f]{32}$/.test(r.initId), 'init id must be 32 lowercase hex digits');
  check(Number.isInteger(r.index) && r.index >= 1 && r.index <= 255, 'share index must be 1..255');
  check(r.share.length === SHARE_LENGTH, `a share is ${SHARE_LENGTH} bytes`);
  return concat(Uint8Array.of(SHARE_FORMAT), Buffer.from(r.initId, 'hex'), Uint8Array.of(r.index), r.share);
}

const checksumOf = (body: Uint8Array) => sha256(CHECKSUM_LABEL, body).subarray(0, CHECKSUM_LENGTH);

/** The share file text (LF line endings, final newline). */
export function encodeShareFile(r: ShareRecord, total: number, threshold: number): string {
  const body = shareBody(r);
  return `# keyward unseal share ${r.index} of ${total} (threshold ${threshold})\n${SHARE_PREFIX}${toBase64url(concat(body, checksumOf(body)))}\n`;
}

/** A share file after its format and checksum checked. Not yet checked against any keyholder state. */
export interface DecodedShare extends ShareRecord {
  /** version ‖ init id ‖ index ‖ share: what the state's share hash covers. */
  readonly body: Uint8Array;
}

const corrupted = (why: string, index?: number) =>
  new KeyholderError('KW_SHARE_CORRUPTED', `unseal share${index === undefined ? '' : ` ${index}`} is corrupted: ${why}`, index === undefined ? undefined : { details: { index } });

/**
 * Parses a share file (text, or its UTF-8 bytes). Comment (`#`) and blank
 * lines are ignored; exactly one `KEYWARD-SHARE-1:` line must be present.
 * Throws KW_SHARE_CORRUPTED, naming the index whenever it can be known.
 */
export function decodeShareFile(input: string | Uint8Array): DecodedShare {
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    check(input.length <= MAX_FILE_LENGTH, 'a share file is at most 4 KiB', 'KW_SHARE_CORRUPTED');
    text = new TextDecoder('utf-8', { fatal: false }).decode(input);
  }
  if (text.length > MAX_FILE_LENGTH) throw corrupted('the file is larger than a share file can be');
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const hint = /^# keyward unseal share (\d{1,3}) of/m.exec(text)?.[1];
  const hinted = hint === undefined ? '' : ` (its comment line says share ${hint})`;
  if (lines.length !== 1 || !lines[0]!.startsWith(SHARE_PREFIX)) throw corrupted(`expected one "${SHARE_PREFIX}" line${hinted}`);
  const raw = fromBase64url(lines[0]!.slice(SHARE_PREFIX.length));
  if (!raw) throw corrupted(`the data line is not canonical base64url${hinted}`);
  if (raw.length !== BODY_LENGTH + CHECKSUM_LENGTH) throw corrupted(`the data is ${raw.length} bytes, not ${BODY_LENGTH + CHECKSUM_LENGTH}${hinted}`);
  const body = raw.subarray(0, BODY_LENGTH);
  const sum = raw.subarray(BODY_LENGTH);
  const indexAt = 1 + INIT_ID_LENGTH;
  const declared = body[indexAt]!;
  if (!Buffer.from(checksumOf(body)).equals(sum)) {
    // If only the index byte was damaged, exactly one other index makes the checksum hold: name that one.
    const probe = body.slice();
    for (let i = 1; i <= 255; i++) {
      if (i === declared) continue;
      probe[indexAt] = i;
      if (Buffer.from(checksumOf(probe)).equals(sum)) throw corrupted('its index byte was altered (checksum mismatch)', i);
    }
    throw corrupted('checksum mismatch', declared >= 1 ? declared : undefined);
  }
  if (body[0] !== SHARE_FORMAT) throw corrupted(`unknown share format version ${body[0]}`, declared);
  if (declared === 0) throw corrupted('index 0 is not a share index');
  return {
    initId: toHex(body.subarray(1, 1 + INIT_ID_LENGTH)),
    index: declared,
    share: body.slice(indexAt + 1),
    body: body.slice(),
  };
}
