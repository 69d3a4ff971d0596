/**
 * A read-only look at an age file's header, for `inspect` and for deciding
 * whether `open` needs a passphrase. It is lenient on purpose: it never
 * decides whether a file is valid — core's `age.ageOpen` does that, strictly.
 * (Core exports no age header parser; see the CLI report.)
 */
const BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';
const END = '-----END AGE ENCRYPTED FILE-----';
const VERSION_LINE = 'age-encryption.org/v1';
const CHUNK = 64 * 1024;
const TAG = 16;
const NONCE = 16;

/** What `inspect --json` prints for an age file. */
export interface AgeDescription {
  readonly format: 'age';
  readonly version: string;
  readonly armored: boolean;
  readonly stanzas: readonly { readonly type: string }[];
  readonly postQuantum: boolean;
  readonly headerLength: number;
  readonly payloadLength: number;
  readonly chunkCount: number;
  readonly plaintextLength: number;
}

/** The binary form of a (possibly armored) age file; lenient base64. */
function binaryOf(bytes: Uint8Array): { binary: Buffer; armored: boolean } {
  const text = Buffer.from(bytes).toString('latin1');
  const start = text.search(/\S/);
  if (start >= 0 && text.startsWith(BEGIN, start)) {
    const end = text.indexOf(END, start);
    const body = text.slice(start + BEGIN.length, end < 0 ? undefined : end).replace(/\s+/g, '');
    return { binary: Buffer.from(body, 'base64'), armored: true };
  }
  return { binary: Buffer.from(bytes), armored: false };
}

/** Describes an age file's header; null if it does not look like one. */
export function describeAgeFile(bytes: Uint8Array): AgeDescription | null {
  const { binary, armored } = binaryOf(bytes);
  const macLine = binary.indexOf('\n--- ');
  if (macLine < 0) return null;
  const headerEnd = binary.indexOf('\n', macLine + 1);
  if (headerEnd < 0) return null;
  const lines = binary.subarray(0, macLine).toString('latin1').split('\n');
  const version = lines[0] ?? '';
  if (version !== VERSION_LINE) return null;
  const stanzas = lines.filter((l) => l.startsWith('-> ')).map((l) => ({ type: l.slice(3).split(' ')[0] ?? '' }));
  const headerLength = headerEnd + 1;
  const payloadLength = binary.length - headerLength;
  const chunkCount = Math.max(1, Math.ceil((payloadLength - NONCE) / (CHUNK + TAG)));
  return {
    format: 'age',
    version,
    armored,
    stanzas,
    postQuantum: stanzas.length > 0 && stanzas.every((s) => s.type === 'mlkem768x25519'),
    headerLength,
    payloadLength,
    chunkCount,
    plaintextLength: Math.max(0, payloadLength - NONCE - chunkCount * TAG),
  };
}
