/**
 * C2SP tlog-witness (https://c2sp.org/tlog-witness): the `add-checkpoint`
 * request a log sends a witness, the checks a witness runs before it cosigns,
 * a client that submits a checkpoint to several witnesses and collects their
 * cosignatures, and the k-of-n acceptance rule for a witnessed checkpoint.
 *
 * Request body (every line ends in a newline):
 *
 *     old <size of the checkpoint the witness last cosigned>
 *     <base64 consistency proof hash>        (0 to 63 lines)
 *     <empty line>
 *     <the signed checkpoint note>
 *
 * The witness answers 200 with its cosignature lines, 404 (unknown origin),
 * 403 (no trusted log signature), 400 (malformed, old > size), 409 (old size
 * is not its latest: body `<latest size>\n`, `Content-Type: text/x.tlog.size`;
 * or same size, another root), 422 (the proof does not verify).
 *
 * Pure: the client uses the global `fetch` (or one passed in), so it runs in
 * Node and browsers; the witness's storage and HTTP server live elsewhere
 * (`packages/server/src/witness/`).
 */
import { base64 } from '@scure/base';
import { equalBytes, isList } from './bytes.js';
import { openCheckpoint, parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { newCosignatureVerifier, requireCosignatures, type Cosignature, type CosignatureVerifier } from './cosignature.js';
import { TlogError, check, isTlogError, type TlogErrorCode } from './errors.js';
import { leafHash, verifyConsistency, verifyInclusion } from './merkle.js';
import { checkSignatures, formatNote, parseNote, type NoteLimits, type NoteSignature, type NoteVerifier } from './note.js';

/** At most this many consistency proof lines in a request (the spec's limit). */
const MAX_PROOF_LINES = 63;
/** A request body larger than this is refused (a checkpoint note is small). */
const MAX_REQUEST_BYTES = 256 * 1024;

/**
 * The media type of a 409 answer's body (the witness's latest size).
 *
 * @example
 * reply.header('content-type', SIZE_MEDIA_TYPE)
 */
export const SIZE_MEDIA_TYPE = 'text/x.tlog.size';

/** One `add-checkpoint` request. */
export interface AddCheckpointRequest {
  /** The size of the checkpoint the witness last cosigned for this origin (0 if none). */
  readonly oldSize: number;
  /** RFC 6962 consistency proof from `oldSize` to the checkpoint's size (empty when oldSize is 0 or equal). */
  readonly proof: readonly Uint8Array[];
  /** The signed checkpoint note. */
  readonly checkpoint: string;
}

function isCanonicalDecimal(s: string): boolean {
  return /^(0|[1-9][0-9]{0,15})$/.test(s) && Number.isSafeInteger(Number(s));
}

/**
 * Writes an `add-checkpoint` request body.
 *
 * @example
 * const body = formatAddCheckpoint({ oldSize: 4, proof: consistencyProof(4, 7, leaves), checkpoint: note });
 */
export function formatAddCheckpoint(req: AddCheckpointRequest): string {
  check(typeof req === 'object' && req !== null, 'request must be an object');
  check(Number.isSafeInteger(req.oldSize) && req.oldSize >= 0, 'oldSize must be a non-negative safe integer');
  check(isList(req.proof) && req.proof.length <= MAX_PROOF_LINES, `proof must be an array of at most ${MAX_PROOF_LINES} hashes`);
  for (const h of req.proof) check(h instanceof Uint8Array && h.length === 32, 'every proof hash must be 32 bytes');
  check(typeof req.checkpoint === 'string', 'checkpoint must be a signed note');
  parseNote(req.checkpoint);
  return `old ${req.oldSize}\n${req.proof.map((h) => `${base64.encode(h)}\n`).join('')}\n${req.checkpoint}`;
}

/**
 * Parses an `add-checkpoint` request body strictly. Throws
 * `TLOG_MALFORMED_WITNESS_MESSAGE` (HTTP 400) for anything that is not
 * `old N`, at most 63 base64 32-byte hashes, an empty line and a note; the note
 * itself is only split here (`parseNote`), not verified.
 *
 * @example
 * const { oldSize, proof, checkpoint } = parseAddCheckpoint(await req.text());
 */
export function parseAddCheckpoint(body: string | Uint8Array, limits?: NoteLimits): AddCheckpointRequest {
  const bad = (why: string) => new TlogError('TLOG_MALFORMED_WITNESS_MESSAGE', `add-checkpoint request: ${why}`);
  if (body instanceof Uint8Array) {
    if (body.length > MAX_REQUEST_BYTES) throw bad(`larger than ${MAX_REQUEST_BYTES} bytes`);
    try {
      body = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } catch {
      throw bad('not UTF-8');
    }
  }
  if (typeof body !== 'string') throw bad('not text');
  if (body.length > MAX_REQUEST_BYTES) throw bad(`larger than ${MAX_REQUEST_BYTES} bytes`);
  const nl = body.indexOf('\n');
  if (nl < 0 || !body.startsWith('old ')) throw bad('the first line must be "old <size>"');
  const sizeText = body.slice(4, nl);
  if (!isCanonicalDecimal(sizeText)) throw bad('the old size is not a canonical decimal');
  const oldSize = Number(sizeText);
  const proof: Uint8Array[] = [];
  let pos = nl + 1;
  for (;;) {
    const end = body.indexOf('\n', pos);
    if (end < 0) throw bad('no empty line before the checkpoint');
    const line = body.slice(pos, end);
    pos = end + 1;
    if (line === '') break;
    if (proof.length === MAX_PROOF_LINES) throw bad(`more than ${MAX_PROOF_LINES} consistency proof lines`);
    let h: Uint8Array;
    try {
      h = base64.decode(line);
    } catch {
      throw bad(`proof line ${proof.length + 1} is not canonical base64`);
    }
    if (h.length !== 32) throw bad(`proof line ${proof.length + 1} is not a 32-byte hash`);
    proof.push(h);
  }
  const checkpoint = body.slice(pos);
  try {
    parseNote(checkpoint, limits);
  } catch (e) {
    throw new TlogError('TLOG_MALFORMED_WITNESS_MESSAGE', `add-checkpoint request: the checkpoint is not a signed note (${(e as Error).message})`, { cause: e });
  }
  return { oldSize, proof, checkpoint };
}

/** What a witness keeps per log: the latest checkpoint it cosigned. */
export interface WitnessLogState {
  readonly size: number;
  readonly root: Uint8Array;
}

/** The outcome of {@link witnessCheck}: the checkpoint to cosign and the state to persist. */
export interface WitnessAccepted {
  readonly checkpoint: Checkpoint;
  /** The checkpoint note text (the exact bytes a cosignature signs). */
  readonly text: string;
  readonly state: WitnessLogState;
}

/**
 * The checks a witness runs before it cosigns (tlog-witness §add-checkpoint),
 * in the spec's order. `logs(origin)` gives the trusted log verifiers of an
 * origin (none: unknown log), `latest` the state last persisted for it (null
 * when it never cosigned). Throws, with {@link witnessHttpStatus} mapping the
 * code to the HTTP status:
 *
 * - `TLOG_WITNESS_UNKNOWN_LOG` (404) — origin not configured;
 * - `TLOG_NO_VERIFIED_SIGNATURE` / `TLOG_BAD_SIGNATURE` (403) — no trusted log signature;
 * - `TLOG_MALFORMED_WITNESS_MESSAGE` (400) — old size above the checkpoint size, a proof for old size 0;
 * - `TLOG_WITNESS_CONFLICT` (409) — old size is not the latest cosigned size (a rollback, a stale or a split-view client);
 * - `TLOG_INCONSISTENT` (409) — same size as the latest, another root (a fork);
 * - `TLOG_BAD_PROOF` (422) — the consistency proof does not verify (an inconsistent log).
 *
 * The caller must run this and persist `state` atomically (one at a time per
 * origin), or two requests could roll the witness back.
 *
 * @example
 * const ok = witnessCheck(parseAddCheckpoint(body), (o) => logs.get(o) ?? [], state.get(origin) ?? null);
 * state.set(ok.checkpoint.origin, ok.state); // persist before answering
 */
export function witnessCheck(
  req: AddCheckpointRequest,
  logs: (origin: string) => readonly NoteVerifier[],
  latest: WitnessLogState | null | ((origin: string) => WitnessLogState | null),
): WitnessAccepted {
  const note = parseNote(req.checkpoint);
  let cp: Checkpoint;
  try {
    cp = parseCheckpoint(note.text);
  } catch (e) {
    throw new TlogError('TLOG_MALFORMED_WITNESS_MESSAGE', `the note is not a checkpoint: ${(e as Error).message}`, { cause: e });
  }
  const verifiers = logs(cp.origin);
  if (verifiers.length === 0) throw new TlogError('TLOG_WITNESS_UNKNOWN_LOG', `this witness does not witness the log ${JSON.stringify(cp.origin)}`);
  const opened = openCheckpoint(req.checkpoint, verifiers, { origin: cp.origin }); // TLOG_NO_VERIFIED_SIGNATURE / TLOG_BAD_SIGNATURE
  cp = opened.checkpoint;
  if (req.oldSize > cp.size) throw new TlogError('TLOG_MALFORMED_WITNESS_MESSAGE', `old size ${req.oldSize} is above the checkpoint size ${cp.size}`);
  const prev = typeof latest === 'function' ? latest(cp.origin) : latest;
  const prevSize = prev?.size ?? 0;
  if (req.oldSize !== prevSize) {
    throw new TlogError('TLOG_WITNESS_CONFLICT', `old size ${req.oldSize} is not the size this witness last cosigned (${prevSize})`);
  }
  if (req.oldSize === 0) {
    if (req.proof.length !== 0) throw new TlogError('TLOG_MALFORMED_WITNESS_MESSAGE', 'the proof must be empty for old size 0');
  } else if (req.oldSize === cp.size) {
    if (req.proof.length !== 0) throw new TlogError('TLOG_BAD_PROOF', 'the proof must be empty when the size did not change');
    if (!equalBytes(prev!.root, cp.root)) throw new TlogError('TLOG_INCONSISTENT', `two roots for size ${cp.size}: this witness cosigned another one (a fork)`);
  } else {
    try {
      verifyConsistency(req.oldSize, cp.size, prev!.root, cp.root, req.proof);
    } catch (e) {
      if (isTlogError(e, 'TLOG_BAD_PROOF') || isTlogError(e, 'TLOG_INCONSISTENT')) {
        throw new TlogError('TLOG_BAD_PROOF', `the checkpoint of size ${cp.size} is not consistent with the one of size ${req.oldSize} this witness cosigned`, { cause: e });
      }
      throw e;
    }
  }
  return { checkpoint: cp, text: opened.text, state: { size: cp.size, root: cp.root } };
}

/**
 * The HTTP status a witness answers for a refusal code (500 for anything
 * unexpected).
 *
 * @example
 * reply.status(witnessHttpStatus(e.code))
 */
export function witnessHttpStatus(code: string): number {
  switch (code) {
    case 'TLOG_WITNESS_UNKNOWN_LOG': return 404;
    case 'TLOG_NO_VERIFIED_SIGNATURE':
    case 'TLOG_BAD_SIGNATURE':
    case 'TLOG_ORIGIN_MISMATCH': return 403;
    case 'TLOG_WITNESS_CONFLICT':
    case 'TLOG_INCONSISTENT': return 409;
    case 'TLOG_BAD_PROOF': return 422;
    case 'TLOG_MALFORMED_WITNESS_MESSAGE':
    case 'TLOG_MALFORMED_NOTE':
    case 'TLOG_MALFORMED_CHECKPOINT':
    case 'TLOG_LIMIT_EXCEEDED':
    case 'TLOG_INVALID_ARGUMENT': return 400;
    default: return 500;
  }
}

// --- the client side ------------------------------------------------------------------------

/** A witness as a log (or a directory) is configured with it. */
export interface WitnessEndpoint {
  /** The witness's key name (the name in its verifier key). */
  readonly name: string;
  /** The submission prefix: `add-checkpoint` is POSTed to `<url>/add-checkpoint`. */
  readonly url: string;
  readonly verifier: CosignatureVerifier;
}

/** A k-of-n witness policy. */
export interface WitnessPolicy {
  readonly witnesses: readonly WitnessEndpoint[];
  /** How many distinct witnesses must cosign (1 ≤ k ≤ n). */
  readonly k: number;
}

/**
 * Builds a {@link WitnessPolicy} from configuration entries `{ name, url, key }`
 * (`key` a type-0x04 cosignature verifier key whose name must be `name`) and
 * k (default: all of them). Throws `TLOG_INVALID_ARGUMENT` /
 * `TLOG_MALFORMED_KEY`.
 *
 * @example
 * const policy = witnessPolicy([{ name: 'w1.example', url: 'https://w1.example/', key: 'w1.example+1a2b3c4d+BA…' }], 1);
 */
export function witnessPolicy(entries: readonly { readonly name: string; readonly url?: string; readonly key: string }[], k?: number): WitnessPolicy {
  check(isList(entries) && entries.length > 0, 'at least one witness is required');
  const names = new Set<string>();
  const witnesses = entries.map((e, i) => {
    check(typeof e === 'object' && e !== null && typeof e.key === 'string' && typeof e.name === 'string', `witness ${i + 1} needs a name and a key`);
    const verifier = newCosignatureVerifier(e.key.trim());
    check(verifier.name === e.name, `witness ${i + 1}: the key is named ${JSON.stringify(verifier.name)}, not ${JSON.stringify(e.name)}`);
    check(!names.has(e.name), `witness ${JSON.stringify(e.name)} is listed twice`);
    names.add(e.name);
    const url = e.url ?? '';
    check(typeof url === 'string' && (url === '' || /^https?:\/\/[^\s]+$/.test(url)), `witness ${JSON.stringify(e.name)}: url must be http(s)://…`);
    return Object.freeze({ name: e.name, url: url.replace(/\/+$/, ''), verifier });
  });
  const kk = k ?? witnesses.length;
  check(Number.isSafeInteger(kk) && kk >= 1 && kk <= witnesses.length, `k must be an integer from 1 to ${witnesses.length}`);
  // requireCosignatures refuses two names with one key; check it now rather than at the first checkpoint.
  requireCosignaturesPolicyCheck(witnesses.map((w) => w.verifier));
  return Object.freeze({ witnesses: Object.freeze(witnesses), k: kk });
}

function requireCosignaturesPolicyCheck(verifiers: readonly CosignatureVerifier[]): void {
  const seen = new Set<string>();
  for (const v of verifiers) {
    const hex = Array.from(v.publicKey, (b) => b.toString(16).padStart(2, '0')).join('');
    check(!seen.has(hex), `two witnesses share one public key (${v.name})`);
    seen.add(hex);
  }
}

/** Options of the witness client calls. */
export interface WitnessClientOptions {
  /** The fetch function (default: the global `fetch`). */
  readonly fetch?: typeof fetch;
  /** Per-request timeout, ms (default 10000). */
  readonly timeoutMs?: number;
}

/** The answer of one `add-checkpoint` call. */
export type AddCheckpointResult =
  | { readonly status: 'cosigned'; readonly signatures: readonly NoteSignature[] }
  | { readonly status: 'conflict'; readonly size: number };

function fetchWithTimeout(f: typeof fetch, url: string, init: RequestInit, ms: number): Promise<Response> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), ms);
  return f(url, { ...init, signal: ctl.signal }).finally(() => clearTimeout(timer));
}

async function addCheckpointImpl(w: WitnessEndpoint, req: AddCheckpointRequest, o: WitnessClientOptions): Promise<AddCheckpointResult> {
  const f = o.fetch ?? globalThis.fetch;
  check(typeof f === 'function', 'no fetch function available');
  const body = formatAddCheckpoint(req);
  let res: Response;
  try {
    res = await fetchWithTimeout(f, `${w.url}/add-checkpoint`, { method: 'POST', body, headers: { 'content-type': 'text/plain; charset=utf-8' } }, o.timeoutMs ?? 10_000);
  } catch (e) {
    throw new TlogError('TLOG_WITNESS_UNAVAILABLE', `witness ${w.name} (${w.url}) cannot be reached: ${(e as Error).message}`, { cause: e });
  }
  const text = await res.text().catch(() => '');
  if (res.status === 200) {
    // Lines from unknown keys are ignored; the caller checks ours.
    const lines = text.split('\n');
    if (lines.pop() !== '' || lines.length === 0 || lines.length > 100) throw new TlogError('TLOG_MALFORMED_WITNESS_MESSAGE', `witness ${w.name} answered something other than signature lines`);
    const cp = parseNote(req.checkpoint);
    let parsed;
    try {
      parsed = parseNote(`${cp.text}\n${text}`);
    } catch (e) {
      throw new TlogError('TLOG_MALFORMED_WITNESS_MESSAGE', `witness ${w.name} answered malformed signature lines`, { cause: e });
    }
    return { status: 'cosigned', signatures: parsed.signatures };
  }
  if (res.status === 409) {
    const m = /^(0|[1-9][0-9]{0,15})\n$/.exec(text);
    if (res.headers.get('content-type')?.split(';')[0]?.trim() === SIZE_MEDIA_TYPE && m && Number.isSafeInteger(Number(m[1]))) {
      return { status: 'conflict', size: Number(m[1]) };
    }
    throw new TlogError('TLOG_WITNESS_REFUSED', `witness ${w.name} refused the checkpoint: 409 (a fork: it cosigned another root for this size)`);
  }
  if (res.status >= 500) throw new TlogError('TLOG_WITNESS_UNAVAILABLE', `witness ${w.name} failed: HTTP ${res.status}`);
  const why = { 400: 'malformed request', 403: 'no trusted log signature', 404: 'unknown log', 422: 'the consistency proof does not verify (an inconsistent log)' }[res.status] ?? 'unexpected answer';
  throw new TlogError('TLOG_WITNESS_REFUSED', `witness ${w.name} refused the checkpoint: HTTP ${res.status} (${why})`);
}

/**
 * Sends one `add-checkpoint` request. Returns the witness's signature lines
 * (unverified: check them against the witness key, as
 * {@link collectCosignatures} does) or, on 409 with a size, the size the
 * witness last cosigned. Throws `TLOG_WITNESS_UNAVAILABLE` (network, timeout,
 * 5xx), `TLOG_WITNESS_REFUSED` (400, 403, 404, 422, 409 without a size) or
 * `TLOG_MALFORMED_WITNESS_MESSAGE`.
 *
 * @example
 * const r = await addCheckpoint(policy.witnesses[0], { oldSize: 0, proof: [], checkpoint: note });
 * if (r.status === 'conflict') retryFrom(r.size);
 */
export function addCheckpoint(witness: WitnessEndpoint, req: AddCheckpointRequest, options: WitnessClientOptions = {}): Promise<AddCheckpointResult> {
  return addCheckpointImpl(witness, req, options);
}

/** One witness that did not cosign in {@link collectCosignatures}. */
export interface WitnessFailure {
  readonly name: string;
  readonly code: TlogErrorCode;
  readonly message: string;
}

/** The outcome of {@link collectCosignatures}. */
export interface CollectedCosignatures {
  /** The checkpoint note with every valid cosignature appended (replacing older lines of the same keys). */
  readonly note: string;
  /** Names of the witnesses that cosigned. */
  readonly cosigned: readonly string[];
  readonly failures: readonly WitnessFailure[];
  /** Per witness, the size it now holds for this log (what to send as `oldSize` next time). */
  readonly sizes: ReadonlyMap<string, number>;
  /** True when at least k witnesses cosigned. */
  readonly ok: boolean;
}

/** Options of {@link collectCosignatures}. */
export interface CollectOptions extends WitnessClientOptions {
  /** The size each witness was last known to hold (default 0: the first request learns it from a 409). */
  readonly sizes?: ReadonlyMap<string, number>;
  /** A consistency proof from `oldSize` to the checkpoint's size (called only for 0 < oldSize < size). */
  readonly proof: (oldSize: number) => readonly Uint8Array[] | Promise<readonly Uint8Array[]>;
}

async function collectImpl(note: string, policy: WitnessPolicy, o: CollectOptions): Promise<CollectedCosignatures> {
  const parsed = parseNote(note);
  const cp = parseCheckpoint(parsed.text);
  const failures: WitnessFailure[] = [];
  const sizes = new Map(o.sizes ?? []);
  const got: NoteSignature[] = [];
  const cosigned: string[] = [];
  await Promise.all(policy.witnesses.map(async (w) => {
    try {
      let old = sizes.get(w.name) ?? 0;
      for (let attempt = 0; ; attempt++) {
        if (old > cp.size) throw new TlogError('TLOG_WITNESS_CONFLICT', `witness ${w.name} already cosigned size ${old} of this log, above ${cp.size}: this checkpoint is a rollback`);
        const proof = old === 0 || old === cp.size ? [] : await o.proof(old);
        const r = await addCheckpointImpl(w, { oldSize: old, proof, checkpoint: note }, o);
        if (r.status === 'conflict') {
          sizes.set(w.name, r.size);
          if (attempt >= 1 || r.size === old) throw new TlogError('TLOG_WITNESS_CONFLICT', `witness ${w.name} keeps answering 409 (its size ${r.size})`);
          old = r.size;
          continue;
        }
        const mine = checkSignatures({ text: parsed.text, signatures: r.signatures }, [w.verifier]).verified;
        if (mine.length === 0) throw new TlogError('TLOG_NO_VERIFIED_SIGNATURE', `witness ${w.name} answered no cosignature from its key`);
        got.push(mine[0]!);
        cosigned.push(w.name);
        sizes.set(w.name, cp.size);
        return;
      }
    } catch (e) {
      const code: TlogErrorCode = isTlogError(e) ? e.code : 'TLOG_WITNESS_UNAVAILABLE';
      failures.push({ name: w.name, code, message: (e as Error).message });
    }
  }));
  const byKey = (s: NoteSignature) => `${s.name}\n${s.keyId}`;
  const fresh = new Set(got.map(byKey));
  const signatures = [...parsed.signatures.filter((s) => !fresh.has(byKey(s))), ...got];
  const out = formatNote({ text: parsed.text, signatures });
  const order = new Map(policy.witnesses.map((w, i) => [w.name, i]));
  cosigned.sort((a, b) => order.get(a)! - order.get(b)!);
  failures.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
  return { note: out, cosigned, failures, sizes, ok: cosigned.length >= policy.k };
}

/**
 * Submits a signed checkpoint to every witness of the policy (in parallel),
 * retrying once from the size a witness reports on 409, verifies each
 * returned cosignature against that witness's key, and returns the note with
 * the valid cosignatures appended. Never throws for a witness's failure: it is
 * listed in `failures` with its code (`TLOG_WITNESS_UNAVAILABLE`,
 * `TLOG_WITNESS_REFUSED`, `TLOG_WITNESS_CONFLICT` when the witness already
 * holds a larger tree — a rollback — …); `ok` says whether k cosigned.
 *
 * @example
 * const r = await collectCosignatures(note, policy, { sizes, proof: (m) => log.consistencyProof(m, size) });
 * if (!r.ok) alarm(r.failures); else publish(r.note);
 */
export function collectCosignatures(note: string, policy: WitnessPolicy, options: CollectOptions): Promise<CollectedCosignatures> {
  return collectImpl(note, policy, options);
}

/** Options of {@link openWitnessedCheckpoint}. */
export interface WitnessedCheckpointOptions {
  readonly origin: string;
  /** Cosignatures stamped later than this (POSIX seconds) do not count. */
  readonly maxTimestamp?: number;
  /** Cosignatures stamped earlier than this (POSIX seconds) do not count (stale witnessing). */
  readonly minTimestamp?: number;
  readonly limits?: NoteLimits;
}

/**
 * Accepts a checkpoint only when the log signed it **and** at least k distinct
 * witnesses of the policy cosigned it: `openCheckpoint`, then
 * `requireCosignatures`. Throws `TLOG_NOT_ENOUGH_COSIGNATURES` when fewer
 * cosigned (or when too few cosignatures fall in [minTimestamp, maxTimestamp]),
 * `TLOG_BAD_SIGNATURE` when a listed witness's line fails, and every
 * `openCheckpoint` code.
 *
 * @example
 * const { checkpoint, cosignatures } = openWitnessedCheckpoint(note, [logVerifier], policy, { origin });
 */
export function openWitnessedCheckpoint(
  note: string | Uint8Array,
  logVerifiers: readonly NoteVerifier[],
  policy: Pick<WitnessPolicy, 'k'> & { readonly witnesses: readonly (WitnessEndpoint | CosignatureVerifier)[] },
  options: WitnessedCheckpointOptions,
): { readonly checkpoint: Checkpoint; readonly text: string; readonly cosignatures: readonly Cosignature[] } {
  const opened = openCheckpoint(note, logVerifiers, { origin: options.origin, ...(options.limits ? { limits: options.limits } : {}) });
  const verifiers = policy.witnesses.map((w) => ('verifier' in w ? w.verifier : w));
  const { minTimestamp } = options;
  check(minTimestamp === undefined || (Number.isSafeInteger(minTimestamp) && minTimestamp >= 0), 'minTimestamp must be a non-negative integer');
  const r = requireCosignatures(note, verifiers, minTimestamp === undefined ? policy.k : 1, {
    ...(options.maxTimestamp !== undefined ? { maxTimestamp: options.maxTimestamp } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
  });
  const counted = minTimestamp === undefined ? r.cosignatures : r.cosignatures.filter((c) => c.timestamp >= minTimestamp);
  if (counted.length < policy.k) {
    throw new TlogError('TLOG_NOT_ENOUGH_COSIGNATURES', `${counted.length} valid cosignature(s) from the configured witnesses${minTimestamp === undefined ? '' : ` stamped at or after ${minTimestamp}`}, ${policy.k} required`);
  }
  return { checkpoint: opened.checkpoint, text: opened.text, cosignatures: counted };
}

/**
 * Accepts `entry` as the **latest** entry of a witnessed log: the checkpoint
 * passes {@link openWitnessedCheckpoint} (log signature and k of n
 * cosignatures) and `proof` is the RFC 9162 inclusion proof of
 * `leafHash(entry)` at index size − 1 of that checkpoint's tree
 * (`TLOG_BAD_PROOF` otherwise; an empty log is `TLOG_INVALID_ARGUMENT`).
 *
 * This is how a log whose own tree is not an RFC 9162 tree (the KEYTRANS
 * directory: other node hashing) goes through witnesses: it appends each of
 * its signed tree heads, encoded, to an RFC 9162 "head log" whose checkpoints
 * the witnesses cosign; a client accepts a head only as the latest entry of
 * a witnessed checkpoint. A second view needs a second head log, which the
 * witnesses refuse; a rollback needs a shorter one, which they refuse too.
 *
 * @example
 * const { checkpoint } = verifyWitnessedLatestEntry(note, encodedHead, proof, [headLogVerifier], policy, { origin });
 */
export function verifyWitnessedLatestEntry(
  note: string | Uint8Array,
  entry: Uint8Array,
  proof: readonly Uint8Array[],
  logVerifiers: readonly NoteVerifier[],
  policy: Pick<WitnessPolicy, 'k'> & { readonly witnesses: readonly (WitnessEndpoint | CosignatureVerifier)[] },
  options: WitnessedCheckpointOptions,
): { readonly checkpoint: Checkpoint; readonly cosignatures: readonly Cosignature[] } {
  check(entry instanceof Uint8Array, 'entry must be bytes');
  const opened = openWitnessedCheckpoint(note, logVerifiers, policy, options);
  const size = opened.checkpoint.size;
  check(size > 0, 'the witnessed log is empty: it has no latest entry');
  verifyInclusion(leafHash(entry), size - 1, size, proof, opened.checkpoint.root);
  return { checkpoint: opened.checkpoint, cosignatures: opened.cosignatures };
}
