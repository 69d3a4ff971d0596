/**
 * The age plugin IPC framing (C2SP age-plugin.md §IPC protocol): every
 * message is an age v1 header stanza — `-> COMMAND ARG…` and a body in
 * standard unpadded base64, 64 columns, ending with a shorter (possibly
 * empty) line — over the plugin's standard input and output. Parsing is
 * strict (canonical base64, VCHAR arguments, LF only): a violation is
 * `KW_INT_AGE_PROTOCOL`.
 */
import type { Readable, Writable } from 'node:stream';
import { IntegrationError } from '../errors.js';

export interface IpcStanza {
  readonly type: string;
  readonly args: readonly string[];
  readonly body: Uint8Array;
}

const COLUMNS = 64;
const MAX_LINE = 64 * 1024;
const B64_LINE = /^[A-Za-z0-9+/]*$/;

const protocol = (m: string): IntegrationError => new IntegrationError('KW_INT_AGE_PROTOCOL', `age plugin protocol: ${m}`);

function isArg(a: string): boolean {
  return a.length > 0 && /^[\x21-\x7e]+$/.test(a);
}

/** Standard base64 without padding, canonical only. */
export function b64decode(s: string): Uint8Array {
  if (!B64_LINE.test(s) || s.length % 4 === 1) throw protocol('non-canonical base64');
  const b = Buffer.from(s, 'base64');
  if (b64encode(b) !== s) throw protocol('non-canonical base64');
  return new Uint8Array(b);
}

export function b64encode(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64').replace(/=+$/, '');
}

/** One stanza as text. */
export function formatStanza(type: string, args: readonly string[] = [], body: Uint8Array = new Uint8Array(0)): string {
  for (const a of [type, ...args]) if (!isArg(a)) throw protocol(`invalid argument ${JSON.stringify(a)}`);
  const b = b64encode(body);
  const lines: string[] = [];
  for (let i = 0; i + COLUMNS <= b.length; i += COLUMNS) lines.push(b.slice(i, i + COLUMNS));
  lines.push(b.slice(b.length - (b.length % COLUMNS)));
  return `-> ${[type, ...args].join(' ')}\n${lines.join('\n')}\n`;
}

/** Reads stanzas from a stream, one at a time. */
export class StanzaReader {
  readonly #lines: string[] = [];
  #partial = '';
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  constructor(input: Readable) {
    input.setEncoding('latin1');
    input.on('data', (chunk: string) => {
      const parts = (this.#partial + chunk).split('\n');
      this.#partial = parts.pop()!;
      if (this.#partial.length > MAX_LINE) this.#error = protocol('line too long');
      this.#lines.push(...parts);
      this.#notify();
    });
    input.on('end', () => { this.#ended = true; this.#notify(); });
    input.on('error', (e: Error) => { this.#error = e; this.#notify(); });
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  async #line(): Promise<string | null> {
    for (;;) {
      if (this.#error) throw this.#error;
      const l = this.#lines.shift();
      if (l !== undefined) {
        if (l.includes('\r')) throw protocol('CR in a line');
        return l;
      }
      if (this.#ended) {
        if (this.#partial !== '') throw protocol('the stream ended inside a line');
        return null;
      }
      await new Promise<void>((r) => { this.#wake = r; });
    }
  }

  /** The next stanza, or null when the stream ended between stanzas. */
  async next(): Promise<IpcStanza | null> {
    const head = await this.#line();
    if (head === null) return null;
    if (!head.startsWith('-> ')) throw protocol('a stanza must start with "-> "');
    const parts = head.slice(3).split(' ');
    if (!parts.every(isArg)) throw protocol('empty or non-printable stanza argument');
    let b64 = '';
    for (;;) {
      const l = await this.#line();
      if (l === null) throw protocol('the stream ended inside a stanza body');
      if (l.length > COLUMNS) throw protocol('a body line is longer than 64 columns');
      b64 += l;
      if (l.length < COLUMNS) break;
    }
    return { type: parts[0]!, args: parts.slice(1), body: b64decode(b64) };
  }
}

/** Writes stanzas and waits for them to be flushed. */
export function stanzaWriter(out: Writable): (type: string, args?: readonly string[], body?: Uint8Array) => Promise<void> {
  return (type, args = [], body = new Uint8Array(0)) => new Promise<void>((resolve, reject) => {
    out.write(formatStanza(type, args, body), (e) => (e ? reject(e) : resolve()));
  });
}
