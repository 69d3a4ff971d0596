/**
 * RFC 8785 (JSON Canonicalization Scheme) for the plain JSON that audit events
 * are made of: strings, safe integers, booleans, null, arrays and plain
 * objects. Keys are sorted by UTF-16 code units (RFC 8785 §3.2.3), there is no
 * whitespace, strings are escaped as ECMAScript `JSON.stringify` escapes them
 * (RFC 8785 §3.2.2.2), integers are written as ECMAScript writes numbers.
 *
 * Deliberately narrower than RFC 8785, so nothing is ever rounded or skipped:
 * numbers must be safe integers (|n| ≤ 2^53 − 1; floats, NaN, ±Infinity are
 * refused); strings and keys must be well-formed Unicode (I-JSON); the key
 * `__proto__` is refused (it would change an object's prototype when copied);
 * `undefined`, functions, symbols, bigints, sparse arrays, class instances
 * (Date, Map, Uint8Array, …), symbol keys and nesting deeper than
 * {@link MAX_JSON_DEPTH} (which also stops cycles) are refused with
 * `KW_INVALID_ARGUMENT`.
 *
 * @example
 * canonicalJson({ b: [1, true], a: 'x' }) // '{"a":"x","b":[1,true]}'
 */
import { AuditError } from './errors.js';

/** A plain JSON value of the subset above. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };
/** A plain JSON object. */
export type JsonObject = { readonly [key: string]: JsonValue };

/** Nesting deeper than this is refused. */
export const MAX_JSON_DEPTH = 32;

function refuse(path: string, why: string): AuditError {
  return new AuditError('KW_INVALID_ARGUMENT', `canonical JSON: ${path === '' ? 'the value' : path} ${why}`);
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function emit(v: unknown, path: string, depth: number, out: string[]): void {
  if (v === null) {
    out.push('null');
    return;
  }
  switch (typeof v) {
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isSafeInteger(v)) throw refuse(path, `is ${String(v)}: only safe integers are allowed`);
      out.push(Object.is(v, -0) ? '0' : String(v));
      return;
    case 'string':
      if (!v.isWellFormed()) throw refuse(path, 'is not well-formed Unicode (lone surrogate)');
      out.push(JSON.stringify(v));
      return;
    case 'object':
      break;
    default:
      throw refuse(path, `is a ${typeof v}, which plain JSON cannot hold`);
  }
  if (depth >= MAX_JSON_DEPTH) throw refuse(path, `nests deeper than ${MAX_JSON_DEPTH} levels`);
  if (Array.isArray(v)) {
    out.push('[');
    for (let i = 0; i < v.length; i++) {
      if (!Object.prototype.hasOwnProperty.call(v, i)) throw refuse(`${path}[${i}]`, 'is a hole in a sparse array');
      if (i > 0) out.push(',');
      emit((v as unknown[])[i], `${path}[${i}]`, depth + 1, out);
    }
    out.push(']');
    return;
  }
  const obj = v;
  if (!isPlainObject(obj)) throw refuse(path, `is a ${obj.constructor?.name ?? 'non-plain'} instance, not a plain object`);
  if (Object.getOwnPropertySymbols(obj).length > 0) throw refuse(path, 'has symbol keys');
  const keys = Object.keys(obj).sort(); // default sort: UTF-16 code units, as RFC 8785 §3.2.3 requires
  out.push('{');
  keys.forEach((k, i) => {
    const at = path === '' ? k : `${path}.${k}`;
    if (!k.isWellFormed()) throw refuse(path, 'has a key that is not well-formed Unicode');
    if (k === '__proto__') throw refuse(at, 'is a __proto__ key');
    if (i > 0) out.push(',');
    out.push(JSON.stringify(k), ':');
    emit((obj as Record<string, unknown>)[k], at, depth + 1, out);
  });
  out.push('}');
}

/**
 * The RFC 8785 canonical text of `value`; throws `KW_INVALID_ARGUMENT` for
 * anything outside the subset described in the module comment.
 *
 * @example
 * canonicalJson({ z: null, a: [3, 'é'] }) // '{"a":[3,"é"],"z":null}'
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  emit(value, '', 0, out);
  return out.join('');
}

/**
 * The UTF-8 bytes of {@link canonicalJson}: what is hashed and stored.
 *
 * @example
 * sha256(canonicalJsonBytes(event))
 */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value));
}

/**
 * Parses JSON text that must already be canonical: `JSON.parse`, then the
 * value re-encoded must equal the text exactly. So duplicate keys, whitespace,
 * unsorted keys, `1.0`, `1e2`, needless escapes and anything outside the subset
 * are refused (`KW_AUDIT_MALFORMED`), and one value has exactly one text —
 * which is what makes a hash over the text a hash over the value.
 *
 * @example
 * parseCanonicalJson('{"a":1}') // { a: 1 }
 * parseCanonicalJson('{ "a": 1 }') // throws KW_AUDIT_MALFORMED
 */
export function parseCanonicalJson(text: string): JsonValue {
  if (typeof text !== 'string') throw new AuditError('KW_AUDIT_MALFORMED', 'canonical JSON text must be a string');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new AuditError('KW_AUDIT_MALFORMED', 'not JSON', { cause: e });
  }
  let again: string;
  try {
    again = canonicalJson(value);
  } catch (e) {
    throw new AuditError('KW_AUDIT_MALFORMED', e instanceof Error ? e.message : 'not plain JSON', { cause: e });
  }
  if (again !== text) throw new AuditError('KW_AUDIT_MALFORMED', 'JSON text is not in RFC 8785 canonical form');
  return value as JsonValue;
}
