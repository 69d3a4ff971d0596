/**
 * RFC 8785 canonical JSON for the values the keyholder binds into AAD and
 * audit events. One implementation serves the whole server
 * (`audit/canonical-json.ts`: safe integers only, well-formed Unicode, plain
 * objects, no `__proto__` keys, bounded depth); this module only reports its
 * refusals as the keyholder's own `KW_INVALID_ARGUMENT`.
 *
 * @example
 * canonicalJson({ b: [1, true], a: 'x' }) // '{"a":"x","b":[1,true]}'
 */
import * as shared from '../audit/canonical-json.js';
import { KeyholderError } from './errors.js';

export type { JsonObject, JsonValue } from '../audit/canonical-json.js';
export { MAX_JSON_DEPTH as MAX_DEPTH } from '../audit/canonical-json.js';

/** The RFC 8785 canonical text of `value`; throws KW_INVALID_ARGUMENT for anything outside the subset. */
export function canonicalJson(value: unknown): string {
  try {
    return shared.canonicalJson(value);
  } catch (e) {
    throw new KeyholderError('KW_INVALID_ARGUMENT', e instanceof Error ? e.message : 'canonical JSON: not plain JSON');
  }
}

/** UTF-8 bytes of `canonicalJson(value)`, as hashed or used as AAD. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value));
}
