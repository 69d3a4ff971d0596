/**
 * Page side of browser.test.ts. esbuild bundles this file for the browser with
 * `@keyward/core` left external; the test page maps that specifier (import map)
 * to the separately built bundle of src/index.ts, so everything here runs on the
 * web platform adapter (WebCrypto + @noble). It exposes the core module as
 * `window.kw` and the scenario functions below as `window.harness`; the test
 * calls them through `page.evaluate`. Node never imports this file.
 *
 * Binary data crosses the page boundary as base64 strings.
 */
import * as kw from '@keyward/core';
import type { ContextInput, EnvelopeInfo, Identity, KemType } from '@keyward/core';
import { base64, hex } from '@scure/base';

const KEMS: readonly KemType[] = ['x25519', 'xwing', 'p256'];

const b64 = (b: Uint8Array): string => base64.encode(b);
const unb64 = (s: string): Uint8Array => base64.decode(s);

/** Random bytes; getRandomValues fills at most 64 KiB per call. */
function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

/** SHA-256 by WebCrypto: independent of the hash code in core. */
async function sha256Hex(b: Uint8Array): Promise<string> {
  return hex.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', b as BufferSource)));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The KeywardError code of a failure, or a description of a foreign error. */
function codeOf(e: unknown): string {
  if (kw.isKeywardError(e)) return e.code;
  return `not a KeywardError: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`;
}

async function codeOfRejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return codeOf(e);
  }
}

/** A ReadableStream over `data` in irregular pieces (crossing chunk boundaries at odd offsets). */
function streamOf(data: Uint8Array, piece: number): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (off >= data.length) { ctl.close(); return; }
      ctl.enqueue(data.slice(off, off + piece));
      off += piece;
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

/** Facts about the page the test asserts before trusting the rest. */
function environment() {
  return {
    secureContext: window.isSecureContext,
    subtle: typeof crypto.subtle?.encrypt === 'function',
    hasProcess: typeof (globalThis as { process?: unknown }).process !== 'undefined',
    hasBuffer: typeof (globalThis as { Buffer?: unknown }).Buffer !== 'undefined',
    userAgent: navigator.userAgent,
  };
}

export interface SealedInBrowser {
  envelope: string;
  plaintext: string;
  /** Secret identity strings, one per KEM, in KEMS order. */
  identities: { type: KemType; secret: string; recipient: string }[];
  verifyingKey: string;
  /** The page opened its own envelope with every identity. */
  selfOpened: string[];
}

/** Scenario 1: seal in the browser to three page identities and one Node recipient, signed, with a context. */
async function sealForNode(nodeRecipient: string, size: number, context: ContextInput): Promise<SealedInBrowser> {
  const ids = await Promise.all(KEMS.map((t) => kw.generateIdentity(t)));
  const signer = await kw.SigningKey.generate('ed25519');
  const plaintext = random(size);
  const recipients = [...(await Promise.all(ids.map((i) => i.recipient()))), await kw.parseRecipient(nodeRecipient)];
  const envelope = await kw.seal(plaintext, { recipients, context, signer });
  const selfOpened: string[] = [];
  for (const id of ids) {
    const r = await kw.open(envelope, { identities: [id], context, verify: [signer.verifyingKey] });
    if (!equal(r.plaintext, plaintext) || r.signature?.verified !== true) throw new Error(`page could not open its own envelope with ${id.type}`);
    selfOpened.push(r.openedBy);
  }
  return {
    envelope: b64(envelope),
    plaintext: b64(plaintext),
    identities: await Promise.all(ids.map(async (i) => ({ type: i.type, secret: i.toString(), recipient: (await i.recipient()).toString() }))),
    verifyingKey: signer.verifyingKey.toString(),
    selfOpened,
  };
}

export interface OpenedInBrowser {
  openedBy: string;
  aead: string;
  context: EnvelopeInfo['context'];
  signature: EnvelopeInfo['signature'];
  sha256: string;
  length: number;
}

/**
 * Scenario 2: open (armored) envelopes Node sealed, once per identity string
 * (or once with the passphrase), verifying the signature and the context.
 */
async function openFromNode(args: {
  envelope: string; identities?: string[]; passphrase?: string; verifyingKey: string; context: ContextInput;
}): Promise<{ opened: OpenedInBrowser[]; wrongSigner: string; wrongContext: string }> {
  const verify = [kw.parseVerifyingKey(args.verifyingKey)];
  const identities: Identity[] = args.passphrase !== undefined
    ? [new kw.PassphraseIdentity(args.passphrase)]
    : await Promise.all((args.identities ?? []).map((s) => kw.parseIdentity(s)));
  const opened: OpenedInBrowser[] = [];
  for (const id of identities) {
    const r = await kw.open(args.envelope, { identities: [id], verify, context: args.context });
    opened.push({
      openedBy: r.openedBy, aead: r.aead, context: r.context, signature: r.signature,
      sha256: await sha256Hex(r.plaintext), length: r.plaintext.length,
    });
  }
  const other = await kw.SigningKey.generate(verify[0]!.alg);
  return {
    opened,
    wrongSigner: await codeOfRejection(kw.open(args.envelope, { identities, verify: [other.verifyingKey], context: args.context })),
    wrongContext: await codeOfRejection(kw.open(args.envelope, { identities, verify, context: { not: 'the context' } })),
  };
}

/** Scenario 3: the Web Streams API, round trip and tamper detection. */
async function streamRoundTrip(size: number): Promise<{
  equal: boolean; envelopeLength: number; openedBy: string; envelope: string; identity: string; plaintextSha256: string;
  tampered: { pipe: string; done: string; open: string };
}> {
  const id = await kw.generateIdentity('xwing');
  const recipients = [await id.recipient()];
  const plaintext = random(size);
  const envelope = await collect(streamOf(plaintext, 7777).pipeThrough(kw.createSealStream({ recipients })));

  const os = kw.createOpenStream({ identities: [id] });
  const back = await collect(streamOf(envelope, 10007).pipeThrough(os.stream));
  const info = await os.done;

  // Flip one payload byte well inside the chunks (the header is a few KiB; the envelope ≈ size).
  const bad = envelope.slice();
  bad[bad.length - 70_000]! ^= 0x01;
  const ts = kw.createOpenStream({ identities: [id] });
  const pipe = await codeOfRejection(collect(streamOf(bad, 10007).pipeThrough(ts.stream)));
  const done = await codeOfRejection(ts.done);
  const whole = await codeOfRejection(kw.open(bad, { identities: [id] }));

  return {
    equal: equal(back, plaintext), envelopeLength: envelope.length, openedBy: info.openedBy,
    envelope: b64(envelope), identity: id.toString(), plaintextSha256: await sha256Hex(plaintext),
    tampered: { pipe, done, open: whole },
  };
}

/** Scenario 4: age v1 in the browser: round trips, plus files for Node to open and opening Node's file. */
async function ageRoundTrip(size: number, fromNode: { file: string; identity: string; plaintextSha256: string }): Promise<{
  roundTrips: Record<string, boolean>;
  files: { kind: string; file: string; identity?: string; passphrase?: string }[];
  plaintext: string;
  fromNodeSha256: string;
}> {
  const { age } = kw;
  const plaintext = random(size);
  const roundTrips: Record<string, boolean> = {};
  const files: { kind: string; file: string; identity?: string; passphrase?: string }[] = [];
  for (const kind of ['x25519', 'mlkem768x25519'] as const) {
    const id = age.generateAgeIdentity(kind);
    const recipient = age.parseAgeRecipient(id.recipient().text);
    const file = await age.ageSeal(plaintext, { recipients: [recipient] });
    roundTrips[kind] = equal(await age.ageOpen(file, { identities: [age.parseAgeIdentity(id.text)] }), plaintext);
    const armored = await age.ageSeal(plaintext, { recipients: [recipient] }, { armor: true });
    roundTrips[`${kind} armored`] = age.isAgeFile(armored) && equal(await age.ageOpen(armored, { identities: [id] }), plaintext);
    files.push({ kind, file: b64(file), identity: id.text });
  }
  const passphrase = 'browser passphrase';
  const pw = await age.ageSeal(plaintext, { passphrase, workFactor: 10 });
  roundTrips.scrypt = equal(await age.ageOpen(pw, { passphrase }), plaintext);
  files.push({ kind: 'scrypt', file: b64(pw), passphrase });

  const nodeFile = await age.ageOpen(unb64(fromNode.file), { identities: [age.parseAgeIdentity(fromNode.identity)] });
  return { roundTrips, files, plaintext: b64(plaintext), fromNodeSha256: await sha256Hex(nodeFile) };
}

const harness = { environment, sealForNode, openFromNode, streamRoundTrip, ageRoundTrip };
export type Harness = typeof harness;

declare global {
  interface Window {
    kw: typeof kw;
    harness: Harness;
  }
}

window.kw = kw;
window.harness = harness;
