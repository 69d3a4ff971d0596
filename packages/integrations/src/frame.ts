/**
 * The sealed frame: what messages and HTTP bodies carry INSIDE the envelope,
 * so that the id and time used for replay protection are authenticated and
 * invisible to the middle.
 *
 * ```
 * offset  size  field
 * 0       1     version   0x01
 * 1       16    id        random(16), fresh per message
 * 17      8     ts        u64 big-endian, milliseconds since the Unix epoch (sender's clock)
 * 25      2     meta_len  u16, ≤ 4096
 * 27      M     meta      UTF-8 JSON object whose values are all strings (content type, response key…)
 * 27+M    …     body      the application's bytes, to the end
 * ```
 *
 * The frame has no length field for the body: the envelope authenticates the
 * whole plaintext, so the body is exactly what follows the meta.
 */
import { randomBytes } from 'node:crypto';
import { IntegrationError } from './errors.js';

export const FRAME_VERSION = 1;
export const FRAME_ID_LENGTH = 16;
export const FRAME_HEADER_LENGTH = 1 + FRAME_ID_LENGTH + 8 + 2;
export const MAX_FRAME_META_BYTES = 4096;

export type FrameMeta = Readonly<Record<string, string>>;

export interface Frame {
  /** 32 lowercase hex digits. */
  readonly id: string;
  /** Sender's time, ms since the Unix epoch. */
  readonly ts: number;
  readonly meta: FrameMeta;
  readonly body: Uint8Array;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const malformed = (why: string) => new IntegrationError('KW_INT_MALFORMED_FRAME', `sealed frame: ${why}`);

/** A fresh random frame id (32 hex digits). */
export function newFrameId(): string {
  return randomBytes(FRAME_ID_LENGTH).toString('hex');
}

export function encodeFrame(f: { id?: string; ts?: number; meta?: FrameMeta; body: Uint8Array }): { bytes: Uint8Array; id: string; ts: number } {
  const id = f.id ?? newFrameId();
  const ts = f.ts ?? Date.now();
  if (!/^[0-9a-f]{32}$/.test(id)) throw new IntegrationError('KW_INT_INVALID_ARGUMENT', 'a frame id is 32 lowercase hex digits');
  if (!Number.isSafeInteger(ts) || ts < 0) throw new IntegrationError('KW_INT_INVALID_ARGUMENT', 'a frame timestamp is a non-negative integer (ms)');
  if (!(f.body instanceof Uint8Array)) throw new IntegrationError('KW_INT_INVALID_ARGUMENT', 'the body must be a Uint8Array');
  const meta = f.meta ?? {};
  for (const [k, v] of Object.entries(meta)) {
    if (typeof v !== 'string') throw new IntegrationError('KW_INT_INVALID_ARGUMENT', `frame meta "${k}" must be a string`);
  }
  const metaBytes = Object.keys(meta).length === 0 ? new Uint8Array(0) : utf8.encode(JSON.stringify(meta));
  if (metaBytes.length > MAX_FRAME_META_BYTES) throw new IntegrationError('KW_INT_INVALID_ARGUMENT', `frame meta is over ${MAX_FRAME_META_BYTES} bytes`);
  const out = new Uint8Array(FRAME_HEADER_LENGTH + metaBytes.length + f.body.length);
  const dv = new DataView(out.buffer);
  out[0] = FRAME_VERSION;
  out.set(Buffer.from(id, 'hex'), 1);
  dv.setBigUint64(17, BigInt(ts), false);
  dv.setUint16(25, metaBytes.length, false);
  out.set(metaBytes, FRAME_HEADER_LENGTH);
  out.set(f.body, FRAME_HEADER_LENGTH + metaBytes.length);
  return { bytes: out, id, ts };
}

/** Parses a frame strictly; anything else is `KW_INT_MALFORMED_FRAME`. The body is a view into `bytes`. */
export function decodeFrame(bytes: Uint8Array): Frame {
  if (bytes.length < FRAME_HEADER_LENGTH) throw malformed(`${bytes.length} bytes is shorter than the ${FRAME_HEADER_LENGTH}-byte frame header`);
  if (bytes[0] !== FRAME_VERSION) throw malformed(`unknown version ${bytes[0]}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const id = Buffer.from(bytes.subarray(1, 17)).toString('hex');
  const big = dv.getBigUint64(17, false);
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed('timestamp out of range');
  const ts = Number(big);
  const metaLen = dv.getUint16(25, false);
  if (metaLen > MAX_FRAME_META_BYTES) throw malformed('meta too long');
  if (FRAME_HEADER_LENGTH + metaLen > bytes.length) throw malformed('meta runs past the end');
  let meta: FrameMeta = {};
  if (metaLen > 0) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(utf8Strict.decode(bytes.subarray(FRAME_HEADER_LENGTH, FRAME_HEADER_LENGTH + metaLen)));
    } catch {
      throw malformed('meta is not UTF-8 JSON');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw malformed('meta is not a JSON object');
    const checked: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof v !== 'string') throw malformed(`meta "${k}" is not a string`);
      checked[k] = v;
    }
    meta = checked;
  }
  return { id, ts, meta, body: bytes.subarray(FRAME_HEADER_LENGTH + metaLen) };
}
