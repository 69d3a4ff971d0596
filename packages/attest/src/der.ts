/**
 * Just enough DER to read a certificate's extensions (node:crypto does not
 * expose private extensions such as AMD's VCEK TCB fields). Parsing only; the
 * certificate's signature is checked by node:crypto (x509.ts).
 * @internal
 */
import { AttestError } from './errors.js';

interface Tlv {
  tag: number;
  value: Uint8Array;
  end: number;
}

function tlv(buf: Uint8Array, pos: number): Tlv {
  const bad = (): never => {
    throw new AttestError('ATTEST_MALFORMED', 'certificate: malformed DER');
  };
  if (pos + 2 > buf.length) bad();
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) bad(); // high tag numbers: not used by X.509
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > buf.length) bad();
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | buf[p++]!;
  }
  if (p + len > buf.length) bad();
  return { tag, value: buf.subarray(p, p + len), end: p + len };
}

function children(b: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  for (let p = 0; p < b.length; ) {
    const t = tlv(b, p);
    out.push(t);
    p = t.end;
  }
  return out;
}

function oid(b: Uint8Array): string {
  const parts: number[] = [];
  let v = 0;
  for (const x of b) {
    v = v * 128 + (x & 0x7f);
    if ((x & 0x80) === 0) {
      parts.push(v);
      v = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const a = first < 80 ? Math.floor(first / 40) : 2;
  return [a, first - a * 40, ...parts].join('.');
}

/**
 * The extensions of a DER certificate: OID → the extnValue contents (the DER
 * inside the OCTET STRING).
 */
export function certificateExtensions(der: Uint8Array): Map<string, Uint8Array> {
  const cert = tlv(der, 0);
  const [tbs] = children(cert.value);
  if (tbs === undefined || tbs.tag !== 0x30) throw new AttestError('ATTEST_MALFORMED', 'certificate: no TBSCertificate');
  const out = new Map<string, Uint8Array>();
  const ext = children(tbs.value).find((c) => c.tag === 0xa3);
  if (ext === undefined) return out;
  const [seq] = children(ext.value);
  for (const e of seq === undefined ? [] : children(seq.value)) {
    const parts = children(e.value);
    const id = parts[0];
    const value = parts[parts.length - 1];
    if (id?.tag !== 0x06 || value?.tag !== 0x04) throw new AttestError('ATTEST_MALFORMED', 'certificate: malformed extension');
    out.set(oid(id.value), value.value);
  }
  return out;
}

/** Reads a DER INTEGER (non-negative, at most 6 bytes) from an extension value. */
export function derSmallInteger(b: Uint8Array): number {
  const t = tlv(b, 0);
  if (t.tag !== 0x02 || t.end !== b.length || t.value.length === 0 || t.value.length > 6 || (t.value[0]! & 0x80) !== 0) throw new AttestError('ATTEST_MALFORMED', 'certificate: extension is not a small non-negative INTEGER');
  return t.value.reduce((n, x) => n * 256 + x, 0);
}

/** Reads a DER OCTET STRING from an extension value (or returns `b` when it is raw bytes of `rawLength`). */
export function derOctets(b: Uint8Array, rawLength: number): Uint8Array {
  if (b.length === rawLength) return b;
  const t = tlv(b, 0);
  if (t.tag !== 0x04 || t.end !== b.length) throw new AttestError('ATTEST_MALFORMED', 'certificate: extension is not an OCTET STRING');
  return t.value;
}
