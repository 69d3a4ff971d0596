/**
 * `keyward audit verify`: checks an export (export.ts) offline, with nothing
 * but the log's public key (a C2SP verifier key string) and, optionally, a
 * checkpoint saved earlier. It never throws for a bad export: every finding is
 * a typed problem `{ code, index, message }`, and the export is good only when
 * there is none. How each code is detected (docs/audit.md has the table):
 *
 * 1. Header: canonical JSON, strict schema, consistent range → else `AUDIT_MALFORMED` (stop).
 * 2. The export's checkpoint: signature by the log key, origin, size = header
 *    size → else `AUDIT_BAD_CHECKPOINT`.
 * 3. Every line: canonical, schema-valid event → else `AUDIT_MALFORMED`.
 * 4. Indices, which every event carries and every hash covers: an event whose
 *    index field alone was changed (it chains to its predecessor and its
 *    position's index is nowhere else) → `AUDIT_MODIFIED`; an index outside
 *    [from, to) or a second event with an index → `AUDIT_INSERTED` (the copy
 *    that does not chain to its neighbours is the inserted one); events not on
 *    the longest increasing run of indices → `AUDIT_REORDERED`; indices nobody
 *    carries → `AUDIT_DELETED`, or `AUDIT_TRUNCATED` when they run to the end.
 * 5. Hash chain between neighbours with consecutive indices, genesis `prev`
 *    for event 0 → else `AUDIT_MODIFIED` (the earlier event's index).
 * 6. Merkle root of (prefix hashes, every line, suffix hashes) = the signed
 *    root; a mismatch with nothing else found → `AUDIT_MODIFIED` (index null:
 *    the chain was rebuilt around a change, or a prefix/suffix hash changed).
 * 7. Saved checkpoint: signature (`AUDIT_BAD_CHECKPOINT`); larger than the
 *    export's checkpoint → `AUDIT_TRUNCATED`; outside [from, to] →
 *    `AUDIT_NOT_COVERED`; the root of the first `size` events differs →
 *    `AUDIT_REWRITTEN`.
 */
import {
  cosignatureVerifierKey, emptyRoot, isTlogError, newCosignatureVerifier, newVerifier, openCheckpoint, openWitnessedCheckpoint, witnessPolicy,
  type Checkpoint, type CosignatureVerifier, type NoteVerifier,
} from '@keyward/tlog';
import { z } from 'zod';
import { equalBytes, fromHex, GENESIS_PREV, HEX64, sha256Hex, toHex, utf8 } from './bytes.js';
import { parseCanonicalJson } from './canonical-json.js';
import { AuditError, type AuditProblemCode } from './errors.js';
import { eventLeafHash, MAX_EVENT_BYTES, parseEvent, type AuditEvent } from './event.js';
import { AUDIT_EXPORT_VERSION, type ExportHeader } from './export.js';
import { alignedRanges, CompactRange } from './tree.js';

/** Options of {@link verifyExport}. */
export interface VerifyOptions {
  /** The log's public key, a C2SP verifier key string (`<name>+<id>+<base64>`). */
  readonly verifierKey: string;
  /** A signed checkpoint note of the same log saved earlier (by an auditor, a witness, a previous verify). */
  readonly savedCheckpoint?: string;
  /** The expected origin (default: the verifier key's name, which the log key uses). */
  readonly origin?: string;
  /**
   * Witnesses (docs/witness.md): the export's checkpoint counts only with at
   * least `k` valid cosignatures from these cosignature/v1 verifier keys
   * (`name+id+base64(0x04 ‖ key)`), else `AUDIT_NOT_WITNESSED`; cosignatures
   * stamped before `minTimestamp` (POSIX seconds) do not count.
   */
  readonly witnesses?: { readonly keys: readonly string[]; readonly k: number; readonly minTimestamp?: number };
}

/** One finding. `index` is the event index it concerns, or null when it concerns no single event. */
export interface AuditProblem {
  readonly code: AuditProblemCode;
  readonly index: number | null;
  readonly message: string;
}

/** The verdict on an export. Use the events only when `ok`. */
export interface VerifyResult {
  /** True exactly when there is no problem. */
  readonly ok: boolean;
  /** The tree size of the export's checkpoint, if its signature verified; else null. */
  readonly size: number | null;
  /** Hex of the root recomputed from the export, or null when it could not be (wrong number of events, bad header). */
  readonly root: string | null;
  /** The export's checkpoint, if its signature verified. */
  readonly checkpoint: { readonly origin: string; readonly size: number; readonly root: string } | null;
  /** The range of event indices the export covers (from the header; 0, 0 if it is malformed). */
  readonly from: number;
  readonly to: number;
  /** Every event line that parsed, in export order. */
  readonly events: readonly AuditEvent[];
  /** The findings, by event index (null last); at most {@link MAX_PROBLEMS}. */
  readonly problems: readonly AuditProblem[];
  /** Findings left out beyond {@link MAX_PROBLEMS}. */
  readonly problemsOmitted: number;
}

/** Most problems listed in one result. */
export const MAX_PROBLEMS = 10_000;

const SafeUint = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const HeaderSchema = z.strictObject({
  keyward_audit_export: z.literal(AUDIT_EXPORT_VERSION),
  origin: z.string().min(1).max(255),
  size: SafeUint,
  checkpoint: z.string().min(1).max(1024 * 1024),
  from: SafeUint,
  to: SafeUint,
  prefix: z.array(z.string().regex(HEX64)).max(64),
  suffix: z.array(z.string().regex(HEX64)).max(64),
});

interface Line {
  readonly pos: number;
  readonly text: string;
  readonly leaf: Uint8Array;
  readonly hash: string;
  readonly event: AuditEvent | null;
  /** The index the line claims (parsed, or read from malformed JSON), else its position's. */
  idx: number;
}

/** The `index` member of a line that is JSON but not a valid event, if it is a safe integer. */
function rawIndex(text: string): number | null {
  if (text.length > MAX_EVENT_BYTES) return null;
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null && 'index' in v && Number.isSafeInteger(v.index) && (v.index as number) >= 0) return v.index as number;
  } catch {
    // not JSON: no index
  }
  return null;
}

/** Positions (into `vals`) of one longest strictly increasing subsequence. */
function longestIncreasing(vals: readonly number[]): Set<number> {
  const tails: number[] = []; // tails[k] = position of the smallest last value of an increasing run of length k+1
  const back: number[] = new Array<number>(vals.length).fill(-1);
  for (let i = 0; i < vals.length; i++) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (vals[tails[mid]!]! < vals[i]!) lo = mid + 1;
      else hi = mid;
    }
    back[i] = lo > 0 ? tails[lo - 1]! : -1;
    tails[lo] = i;
  }
  const out = new Set<number>();
  for (let i = tails.length > 0 ? tails[tails.length - 1]! : -1; i >= 0; i = back[i]!) out.add(i);
  return out;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Verifies an audit export offline (see the module comment for every check).
 * Throws only for a bad `verifierKey` (`KW_INVALID_ARGUMENT`); everything
 * wrong with the export or the saved checkpoint is a problem in the result.
 *
 * @example
 * const r = verifyExport(text, { verifierKey: 'keyward.example/audit/prod-1+1a2b3c4d+AW…', savedCheckpoint: lastWeeks });
 * if (!r.ok) for (const p of r.problems) console.error(p.code, p.index, p.message);
 */
export function verifyExport(exportText: string, options: VerifyOptions): VerifyResult {
  let verifier: NoteVerifier;
  try {
    verifier = newVerifier(options?.verifierKey);
  } catch (e) {
    throw new AuditError('KW_INVALID_ARGUMENT', `verifierKey is not an Ed25519 C2SP verifier key: ${describe(e)}`, { cause: e });
  }
  const origin = options.origin ?? verifier.name;
  let witnesses: CosignatureVerifier[] | null = null;
  if (options.witnesses !== undefined) {
    try {
      witnesses = options.witnesses.keys.map((k) => newCosignatureVerifier(k.trim()));
      // Checks k against the list (and duplicate keys) once, before any export is read.
      witnessPolicy(witnesses.map((w) => ({ name: w.name, key: cosignatureVerifierKey(w.name, w.publicKey) })), options.witnesses.k);
    } catch (e) {
      throw new AuditError('KW_INVALID_ARGUMENT', `witnesses: ${describe(e)}`, { cause: e });
    }
  }

  const problems: AuditProblem[] = [];
  let omitted = 0;
  const add = (code: AuditProblemCode, index: number | null, message: string): void => {
    if (problems.some((p) => p.code === code && p.index === index && index !== null)) return;
    if (problems.length >= MAX_PROBLEMS) omitted += 1;
    else problems.push({ code, index, message });
  };
  const result = (rest: Omit<VerifyResult, 'ok' | 'problems' | 'problemsOmitted'>): VerifyResult => {
    const sorted = problems.map((p, i) => ({ p, i })).sort((a, b) => (a.p.index ?? Infinity) - (b.p.index ?? Infinity) || a.i - b.i).map((x) => x.p);
    return { ok: sorted.length === 0 && omitted === 0, problems: sorted, problemsOmitted: omitted, ...rest };
  };
  const empty = { size: null, root: null, checkpoint: null, from: 0, to: 0, events: [] };

  // --- 1. header --------------------------------------------------------------------
  if (typeof exportText !== 'string' || exportText.length === 0) {
    add('AUDIT_MALFORMED', null, 'the export is empty');
    return result(empty);
  }
  const rawLines = exportText.split('\n');
  const endsWithNewline = rawLines[rawLines.length - 1] === '';
  if (endsWithNewline) rawLines.pop();
  let header: ExportHeader;
  try {
    const parsed = HeaderSchema.safeParse(parseCanonicalJson(rawLines[0]!));
    if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    header = parsed.data;
    if (!(header.from <= header.to && header.to <= header.size)) throw new Error('the range must satisfy from ≤ to ≤ size');
    if (header.prefix.length !== alignedRanges(0, header.from).length) throw new Error(`prefix must hold ${alignedRanges(0, header.from).length} hashes for from = ${header.from}`);
    if (header.suffix.length !== alignedRanges(header.to, header.size).length) throw new Error(`suffix must hold ${alignedRanges(header.to, header.size).length} hashes for [${header.to}, ${header.size})`);
  } catch (e) {
    add('AUDIT_MALFORMED', null, `the header line is not a valid export header: ${describe(e)}`);
    return result(empty);
  }
  const { from, to } = header;

  // --- 2. the export's checkpoint ------------------------------------------------------
  let cp: Checkpoint | null = null;
  try {
    cp = openCheckpoint(header.checkpoint, [verifier], { origin }).checkpoint;
  } catch (e) {
    add('AUDIT_BAD_CHECKPOINT', null, `the export's checkpoint does not verify with the log key: ${isTlogError(e) ? `${e.code}: ` : ''}${describe(e)}`);
  }
  if (cp !== null && (cp.size !== header.size || cp.origin !== header.origin)) {
    add('AUDIT_MALFORMED', null, `the header says origin ${JSON.stringify(header.origin)} and size ${header.size}, its signed checkpoint ${JSON.stringify(cp.origin)} and ${cp.size}`);
  }
  if (cp !== null && witnesses !== null) {
    try {
      openWitnessedCheckpoint(header.checkpoint, [verifier], { k: options.witnesses!.k, witnesses }, { origin, ...(options.witnesses!.minTimestamp !== undefined ? { minTimestamp: options.witnesses!.minTimestamp } : {}) });
    } catch (e) {
      add('AUDIT_NOT_WITNESSED', null, `the export's checkpoint is not cosigned by ${options.witnesses!.k} of the ${witnesses.length} configured witnesses: ${isTlogError(e) ? `${e.code}: ` : ''}${describe(e)}`);
    }
  }
  const size = cp?.size ?? header.size;

  // --- 3. event lines --------------------------------------------------------------------
  const lines: Line[] = [];
  const bodies = rawLines.slice(1);
  bodies.forEach((text, pos) => {
    const bytes = utf8.encode(text);
    let event: AuditEvent | null = null;
    let error: unknown = null;
    try {
      event = parseEvent(text);
    } catch (e) {
      error = e;
    }
    const last = pos === bodies.length - 1;
    if (event === null && last && !endsWithNewline) {
      return; // cut inside the last event: reported below as truncation
    }
    const idx = event?.index ?? rawIndex(text) ?? from + pos;
    if (event === null) add('AUDIT_MALFORMED', idx, `line ${pos + 2} is not a valid event: ${describe(error)}`);
    lines.push({ pos, text, leaf: eventLeafHash(bytes), hash: sha256Hex(bytes), event, idx });
  });
  if (!endsWithNewline && lines.length === bodies.length) add('AUDIT_MALFORMED', null, 'the export does not end with a newline');
  const events = lines.flatMap((l) => (l.event === null ? [] : [l.event]));
  const lineNo = (l: Line): number => l.pos + 2;

  // --- 4. indices --------------------------------------------------------------------------
  const byIndex = new Map<number, Line[]>();
  for (const l of lines) byIndex.set(l.idx, [...(byIndex.get(l.idx) ?? []), l]);
  const chainsFrom = (l: Line, before: Line | undefined): boolean =>
    l.event !== null && (before === undefined ? from === 0 && l.pos === 0 && l.event.prev === GENESIS_PREV : before.hash === l.event.prev);

  // 4a. an index field changed in place: the line sits between neighbours that
  // are in place, chains to its predecessor, and its position's index is carried by no line
  lines.forEach((l, p) => {
    const want = from + p;
    if (l.event === null || l.idx === want || byIndex.has(want)) return;
    const before = lines[p - 1];
    if (before !== undefined && before.idx !== want - 1) return;
    if (!chainsFrom(l, before)) return;
    add('AUDIT_MODIFIED', want, `line ${lineNo(l)} carries index ${l.idx} where event ${want} belongs (its index was changed)`);
    byIndex.set(l.idx, byIndex.get(l.idx)!.filter((x) => x !== l));
    if (byIndex.get(l.idx)!.length === 0) byIndex.delete(l.idx);
    l.idx = want;
    byIndex.set(want, [l]);
  });

  // 4b. out of range, 4c. duplicates
  const excluded = new Set<Line>();
  for (const l of lines) {
    if (l.idx < from || l.idx >= to) {
      add('AUDIT_INSERTED', l.idx, `line ${lineNo(l)} has index ${l.idx}, outside the range [${from}, ${to}) its checkpoint covers`);
      excluded.add(l);
    }
  }
  for (const [idx, group] of byIndex) {
    if (group.length < 2 || idx < from || idx >= to) continue;
    const nextOnes = byIndex.get(idx + 1) ?? [];
    const prevOnes = byIndex.get(idx - 1) ?? [];
    // The genuine one chains to its successor, then to its predecessor, then sits between
    // its neighbours; the first of equals wins (an exact copy differs only in position).
    const score = (g: Line): number =>
      (nextOnes.some((n) => n.event?.prev === g.hash) ? 4 : 0) +
      (g.event !== null && (idx === 0 ? g.event.prev === GENESIS_PREV : prevOnes.some((p) => p.hash === g.event!.prev)) ? 2 : 0) +
      (lines[g.pos - 1]?.idx === idx - 1 || lines[g.pos + 1]?.idx === idx + 1 ? 1 : 0);
    const genuine = group.reduce((best, g) => (score(g) > score(best) ? g : best));
    for (const g of group) {
      if (g === genuine) continue;
      add('AUDIT_INSERTED', idx, `line ${lineNo(g)} is a second event with index ${idx} (the one at line ${lineNo(genuine)} chains to its neighbours)`);
      excluded.add(g);
    }
  }

  // 4d. order
  const kept = lines.filter((l) => !excluded.has(l));
  const inOrder = longestIncreasing(kept.map((l) => l.idx));
  kept.forEach((l, i) => {
    if (!inOrder.has(i)) add('AUDIT_REORDERED', l.idx, `event ${l.idx} is out of order (line ${lineNo(l)})`);
  });

  // 4e. missing indices
  const present = [...new Set(kept.map((l) => l.idx))].sort((a, b) => a - b);
  let expect = from;
  for (const i of [...present, to]) {
    if (i > expect) {
      const run = i - 1 === expect ? `event ${expect} is` : `events ${expect}…${i - 1} are`;
      if (i !== to) add('AUDIT_DELETED', expect, `${run} missing: the indices jump from ${expect - 1} to ${i}`);
      // At the end: a cut — unless the export still has as many lines as its range, in which
      // case inserted lines (reported above) pushed the last events out of the range.
      else if (lines.length < to - from) add('AUDIT_TRUNCATED', expect, `the export stops early: ${run} missing at the end of the range [${from}, ${to})`);
    }
    expect = i + 1;
  }

  // --- 5. hash chain -----------------------------------------------------------------------
  const chain = kept.filter((_, i) => inOrder.has(i)).filter((l) => l.event !== null);
  if (from === 0 && chain[0]?.idx === 0 && chain[0].event!.prev !== GENESIS_PREV) {
    add('AUDIT_MODIFIED', 0, `event 0 (line ${lineNo(chain[0])}) does not carry the genesis prev (64 zeros)`);
  }
  for (let i = 1; i < chain.length; i++) {
    const a = chain[i - 1]!;
    const b = chain[i]!;
    if (b.idx === a.idx + 1 && b.event!.prev !== a.hash) {
      add('AUDIT_MODIFIED', a.idx, `event ${a.idx} (line ${lineNo(a)}) does not hash to the prev of event ${b.idx} (line ${lineNo(b)}): one of them was modified`);
    }
  }

  // --- 6. Merkle root ----------------------------------------------------------------------
  const foundSoFar = problems.length;
  const saved = openSaved(options.savedCheckpoint, verifier, origin, add);
  let savedRoot: Uint8Array | null = saved?.size === 0 ? emptyRoot() : null;
  const range = new CompactRange();
  const snap = (): void => {
    if (saved !== null && range.size === saved.size) savedRoot = range.root();
  };
  alignedRanges(0, from).forEach((r, i) => range.pushSubtree(r.end - r.start, fromHex(header.prefix[i]!)!));
  snap();
  for (const l of lines) {
    range.pushLeaf(l.leaf);
    snap();
  }
  let root: Uint8Array | null = null;
  if (lines.length === to - from) {
    alignedRanges(to, header.size).forEach((r, i) => range.pushSubtree(r.end - r.start, fromHex(header.suffix[i]!)!));
    root = range.root();
    if (cp !== null && !equalBytes(root, cp.root) && foundSoFar === 0) {
      add('AUDIT_MODIFIED', null, `the events do not hash to the signed root of size ${cp.size} (an event was changed and the chain rebuilt around it, or a prefix/suffix hash was changed)`);
    }
  }

  // --- 7. saved checkpoint -----------------------------------------------------------------
  if (saved !== null) {
    if (saved.size > size) {
      add('AUDIT_TRUNCATED', size, `the log has ${size} events but a checkpoint saved earlier covers ${saved.size}: events were removed since (rollback)`);
    } else if (saved.size < from || saved.size > to) {
      add('AUDIT_NOT_COVERED', null, `the saved checkpoint (size ${saved.size}) is outside the export's range [${from}, ${to}]: export a range that includes it`);
    } else if (savedRoot !== null && !equalBytes(savedRoot, saved.root)) {
      add('AUDIT_REWRITTEN', null, `the first ${saved.size} events do not hash to the root of the checkpoint saved earlier: history was rewritten since`);
    }
  }

  return result({
    size: cp?.size ?? null,
    root: root === null ? null : toHex(root),
    checkpoint: cp === null ? null : { origin: cp.origin, size: cp.size, root: toHex(cp.root) },
    from,
    to,
    events,
  });
}

function openSaved(note: string | undefined, verifier: NoteVerifier, origin: string, add: (code: AuditProblemCode, index: number | null, message: string) => void): Checkpoint | null {
  if (note === undefined) return null;
  try {
    return openCheckpoint(note, [verifier], { origin }).checkpoint;
  } catch (e) {
    add('AUDIT_BAD_CHECKPOINT', null, `the saved checkpoint does not verify with the log key: ${isTlogError(e) ? `${e.code}: ` : ''}${describe(e)}`);
    return null;
  }
}
