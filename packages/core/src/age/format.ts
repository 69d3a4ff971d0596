/**
 * The age v1 textual header: strict parsing and canonical serialization.
 *
 *     age-encryption.org/v1
 *     -> TYPE ARG...            (one or more stanzas)
 *     BASE64 BODY, 64 columns, ending with a line shorter than 64 (maybe empty)
 *     --- BASE64(HMAC-SHA-256)  (43 characters)
 *
 * Every deviation from the ABNF of the spec is rejected with KW_AGE_MALFORMED:
 * CR characters, empty or non-VCHAR arguments, body lines longer than 64
 * columns, a missing short final body line, non-canonical base64, etc.
 */
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ascii, b64decodeCanonical, b64encode, concat, constantTimeEqual, fail, latin1, wipe } from './util.js';

/** The exact first line of every binary age v1 file (without its LF). */
export const VERSION_LINE = 'age-encryption.org/v1';
const VERSION_PREFIX = 'age-encryption.org/';
/** Length of the random payload nonce that follows the header. */
export const PAYLOAD_NONCE_SIZE = 16;
const BODY_COLUMNS = 64;
const LF = 0x0a;

/** One recipient stanza: its arguments (the first names the type) and raw body. */
export interface Stanza {
  readonly args: readonly string[];
  readonly body: Uint8Array;
}

/** A parsed header and where the payload starts. */
export interface ParsedHeader {
  readonly stanzas: readonly Stanza[];
  /** The header bytes covered by the MAC: everything up to and including `---`. */
  readonly macInput: Uint8Array;
  /** The 32-byte header MAC. */
  readonly mac: Uint8Array;
  /** Offset of the payload (its 16-byte nonce) in the file. */
  readonly payloadOffset: number;
}

function malformed(message: string): never {
  fail('KW_AGE_MALFORMED', `age header: ${message}`);
}

/** An argument is 1*VCHAR (0x21..0x7e). */
function isValidArgument(arg: string): boolean {
  if (arg.length === 0) return false;
  for (let i = 0; i < arg.length; i++) {
    const c = arg.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

const BODY_LINE = /^[A-Za-z0-9+/]*$/;
const MAC_LINE = /^--- ([A-Za-z0-9+/]{43})$/;

/** Reads LF-terminated lines of printable ASCII from the file. */
class LineReader {
  pos = 0;
  constructor(private readonly bytes: Uint8Array) {}

  /** The next line without its LF; fails if there is no LF or a byte is not printable ASCII. */
  next(what: string): string {
    const start = this.pos;
    const end = this.bytes.indexOf(LF, start);
    if (end < 0) malformed(`unexpected end of header while reading ${what}`);
    for (let i = start; i < end; i++) {
      const c = this.bytes[i]!;
      // Only printable ASCII and spaces: this rejects CR (CRLF line endings) and control bytes.
      if (c < 0x20 || c > 0x7e) malformed(`invalid character 0x${c.toString(16).padStart(2, '0')} in ${what}`);
    }
    this.pos = end + 1;
    return latin1(this.bytes, start, end);
  }
}

/**
 * Parses the header of a binary age file. Does not verify the MAC (that needs
 * the file key) and does not interpret stanzas.
 */
export function parseHeader(file: Uint8Array): ParsedHeader {
  const reader = new LineReader(file);
  const prefix = latin1(file, 0, Math.min(file.length, VERSION_PREFIX.length));
  if (prefix !== VERSION_PREFIX) malformed('not an age file (missing "age-encryption.org/" version line)');
  const version = reader.next('the version line');
  if (version !== VERSION_LINE) malformed(`unsupported version "${version.slice(VERSION_PREFIX.length, 64)}"`);

  const stanzas: Stanza[] = [];
  for (;;) {
    const lineStart = reader.pos;
    const line = reader.next('a stanza or the MAC line');
    if (line.startsWith('-> ')) {
      const args = line.slice(3).split(' ');
      for (const a of args) {
        if (!isValidArgument(a)) malformed('stanza has an empty or invalid argument');
      }
      let b64 = '';
      for (;;) {
        const bodyLine = reader.next('a stanza body line');
        if (!BODY_LINE.test(bodyLine)) malformed('stanza body line is not base64');
        if (bodyLine.length > BODY_COLUMNS) malformed('stanza body line is longer than 64 columns');
        b64 += bodyLine;
        if (bodyLine.length < BODY_COLUMNS) break;
      }
      const body = b64decodeCanonical(b64);
      if (body === null) malformed('stanza body is not canonical unpadded base64');
      stanzas.push({ args, body });
      continue;
    }
    if (line.startsWith('---')) {
      if (stanzas.length === 0) malformed('header has no recipient stanza');
      const m = MAC_LINE.exec(line);
      if (m === null) malformed('malformed MAC line');
      const mac = b64decodeCanonical(m[1]!);
      if (mac === null || mac.length !== 32) malformed('MAC is not canonical base64 of 32 bytes');
      const macInput = file.slice(0, lineStart + 3);
      const payloadOffset = reader.pos;
      if (file.length - payloadOffset < PAYLOAD_NONCE_SIZE) {
        fail('KW_TRUNCATED', 'age file ends before the 16-byte payload nonce');
      }
      return { stanzas, macInput, mac, payloadOffset };
    }
    malformed('expected a "-> " stanza or the "---" MAC line');
  }
}

/** Serializes the header up to and including `---` (the bytes the MAC covers). */
export function encodeHeaderForMac(stanzas: readonly Stanza[]): Uint8Array {
  if (stanzas.length === 0) fail('KW_INTERNAL', 'an age header needs at least one stanza');
  let s = VERSION_LINE + '\n';
  for (const st of stanzas) {
    if (st.args.length === 0 || !st.args.every(isValidArgument)) fail('KW_INTERNAL', 'invalid stanza argument');
    s += '-> ' + st.args.join(' ') + '\n';
    const b64 = b64encode(st.body);
    let i = 0;
    for (; i + BODY_COLUMNS <= b64.length; i += BODY_COLUMNS) s += b64.slice(i, i + BODY_COLUMNS) + '\n';
    // The final line is always shorter than 64 columns, possibly empty.
    s += b64.slice(i) + '\n';
  }
  return ascii(s + '---');
}

/** HMAC-SHA-256 of the header with key HKDF-SHA-256(ikm = file key, salt = empty, info = "header"). */
export function computeHeaderMac(fileKey: Uint8Array, macInput: Uint8Array): Uint8Array {
  const key = hkdf(sha256, fileKey, new Uint8Array(0), ascii('header'), 32);
  try {
    return hmac(sha256, key, macInput);
  } finally {
    wipe(key);
  }
}

/** Constant-time check of the header MAC. */
export function verifyHeaderMac(fileKey: Uint8Array, header: ParsedHeader): boolean {
  const expected = computeHeaderMac(fileKey, header.macInput);
  return constantTimeEqual(expected, header.mac);
}

/** The complete serialized header, ending with the MAC line's LF. */
export function encodeHeader(stanzas: readonly Stanza[], fileKey: Uint8Array): Uint8Array {
  const macInput = encodeHeaderForMac(stanzas);
  const mac = computeHeaderMac(fileKey, macInput);
  return concat(macInput, ascii(' ' + b64encode(mac) + '\n'));
}
