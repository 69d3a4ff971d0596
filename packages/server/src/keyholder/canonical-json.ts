/**
 * RFC 8785 JSON Canonicalization Scheme (JCS) for the values the keyholder
 * binds into AAD and audit events: strings, integers, booleans, null, arrays
 * and plain objects. Object keys are sorted by UTF-16 code units, there is no
 * whitespace, strings are escaped as ECMAScript's JSON.stringify does (which
 * is what RFC 8785 §3.2.2.2 specifies), integers are written as ECMAScript
 * writes numbers.
 *
 * Deliberately narrower than RFC 8785: numbers must be safe integers
 * (|n| ≤ 2^53 − 1), so floats, NaN and ±Infinity are refused rather than
 * rounded; strings must be well-formed Unicode (I-JSON, RFC 7493, which
 * RFC 8785 requires); `undefined`, functions, symbols, bigints, class
 * instances (Date, Map, Uint8Array, …) and cycles are refused, never skipped.
 *
 * @example
 * canonicalJson({ b: [1, true], a: 'x' }) // '{"a":"x","b":[1,true]}'
 */
import { utf8 } from './bytes.js';
import { KeyholderError } from './errors.js';

export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };
export type JsonObject = { readonly [key: string]: JsonValue };

/** Nesting deeper than this is refused (also stops cycles). */
export const MAX_DEPTH = 32;

const bad = (path: string, why: string) => new KeyholderError('KW_INVALID_ARGUMENT', `canonical JSON: ${path || '(root)'} ${why}`);

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function write(v: unknown, path: string, depth: number, out: string[]): void {
  switch (typeof v) {
    case 'string':
      if (!v.isWellFormed()) throw bad(path, 'is not well-formed Unicode (lone surrogate)');
      out.push(JSON.stringify(v));
      return;
    case 'number':
      if (!Number.isSafeInteger(v)) throw bad(path, `is not a safe integer (${String(v)}); only integers are allowed`);
      out.push(String(v)); // ES Number::toString: "0" for -0, no exponent below 2^53
      return;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'object': {
      if (v === null) { out.push('null'); return; }
      if (depth >= MAX_DEPTH) throw bad(path, `nests deeper than ${MAX_DEPTH} levels`);
      if (Array.isArray(v)) {
        out.push('[');
        for (let i = 0; i < v.length; i++) {
          if (i > 0) out.push(',');
          if (!(i in v)) throw bad(`${path}[${i}]`, 'is a hole in a sparse array');
          write(v[i], `${path}[${i}]`, depth + 1, out);
        }
        out.push(']');
        return;
      }
      if (!isPlainObject(v)) throw bad(path, `is a ${v.constructor?.name ?? 'non-plain'} object, not a plain object`);
      if (Object.getOwnPropertySymbols(v).length > 0) throw bad(path, 'has symbol keys');
      // Default sort compares UTF-16 code units, as RFC 8785 §3.2.3 requires.
      const keys = Object.keys(v).sort();
      out.push('{');
      keys.forEach((k, i) => {
        if (!k.isWellFormed()) throw bad(path, 'has a key that is not well-formed Unicode');
        if (i > 0) out.push(',');
        out.push(JSON.stringify(k), ':');
        write((v as Record<string, unknown>)[k], `${path}.${k}`, depth + 1, out);
      });
      out.push('}');
      return;
    }
    default:
      throw bad(path, `has type ${typeof v}, which JSON cannot hold`);
  }
}

/** The RFC 8785 canonical text of `value`; throws KW_INVALID_ARGUMENT for anything outside the subset above. */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  write(value, '', 0, out);
  return out.join('');
}

/** UTF-8 bytes of `canonicalJson(value)`, as hashed or used as AAD. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return utf8.encode(canonicalJson(value));
}
