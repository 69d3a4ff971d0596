/**
 * The subset of RFC 8941 structured fields that HTTP message signatures need:
 * dictionaries whose members are inner lists of strings or byte sequences,
 * with parameters whose values are integers, strings or byte sequences.
 *
 * Parsing is strict. Tokens, booleans (bare keys), decimals, dates and display
 * strings are refused, as are duplicate dictionary keys and duplicate
 * parameters (RFC 8941 would let the last one win; here two values for one
 * label is an attack, not a convenience), non-canonical integers and
 * non-canonical base64. Every size is bounded. Every failure is an
 * `HttpSigError` with code `HTTPSIG_MALFORMED`.
 */
import { base64 } from '@scure/base';
import { HttpSigError } from './errors.js';

/** Hard limits on untrusted structured fields. */
export const SF_LIMITS = {
  /** Characters in one (combined) field value. */
  fieldLength: 8192,
  /** Members of one dictionary. */
  dictionaryMembers: 16,
  /** Items of one inner list. */
  innerListItems: 32,
  /** Parameters on one item or inner list. */
  parameters: 8,
  /** Characters of a key (dictionary key or parameter name). */
  keyLength: 64,
  /** Characters of a decoded string. */
  stringLength: 1024,
  /** Characters of the base64 text of a byte sequence. */
  byteSequenceLength: 1024,
} as const;

/** An integer, a string or a byte sequence: the only bare items accepted. */
export type BareItem = number | string | Uint8Array;
/** Parameters in field order; names are unique. */
export type Parameters = ReadonlyArray<readonly [name: string, value: BareItem]>;
/** A bare item with its parameters. */
export interface Item { readonly kind: 'item'; readonly value: BareItem; readonly params: Parameters }
/** An inner list with its parameters. */
export interface InnerList { readonly kind: 'list'; readonly items: readonly Item[]; readonly params: Parameters }
/** A dictionary in field order; keys are unique. */
export type Dictionary = ReadonlyArray<readonly [key: string, member: Item | InnerList]>;

const malformed = (why: string): HttpSigError => new HttpSigError('HTTPSIG_MALFORMED', `structured field: ${why}`);

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isLcAlpha = (c: string): boolean => c >= 'a' && c <= 'z';
const isKeyChar = (c: string): boolean => isLcAlpha(c) || isDigit(c) || c === '_' || c === '-' || c === '.' || c === '*';
const isBase64Char = (c: string): boolean =>
  (c >= 'A' && c <= 'Z') || isLcAlpha(c) || isDigit(c) || c === '+' || c === '/' || c === '=';

/** True when `key` is an RFC 8941 key (lowercase) within the length limit. */
export function isKey(key: string): boolean {
  if (key.length === 0 || key.length > SF_LIMITS.keyLength) return false;
  const first = key[0]!;
  if (!isLcAlpha(first) && first !== '*') return false;
  for (const c of key) if (!isKeyChar(c)) return false;
  return true;
}

/** True when `s` can be serialized as an sf-string (printable ASCII) within the length limit. */
export function isSfString(s: string): boolean {
  if (s.length > SF_LIMITS.stringLength) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

class Parser {
  private pos = 0;
  constructor(private readonly s: string) {}

  get done(): boolean { return this.pos >= this.s.length; }
  private peek(): string | undefined { return this.s[this.pos]; }

  private expect(c: string): void {
    if (this.s[this.pos] !== c) throw malformed(`expected '${c}' at ${this.pos}`);
    this.pos++;
  }

  private skipSP(): void { while (this.s[this.pos] === ' ') this.pos++; }
  private skipOWS(): void { while (this.s[this.pos] === ' ' || this.s[this.pos] === '\t') this.pos++; }

  dictionary(): Dictionary {
    const out: Array<readonly [string, Item | InnerList]> = [];
    const seen = new Set<string>();
    while (!this.done) {
      const key = this.key();
      if (this.peek() !== '=') throw malformed(`member '${key}' has no value (booleans are not accepted)`);
      this.pos++;
      const member = this.peek() === '(' ? this.innerList() : this.item();
      if (seen.has(key)) throw malformed(`duplicate key '${key}'`);
      seen.add(key);
      out.push([key, member]);
      if (out.length > SF_LIMITS.dictionaryMembers) throw malformed('too many dictionary members');
      this.skipOWS();
      if (this.done) return out;
      this.expect(',');
      this.skipOWS();
      if (this.done) throw malformed('trailing comma');
    }
    return out;
  }

  private innerList(): InnerList {
    this.expect('(');
    const items: Item[] = [];
    for (;;) {
      this.skipSP();
      if (this.done) throw malformed('unterminated inner list');
      if (this.peek() === ')') {
        this.pos++;
        return { kind: 'list', items, params: this.parameters() };
      }
      items.push(this.item());
      if (items.length > SF_LIMITS.innerListItems) throw malformed('too many inner list items');
      const c = this.peek();
      if (c !== ' ' && c !== ')') throw malformed(`unexpected character at ${this.pos} in inner list`);
    }
  }

  private item(): Item {
    const value = this.bareItem();
    return { kind: 'item', value, params: this.parameters() };
  }

  private parameters(): Parameters {
    const out: Array<readonly [string, BareItem]> = [];
    const seen = new Set<string>();
    while (this.peek() === ';') {
      this.pos++;
      this.skipSP();
      const name = this.key();
      if (this.peek() !== '=') throw malformed(`parameter '${name}' has no value (booleans are not accepted)`);
      this.pos++;
      const value = this.bareItem();
      if (seen.has(name)) throw malformed(`duplicate parameter '${name}'`);
      seen.add(name);
      out.push([name, value]);
      if (out.length > SF_LIMITS.parameters) throw malformed('too many parameters');
    }
    return out;
  }

  private key(): string {
    const start = this.pos;
    const first = this.peek();
    if (first === undefined || !(isLcAlpha(first) || first === '*')) throw malformed(`expected a key at ${start}`);
    while (!this.done && isKeyChar(this.s[this.pos]!)) {
      this.pos++;
      if (this.pos - start > SF_LIMITS.keyLength) throw malformed('key too long');
    }
    return this.s.slice(start, this.pos);
  }

  private bareItem(): BareItem {
    const c = this.peek();
    if (c === '-' || (c !== undefined && isDigit(c))) return this.integer();
    if (c === '"') return this.string();
    if (c === ':') return this.byteSequence();
    throw malformed(`unsupported item type at ${this.pos}`);
  }

  private integer(): number {
    const start = this.pos;
    if (this.peek() === '-') this.pos++;
    const digitsStart = this.pos;
    while (!this.done && isDigit(this.s[this.pos]!)) {
      this.pos++;
      if (this.pos - digitsStart > 15) throw malformed('integer too long');
    }
    const digits = this.s.slice(digitsStart, this.pos);
    if (digits.length === 0) throw malformed(`expected digits at ${digitsStart}`);
    if (this.peek() === '.') throw malformed('decimals are not accepted');
    const text = this.s.slice(start, this.pos);
    const n = Number(text);
    // Canonical form only: no leading zeros, no "-0".
    if (String(n) !== text) throw malformed(`non-canonical integer '${text}'`);
    return n;
  }

  private string(): string {
    this.expect('"');
    let out = '';
    for (;;) {
      if (this.done) throw malformed('unterminated string');
      const c = this.s[this.pos++]!;
      if (c === '"') return out;
      if (c === '\\') {
        const e = this.s[this.pos++];
        if (e !== '"' && e !== '\\') throw malformed('bad escape in string');
        out += e;
      } else {
        const code = c.charCodeAt(0);
        if (code < 0x20 || code > 0x7e) throw malformed('non-printable character in string');
        out += c;
      }
      if (out.length > SF_LIMITS.stringLength) throw malformed('string too long');
    }
  }

  private byteSequence(): Uint8Array {
    this.expect(':');
    const start = this.pos;
    while (!this.done && this.s[this.pos] !== ':') {
      if (!isBase64Char(this.s[this.pos]!)) throw malformed('bad character in byte sequence');
      this.pos++;
      if (this.pos - start > SF_LIMITS.byteSequenceLength) throw malformed('byte sequence too long');
    }
    const text = this.s.slice(start, this.pos);
    this.expect(':');
    let bytes: Uint8Array;
    try {
      bytes = base64.decode(text);
    } catch (cause) {
      throw new HttpSigError('HTTPSIG_MALFORMED', 'structured field: byte sequence is not valid base64', { cause });
    }
    // Canonical padded base64 only, so one value has one encoding.
    if (base64.encode(bytes) !== text) throw malformed('byte sequence is not canonical base64');
    return bytes;
  }
}

/**
 * Parses a (combined) dictionary field value. Leading and trailing spaces are
 * ignored, as RFC 8941 says; an empty value is an empty dictionary.
 */
export function parseDictionary(field: string): Dictionary {
  if (typeof field !== 'string') throw malformed('field value is not a string');
  if (field.length > SF_LIMITS.fieldLength) throw malformed('field value too long');
  for (let i = 0; i < field.length; i++) {
    const c = field.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c > 0x7e) throw malformed('field value has a non-ASCII or control character');
  }
  let a = 0;
  let b = field.length;
  while (a < b && field[a] === ' ') a++;
  while (b > a && field[b - 1] === ' ') b--;
  return new Parser(field.slice(a, b)).dictionary();
}

// --- serialization --------------------------------------------------------

function serializeBareItem(v: BareItem): string {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || Math.abs(v) > 999_999_999_999_999) throw new TypeError(`not an sf-integer: ${v}`);
    return String(v);
  }
  if (typeof v === 'string') {
    if (!isSfString(v)) throw new TypeError('string has characters outside printable ASCII, or is too long');
    return `"${v.replace(/[\\"]/g, (c) => '\\' + c)}"`;
  }
  return `:${base64.encode(v)}:`;
}

function serializeParams(params: Parameters): string {
  let out = '';
  for (const [name, value] of params) {
    if (!isKey(name)) throw new TypeError(`not an sf-key: ${JSON.stringify(name)}`);
    out += `;${name}=${serializeBareItem(value)}`;
  }
  return out;
}

/** Serializes one item with its parameters. */
export function serializeItem(item: Item): string {
  return serializeBareItem(item.value) + serializeParams(item.params);
}

/** Serializes an inner list with its parameters: `("a" "b");p=1`. */
export function serializeInnerList(list: InnerList): string {
  return `(${list.items.map(serializeItem).join(' ')})${serializeParams(list.params)}`;
}

/** Serializes a dictionary: `k=v, k2=(...)`. */
export function serializeDictionary(dict: Dictionary): string {
  return dict
    .map(([key, member]) => {
      if (!isKey(key)) throw new TypeError(`not an sf-key: ${JSON.stringify(key)}`);
      return `${key}=${member.kind === 'list' ? serializeInnerList(member) : serializeItem(member)}`;
    })
    .join(', ');
}

// --- the two signature fields (RFC 9421 §4) -------------------------------

/** The signature parameters of RFC 9421 §2.3 that this profile understands. */
export interface SignatureParams {
  created?: number;
  expires?: number;
  nonce?: string;
  keyid?: string;
  alg?: string;
  tag?: string;
}

/** Order in which the signer writes parameters (a verifier keeps the order it received). */
export const SIGNATURE_PARAM_ORDER = ['created', 'expires', 'nonce', 'keyid', 'alg', 'tag'] as const;
const INTEGER_PARAMS = new Set<string>(['created', 'expires']);
const STRING_PARAMS = new Set<string>(['nonce', 'keyid', 'alg', 'tag']);

/** One member of a Signature-Input field. */
export interface SignatureInputMember {
  readonly label: string;
  /** Covered component identifiers, in order (plain strings: component parameters are refused). */
  readonly components: readonly string[];
  readonly params: Readonly<SignatureParams>;
  /** The member re-serialized: the value of `"@signature-params"` in the signature base. */
  readonly serialized: string;
}

/**
 * Parses a Signature-Input field. Every member must be an inner list of
 * strings without parameters, carrying only the parameters of
 * {@link SignatureParams} with their RFC 9421 types.
 */
export function parseSignatureInput(field: string): SignatureInputMember[] {
  return parseDictionary(field).map(([label, member]) => {
    if (member.kind !== 'list') throw malformed(`Signature-Input member '${label}' is not an inner list`);
    const components = member.items.map((item) => {
      if (typeof item.value !== 'string') throw malformed(`Signature-Input '${label}': a component identifier is not a string`);
      if (item.params.length > 0) throw malformed(`Signature-Input '${label}': component parameters are not accepted`);
      return item.value;
    });
    const params: SignatureParams = {};
    for (const [name, value] of member.params) {
      if (INTEGER_PARAMS.has(name)) {
        if (typeof value !== 'number') throw malformed(`Signature-Input '${label}': ${name} is not an integer`);
        params[name as 'created' | 'expires'] = value;
      } else if (STRING_PARAMS.has(name)) {
        if (typeof value !== 'string') throw malformed(`Signature-Input '${label}': ${name} is not a string`);
        params[name as 'nonce' | 'keyid' | 'alg' | 'tag'] = value;
      } else {
        throw malformed(`Signature-Input '${label}': unknown parameter '${name}'`);
      }
    }
    return { label, components, params, serialized: serializeInnerList(member) };
  });
}

/** One member of a Signature field. */
export interface SignatureMember {
  readonly label: string;
  readonly signature: Uint8Array;
}

/** Parses a Signature field: every member a byte sequence without parameters. */
export function parseSignatureField(field: string): SignatureMember[] {
  return parseDictionary(field).map(([label, member]) => {
    if (member.kind !== 'item' || !(member.value instanceof Uint8Array)) {
      throw malformed(`Signature member '${label}' is not a byte sequence`);
    }
    if (member.params.length > 0) throw malformed(`Signature member '${label}' has parameters`);
    return { label, signature: member.value };
  });
}

/**
 * Serializes covered components and parameters as an inner list, parameters
 * in {@link SIGNATURE_PARAM_ORDER}: the `"@signature-params"` value and the
 * Signature-Input member value. Throws TypeError on values that cannot be serialized.
 */
export function serializeSignatureParams(components: readonly string[], params: Readonly<SignatureParams>): string {
  const list: Array<readonly [string, BareItem]> = [];
  for (const name of SIGNATURE_PARAM_ORDER) {
    const v = params[name];
    if (v !== undefined) list.push([name, v]);
  }
  return serializeInnerList({
    kind: 'list',
    items: components.map((c) => ({ kind: 'item', value: c, params: [] })),
    params: list,
  });
}
