/**
 * How the CLI reports failures: every error becomes a KeywardError with a
 * stable code, printed as `error[CODE]: message` on stderr.
 *
 * Exit codes: 0 success, 1 failure, 2 usage error (code KW_INVALID_ARGUMENT).
 */
import { KeywardError, isKeywardError, type KeywardErrorCode } from '@keyward/core';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Throws KW_INVALID_ARGUMENT: the command line is wrong (exit 2). */
export function usageError(message: string): never {
  throw new KeywardError('KW_INVALID_ARGUMENT', message);
}

/** Throws a KeywardError with the given code. */
export function fail(code: KeywardErrorCode, message: string, cause?: unknown): never {
  throw new KeywardError(code, message, cause === undefined ? undefined : { cause });
}

/** Node system errors (ENOENT, EACCES, EPIPE, …) as KW_IO; anything else unexpected as KW_INTERNAL. */
export function toKeywardError(e: unknown): KeywardError {
  if (isKeywardError(e)) return e;
  const err = e as NodeJS.ErrnoException | undefined;
  if (err && typeof err.code === 'string' && typeof err.syscall === 'string') {
    return new KeywardError('KW_IO', describeSystemError(err), { cause: e });
  }
  return new KeywardError('KW_INTERNAL', `unexpected failure: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'file already exists',
  ENOSPC: 'no space left on device',
  EPIPE: 'broken pipe',
  EBADF: 'bad file descriptor',
  EINVAL: 'invalid argument (no such file descriptor?)',
  ENXIO: 'no such device',
};

/** "cannot open 'x': no such file or directory" — names the path, never contents. */
export function describeSystemError(err: NodeJS.ErrnoException, what?: string, verb?: string): string {
  const reason = SYSTEM_ERRORS[err.code ?? ''] ?? err.code ?? 'I/O error';
  const target = what ?? (err.path ? `'${err.path}'` : 'a stream');
  return `cannot ${verb ?? err.syscall ?? 'access'} ${target}: ${reason}`;
}

/** The exit code a failure maps to. */
export function exitCodeOf(e: KeywardError): number {
  return e.code === 'KW_INVALID_ARGUMENT' ? EXIT_USAGE : EXIT_FAILURE;
}

/** Replaces control characters (terminal escapes from untrusted input) with '?'. */
function stripControl(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    out += (c < 0x20 && ch !== '\t') || c === 0x7f || (c >= 0x80 && c < 0xa0) ? '?' : ch;
  }
  return out;
}

/** The one line printed on stderr. Messages never carry key bytes, secrets or plaintext. */
export function formatError(e: KeywardError): string {
  return `error[${e.code}]: ${stripControl(e.message)}\n`;
}

/**
 * Runs a key-string parser whose error message might echo its input (a
 * secret); keeps the code, replaces the message.
 */
export async function withoutEcho<T>(f: () => T | Promise<T>, message: string): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (isKeywardError(e)) throw new KeywardError(e.code, message);
    throw new KeywardError('KW_INVALID_KEY_STRING', message);
  }
}

/** True for a write to a pipe whose reader has gone (EPIPE), anywhere in the cause chain. */
export function isBrokenPipe(e: unknown): boolean {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 5; c = c.cause, depth++) {
    if ((c as NodeJS.ErrnoException).code === 'EPIPE') return true;
  }
  return false;
}
