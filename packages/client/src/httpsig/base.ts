/**
 * The signature base of RFC 9421 §2.5, for the components this profile
 * accepts: the derived components `@method`, `@authority`, `@path`, `@query`
 * and header fields named in lowercase (§2.1), each without component
 * parameters, then `"@signature-params"` last.
 *
 * Values are never normalized beyond what the RFC asks (authority lowercased
 * without its default port; header values trimmed and multiple values joined
 * with ", "), so the verifier signs off on exactly the bytes it received.
 * Anything that could make the base ambiguous (CR, LF, other controls,
 * non-ASCII) is refused with `HTTPSIG_MALFORMED`.
 */
import { HttpSigError } from './errors.js';
import { serializeSignatureParams, type SignatureParams } from './structured.js';

/** Derived components this profile supports. */
export const DERIVED_COMPONENTS = ['@method', '@authority', '@path', '@query'] as const;

/** Components covered by default: the request line, the target and the body digest. */
export const DEFAULT_COMPONENTS: readonly string[] = Object.freeze(['@method', '@authority', '@path', '@query', 'content-digest']);

/**
 * Header fields as plain data: a WHATWG `Headers` (or anything with `forEach`
 * and `get`), or a record such as Node's `IncomingHttpHeaders`. Names are
 * matched case-insensitively; an array holds several field lines.
 */
export type HeadersInput =
  | { forEach(cb: (value: string, name: string) => void): void; get(name: string): string | null }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/** An HTTP request as plain data: what is signed and what is verified. */
export interface HttpRequestLike {
  /** The method as sent, e.g. `POST` (case is significant and kept). */
  readonly method: string;
  /** The absolute target URI, `https://host[:port]/path[?query]`. */
  readonly url: string;
  readonly headers: HeadersInput;
  /** The content as sent; a string is taken as UTF-8. Absent means empty. */
  readonly body?: Uint8Array | string | null;
}

const malformed = (why: string): HttpSigError => new HttpSigError('HTTPSIG_MALFORMED', why);

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const LOWER_TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const DERIVED = new Set<string>(DERIVED_COMPONENTS);

/** True when `id` is a component identifier this profile can build: a supported derived component or a lowercase field name. */
export function isComponentId(id: string): boolean {
  if (typeof id !== 'string') return false;
  if (id.startsWith('@')) return DERIVED.has(id);
  return id.length <= 64 && LOWER_TOKEN.test(id);
}

/** Printable ASCII and HTAB only: no CR, LF, NUL or non-ASCII can enter the base. */
function isFieldValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c > 0x7e) return false;
  }
  return true;
}

/** Visible ASCII only (no space), for the request target. */
function isVisible(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** Strips leading and trailing SP / HTAB (a loop: a regex anchored at the end is quadratic on long runs of spaces). */
function trimOWS(v: string): string {
  let a = 0;
  let b = v.length;
  while (a < b && (v[a] === ' ' || v[a] === '\t')) a++;
  while (b > a && (v[b - 1] === ' ' || v[b - 1] === '\t')) b--;
  return v.slice(a, b);
}

/**
 * Lowercased field name → its field lines, each as given. Throws
 * `HTTPSIG_MALFORMED` on values that are not strings.
 */
export function collectHeaders(headers: HeadersInput): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (name: string, value: unknown): void => {
    if (typeof value !== 'string') throw malformed(`header '${name}' has a non-string value`);
    const key = name.toLowerCase();
    const lines = out.get(key);
    if (lines) lines.push(value);
    else out.set(key, [value]);
  };
  if (headers === null || typeof headers !== 'object') throw malformed('headers must be an object');
  const h = headers as { forEach?: unknown; get?: unknown };
  if (typeof h.forEach === 'function' && typeof h.get === 'function') {
    (headers as { forEach(cb: (value: string, name: string) => void): void }).forEach((value, name) => add(name, value));
    return out;
  }
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value as unknown[]) add(name, v);
    else add(name, value);
  }
  return out;
}

/**
 * The value of a field as a component (RFC 9421 §2.1): each line trimmed,
 * lines joined with ", ". `undefined` when the field is absent.
 */
export function fieldValue(headers: Map<string, string[]>, name: string): string | undefined {
  const lines = headers.get(name);
  if (lines === undefined) return undefined;
  const value = lines.map(trimOWS).join(', ');
  if (!isFieldValue(value)) throw malformed(`header '${name}' has a control or non-ASCII character`);
  return value;
}

/** The parts of the target URI the derived components use. */
export interface TargetParts {
  readonly authority: string;
  readonly path: string;
  /** With its leading `?`; a lone `?` when the URI has no query. */
  readonly query: string;
}

const DEFAULT_PORT: Readonly<Record<string, string>> = { http: '80', https: '443' };

/**
 * Splits an absolute http(s) URI without normalizing its path or query (a
 * dot segment is signed as it is sent). The authority is lowercased and
 * loses its default port (RFC 9421 §2.2.3); userinfo is refused.
 */
export function targetParts(url: string): TargetParts {
  if (typeof url !== 'string' || url.length > 8192) throw malformed('url must be a string of at most 8192 characters');
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#.*)?$/s.exec(url);
  if (!m) throw malformed('url is not an absolute URI with an authority');
  const scheme = m[1]!.toLowerCase();
  const defaultPort = scheme === 'http' || scheme === 'https' ? DEFAULT_PORT[scheme] : undefined;
  if (defaultPort === undefined) throw malformed('url scheme must be http or https');
  const rawAuthority = m[2]!;
  const path = m[3]!;
  const query = m[4];
  if (rawAuthority.length === 0 || !isVisible(rawAuthority) || rawAuthority.includes('@')) {
    throw malformed('url authority is empty, has userinfo, or has invalid characters');
  }
  const portMatch = /^(\[[^\]]*\]|[^:[\]]*)(?::([0-9]*))?$/.exec(rawAuthority);
  if (!portMatch) throw malformed('url authority is not host[:port]');
  const host = portMatch[1]!;
  const port = portMatch[2];
  if (host.length === 0) throw malformed('url has an empty host');
  if (port !== undefined && (port.length === 0 || port.length > 5 || String(Number(port)) !== port || Number(port) > 65535)) {
    throw malformed('url port is not a canonical port number');
  }
  const authority = host.toLowerCase() + (port === undefined || port === defaultPort ? '' : `:${port}`);
  if (!isVisible(path) || (query !== undefined && !isVisible(query))) {
    throw malformed('url path or query has a space, control or non-ASCII character');
  }
  return { authority, path: path === '' ? '/' : path, query: `?${query ?? ''}` };
}

/**
 * Builds the signature base for `components` over `req`, ending with
 * `"@signature-params": <signatureParams>` (already serialized).
 *
 * @throws HttpSigError `HTTPSIG_MALFORMED` (unsupported or duplicate
 *   component, bad value) or `HTTPSIG_COMPONENT_MISSING` (a covered header
 *   is absent from the request).
 */
export function buildSignatureBase(req: HttpRequestLike, components: readonly string[], signatureParams: string): string {
  return baseFromParts(req.method, req.url, collectHeaders(req.headers), components, signatureParams);
}

/** {@link buildSignatureBase} over headers already collected (the signer adds its Content-Digest to them). */
export function baseFromParts(
  method: string,
  url: string,
  headers: Map<string, string[]>,
  components: readonly string[],
  signatureParams: string,
): string {
  const seen = new Set<string>();
  for (const c of components) {
    if (!isComponentId(c)) throw malformed(`component ${JSON.stringify(c)} is not supported`);
    if (seen.has(c)) throw malformed(`component "${c}" is covered twice`);
    seen.add(c);
  }
  if (typeof method !== 'string' || !TCHAR.test(method)) throw malformed('method is not an HTTP token');
  const target = targetParts(url);
  let base = '';
  for (const c of components) {
    let value: string | undefined;
    switch (c) {
      case '@method': value = method; break;
      case '@authority': value = target.authority; break;
      case '@path': value = target.path; break;
      case '@query': value = target.query; break;
      default:
        value = fieldValue(headers, c);
        if (value === undefined) throw new HttpSigError('HTTPSIG_COMPONENT_MISSING', `covered header '${c}' is absent from the request`);
    }
    base += `"${c}": ${value}\n`;
  }
  return `${base}"@signature-params": ${signatureParams}`;
}

/**
 * The signature base (RFC 9421 §2.5) for a request, covered components and
 * parameters, plus the serialized parameters (the Signature-Input member value).
 *
 * @example
 * const { base, signatureParams } = createSignatureBase(
 *   { method: 'POST', url: 'https://example.com/foo', headers: { 'content-type': 'application/json' } },
 *   { components: ['@method', '@path', 'content-type'], params: { created: 1618884473, keyid: 'k1' } },
 * );
 * // base ends with '"@signature-params": ("@method" "@path" "content-type");created=1618884473;keyid="k1"'
 */
export function createSignatureBase(
  req: HttpRequestLike,
  input: { readonly components: readonly string[]; readonly params: Readonly<SignatureParams> },
): { base: string; signatureParams: string } {
  const signatureParams = serializeSignatureParams(input.components, input.params);
  return { base: buildSignatureBase(req, input.components, signatureParams), signatureParams };
}
