/** Input sources of the Node adapter: regular files read by position, or any Node readable as a stream. */
import { createReadStream, promises as fsp } from 'node:fs';
import { KeywardError } from '../errors.js';

/** Input: a path, or a Node readable (e.g. process.stdin). */
export type NodeInput = string | NodeJS.ReadableStream;

const READ_SIZE = 1 << 20;

const readError = (e: unknown) =>
  e instanceof KeywardError ? e : new KeywardError('KW_IO', `reading input failed: ${(e as Error).message}`, { cause: e });

/** The input as a sequence of byte chunks. */
export async function* chunksOf(input: NodeInput): AsyncGenerator<Uint8Array> {
  try {
    const r = typeof input === 'string' ? createReadStream(input, { highWaterMark: READ_SIZE }) : input;
    for await (const c of r) yield typeof c === 'string' ? Buffer.from(c) : (c as Uint8Array);
  } catch (e) {
    throw readError(e);
  }
}

/** An open regular file whose size was fixed when it was opened. Close it when done. */
export class FileInput {
  private constructor(private readonly fh: fsp.FileHandle, readonly size: number) {}

  /** Opens `path` if it is a regular file of at least `minSize` bytes; otherwise null (use the stream path). */
  static async openIfLarge(path: string, minSize: number): Promise<FileInput | null> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path, 'r');
    } catch {
      return null; // the stream path reports the error as it always has
    }
    const st = await fh.stat().catch(() => null);
    if (!st || !st.isFile() || st.size < minSize) {
      await fh.close();
      return null;
    }
    return new FileInput(fh, st.size);
  }

  get fd(): number { return this.fh.fd; }

  /** Exactly `length` bytes at `position`. */
  async read(position: number, length: number): Promise<Uint8Array> {
    const buf = Buffer.allocUnsafe(length);
    try {
      for (let o = 0; o < length;) {
        const { bytesRead } = await this.fh.read(buf, o, length - o, position + o);
        if (bytesRead === 0) throw new KeywardError('KW_IO', 'the input file shrank while it was being read');
        o += bytesRead;
      }
    } catch (e) {
      throw readError(e);
    }
    return buf;
  }

  /** Throws KW_IO when the file's size changed since it was opened (it was written to meanwhile). */
  async checkUnchanged(): Promise<void> {
    const st = await this.fh.stat().catch((e: unknown) => { throw readError(e); });
    if (st.size !== this.size) throw new KeywardError('KW_IO', 'the input file changed size while it was being read');
  }

  close(): Promise<void> { return this.fh.close(); }
}
