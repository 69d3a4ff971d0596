/**
 * C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint, v1.0.0): a signed
 * note whose text is
 *
 *     <origin>\n
 *     <tree size, ASCII decimal, no leading zeroes>\n
 *     <root hash, standard padded base64>\n
 *     [<extension line>\n]…
 *
 * Parsing is strict: at least three lines, none empty, canonical decimal and
 * base64, a 32-byte (SHA-256, RFC 6962) root. Sizes above 2^53 - 1 are refused.
 */
import { base64 } from '@scure/base';
import { ahash, auint, isList } from './bytes.js';
import { TlogError, check } from './errors.js';
import { openNote, signNote, type NoteLimits, type NoteSignature, type NoteSigner, type NoteVerifier } from './note.js';

/** A parsed checkpoint body. */
export interface Checkpoint {
  /** Unique identifier of the log, e.g. `example.com/log42`. */
  readonly origin: string;
  /** Number of leaves. */
  readonly size: number;
  /** RFC 9162 root hash of the tree of `size` leaves (32 bytes). */
  readonly root: Uint8Array;
  /** Opaque extension lines (NOT RECOMMENDED by the spec), without newlines. */
  readonly extensions: readonly string[];
}

// eslint-disable-next-line no-control-regex -- signed notes forbid these
const CONTROL = /[\u0000-\u001f]/;
const DECIMAL = /^(0|[1-9][0-9]*)$/;

function bad(message: string): TlogError {
  return new TlogError('TLOG_MALFORMED_CHECKPOINT', message);
}

function checkLine(line: unknown, label: string): asserts line is string {
  check(typeof line === 'string' && line.length > 0, `${label} must be a non-empty string`);
  check(line.isWellFormed() && !CONTROL.test(line), `${label} must be one line of well-formed text without control characters`);
}

/**
 * The checkpoint note text (origin, size, base64 root, extension lines, each
 * ending in a newline).
 *
 * @example
 * formatCheckpoint({ origin: 'example.com/log', size: 1, root }) // 'example.com/log\n1\n<base64>\n'
 */
export function formatCheckpoint(cp: { readonly origin: string; readonly size: number; readonly root: Uint8Array; readonly extensions?: readonly string[] }): string {
  checkLine(cp.origin, 'origin');
  auint(cp.size, 'size');
  ahash(cp.root, 'root');
  const ext = cp.extensions ?? [];
  check(isList(ext), 'extensions must be an array of strings');
  ext.forEach((e, i) => checkLine(e, `extensions[${i}]`));
  return [cp.origin, String(cp.size), base64.encode(cp.root), ...ext].map((l) => l + '\n').join('');
}

/**
 * Parses a checkpoint note text strictly (`TLOG_MALFORMED_CHECKPOINT`). The text
 * is untrusted until its note signature is verified: prefer
 * {@link openCheckpoint}.
 *
 * @example
 * parseCheckpoint('go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n').size // 6476701
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== 'string' || !text.endsWith('\n')) throw bad('checkpoint text must end with a newline');
  if (!text.isWellFormed()) throw bad('checkpoint text is not well-formed Unicode');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw bad('a checkpoint has at least three lines: origin, size, root hash');
  lines.forEach((l, i) => {
    if (l.length === 0) throw bad(`checkpoint line ${i + 1} is empty`);
    if (CONTROL.test(l)) throw bad(`checkpoint line ${i + 1} contains a control character`);
  });
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  if (!DECIMAL.test(sizeLine)) throw bad('tree size must be ASCII decimal without leading zeroes');
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw bad('tree size is above 2^53 - 1');
  let root: Uint8Array;
  try {
    root = base64.decode(rootLine);
  } catch (e) {
    throw new TlogError('TLOG_MALFORMED_CHECKPOINT', 'root hash is not canonical padded base64', { cause: e });
  }
  if (root.length !== 32) throw bad(`root hash must be 32 bytes, got ${root.length}`);
  return { origin, size, root, extensions };
}

/**
 * Signs a checkpoint with one or more note signers (the log key; the key name
 * SHOULD equal the origin) and returns the signed note.
 *
 * @example
 * const note = signCheckpoint(newSigner(skey), { origin: 'example.com/log', size: f.size, root: f.root() });
 */
export function signCheckpoint(
  signer: NoteSigner | readonly NoteSigner[],
  cp: { readonly origin: string; readonly size: number; readonly root: Uint8Array; readonly extensions?: readonly string[] },
): string {
  const signers: readonly NoteSigner[] = Array.isArray(signer) ? signer : [signer as NoteSigner];
  return signNote(formatCheckpoint(cp), signers);
}

/** A checkpoint whose note signature verified. */
export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The note text (the exact bytes that were signed). */
  readonly text: string;
  readonly verified: readonly NoteSignature[];
  readonly unverified: readonly NoteSignature[];
}

/**
 * Verifies a signed checkpoint against the log's verifier key(s) (see
 * `openNote` for the rules), parses it strictly, and requires the expected
 * origin (`TLOG_ORIGIN_MISMATCH`).
 *
 * @example
 * const { checkpoint } = openCheckpoint(note, [newVerifier(logVkey)], { origin: 'example.com/log' });
 * verifyInclusion(leaf, index, checkpoint.size, proof, checkpoint.root);
 */
export function openCheckpoint(
  note: string | Uint8Array,
  verifiers: readonly NoteVerifier[],
  options: { readonly origin: string; readonly limits?: NoteLimits },
): OpenedCheckpoint {
  check(typeof options === 'object' && options !== null, 'options.origin is required');
  checkLine(options.origin, 'options.origin');
  const opened = openNote(note, verifiers, options.limits);
  const checkpoint = parseCheckpoint(opened.text);
  if (checkpoint.origin !== options.origin) {
    throw new TlogError('TLOG_ORIGIN_MISMATCH', `checkpoint origin ${JSON.stringify(checkpoint.origin)} is not ${JSON.stringify(options.origin)}`);
  }
  return { checkpoint, text: opened.text, verified: opened.verified, unverified: opened.unverified };
}
