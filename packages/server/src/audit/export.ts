/**
 * `keyward audit export`: the log as JSON Lines that anyone can verify
 * offline (verify.ts) with the log's public key.
 *
 *     {"checkpoint":"<signed note>","from":0,"keyward_audit_export":1,"origin":"…","prefix":[],"size":N,"suffix":[],"to":N}
 *     <event 0, canonical JSON>
 *     …
 *     <event N-1>
 *
 * Every line is RFC 8785 canonical JSON ending in "\n". The header carries the
 * signed checkpoint the export is checked against (by default the latest
 * stored one; events appended after it are not exported — they are covered by
 * the next checkpoint, at most a second later). A partial export (`from` > 0
 * or `to` < size) carries the hashes of the aligned subtrees it leaves out, as
 * lower-case hex: `prefix` covers [0, from), `suffix` covers [to, size)
 * (tree.ts `alignedRanges`), so the root can still be recomputed.
 *
 * The export copies the stored bytes verbatim, never re-encodes or repairs
 * them: whatever was done to the store shows in the export and `audit verify`
 * names it.
 */
import { parseCheckpoint, parseNote } from '@keyward/tlog';
import { toHex } from './bytes.js';
import { canonicalJson } from './canonical-json.js';
import { AuditError, check } from './errors.js';
import { eventLeafHash } from './event.js';
import { READ_PAGE, type AuditLog, type AuditStorage } from './log.js';
import { alignedRanges, MerkleCache } from './tree.js';

/** The export format version (the `keyward_audit_export` header field). */
export const AUDIT_EXPORT_VERSION = 1;

/** Options of {@link exportLog}. */
export interface ExportOptions {
  /** First event index to include (default 0). */
  readonly from?: number;
  /** One past the last event index to include (default: the checkpoint's size). */
  readonly to?: number;
  /** The signed checkpoint note to export against (default: the latest stored). */
  readonly checkpoint?: string;
}

/** The header line, parsed. */
export interface ExportHeader {
  readonly keyward_audit_export: 1;
  readonly origin: string;
  /** The checkpoint's tree size. */
  readonly size: number;
  readonly checkpoint: string;
  readonly from: number;
  readonly to: number;
  readonly prefix: readonly string[];
  readonly suffix: readonly string[];
}

const decoder = new TextDecoder('utf-8'); // not fatal: damaged bytes are exported as they are and fail verification

async function* readRaw(storage: AuditStorage, from: number, to: number): AsyncGenerator<Uint8Array> {
  let i = from;
  while (i < to) {
    const rows = await storage.read(i, Math.min(to, i + READ_PAGE));
    if (rows.length === 0) return;
    for (const r of rows) yield r.event;
    const next = rows[rows.length - 1]!.index + 1;
    if (!Number.isSafeInteger(next) || next <= i) return; // a storage that returns rows out of range: stop, the verifier reports what is missing
    i = next;
  }
}

/**
 * The export as lines (each ending in "\n"), header first — for writing a
 * large log to a file without holding it in memory.
 *
 * @example
 * for await (const line of exportLogLines(log)) out.write(line);
 */
export async function* exportLogLines(log: AuditLog, options: ExportOptions = {}): AsyncGenerator<string> {
  const note = options.checkpoint ?? (await log.storage.latestCheckpoint());
  if (note === null) throw new AuditError('KW_INVALID_ARGUMENT', 'the log has no checkpoint yet: sign one before exporting');
  let cp;
  try {
    cp = parseCheckpoint(parseNote(note).text);
  } catch (e) {
    throw new AuditError('KW_INVALID_ARGUMENT', 'the checkpoint is not a signed checkpoint note', { cause: e });
  }
  check(cp.origin === log.origin, `the checkpoint's origin ${JSON.stringify(cp.origin)} is not this log's`);
  const from = options.from ?? 0;
  const to = options.to ?? cp.size;
  check(Number.isSafeInteger(from) && Number.isSafeInteger(to) && 0 <= from && from <= to && to <= cp.size, `need 0 ≤ from ≤ to ≤ ${cp.size} (the checkpoint's size)`);

  let prefix: string[] = [];
  let suffix: string[] = [];
  if (from > 0 || to < cp.size) {
    // Hash the stored events as they are (no checks: a damaged store must show in the export).
    const tree = new MerkleCache();
    for await (const bytes of readRaw(log.storage, 0, cp.size)) tree.append(eventLeafHash(bytes));
    const hash = (r: { start: number; end: number }): string => (r.end <= tree.size ? toHex(tree.rangeHash(r.start, r.end)) : '');
    prefix = alignedRanges(0, from).map(hash);
    suffix = alignedRanges(to, cp.size).map(hash);
  }
  const header: ExportHeader = { keyward_audit_export: AUDIT_EXPORT_VERSION, origin: cp.origin, size: cp.size, checkpoint: note, from, to, prefix, suffix };
  yield canonicalJson(header) + '\n';
  for await (const bytes of readRaw(log.storage, from, to)) yield decoder.decode(bytes) + '\n';
}

/**
 * The header line (with its newline) of a full export, [0, size), against
 * the signed checkpoint `note` — for callers that read the events themselves
 * (over the API, or from a read-only store) and append them after it.
 *
 * @example
 * const lines = [fullExportHeaderLine(note)]; for (const e of events) lines.push(e + '\n');
 */
export function fullExportHeaderLine(note: string): string {
  let cp;
  try {
    cp = parseCheckpoint(parseNote(note).text);
  } catch (e) {
    throw new AuditError('KW_INVALID_ARGUMENT', 'the checkpoint is not a signed checkpoint note', { cause: e });
  }
  const header: ExportHeader = { keyward_audit_export: AUDIT_EXPORT_VERSION, origin: cp.origin, size: cp.size, checkpoint: note, from: 0, to: cp.size, prefix: [], suffix: [] };
  return canonicalJson(header) + '\n';
}

/**
 * The whole export as one string (see the module comment for the format).
 *
 * @example
 * await writeFile('audit.jsonl', await exportLog(log));
 * verifyExport(text, { verifierKey }).ok // true
 */
export async function exportLog(log: AuditLog, options: ExportOptions = {}): Promise<string> {
  const parts: string[] = [];
  for await (const line of exportLogLines(log, options)) parts.push(line);
  return parts.join('');
}
