/**
 * The CLI side of step-up (issue #7; docs/mfa.md): for a sensitive request
 * (keys destroy|schedule-deletion, policy put, token create --admin, mfa
 * remove|recovery-codes|enroll), `--step-up` asks the service for a step-up
 * bound to the exact request, shows the canonical request on stderr, reads
 * a TOTP code — from `--totp-code-file FILE` ("-" = stdin), else a hidden
 * prompt on a terminal, else the first line of stdin; never from argv — has
 * the service verify it, and sends the request with `Keyward-Step-Up: <id>`.
 * `--recovery-code-file FILE` answers with a recovery code instead.
 * WebAuthn needs a browser: the console (#9) does it.
 */
import type { FlagsSpec } from './args.js';
import { usageError } from './errors.js';
import { readFirstLine, writeAll, type Io, type StdinClaim } from './io.js';
import { httpClient, type ServiceOptions } from './service.js';

export const STEP_UP_FLAGS = {
  'step-up': { type: 'boolean', help: 'prove a second factor for this exact request (asks for a TOTP code; see docs/mfa.md)' },
  'totp-code-file': { type: 'string', value: 'FILE', help: 'with --step-up: read the TOTP code from FILE ("-" = stdin); else a prompt on a terminal, else stdin' },
  'recovery-code-file': { type: 'string', value: 'FILE', help: 'with --step-up: answer with a recovery code read from FILE instead of a TOTP code' },
  approval: { type: 'string', value: 'ID', help: 'execute an approved approval request (keyward approvals request/approve; sent as Keyward-Approval)' },
} as const satisfies FlagsSpec;

export const STEP_UP_DETAILS = `
Once MFA is enforced (the first second factor was activated) this request
needs --step-up: the service binds a step-up to the request's hash, the CLI
shows the canonical request on stderr and reads a TOTP code (--totp-code-file
FILE, a prompt on a terminal, or stdin; never an argument), then sends the
request with the Keyward-Step-Up header. The step-up is single use and expires
after a few minutes. When a quorum rule covers the operation, first create an
approval request for the exact same request (keyward approvals request), have
enough approvers approve it (keyward approvals approve), then run this command
again with --approval ID (and --step-up once MFA is enforced).`;

export interface StepUpFlags {
  readonly 'step-up'?: boolean | undefined;
  readonly 'totp-code-file'?: string | undefined;
  readonly 'recovery-code-file'?: string | undefined;
  readonly approval?: string | undefined;
}

/** Reads the second factor's answer (never from argv). */
async function readAnswer(flags: StepUpFlags, io: Io, stdin: StdinClaim): Promise<{ code: string } | { recovery_code: string }> {
  if (flags['recovery-code-file'] !== undefined) {
    if (flags['recovery-code-file'] === '-') stdin.claim('the recovery code');
    const text = (await readFirstLine(flags['recovery-code-file'], io)).trim();
    if (text === '') usageError('the recovery code file is empty');
    return { recovery_code: text };
  }
  let code: string | null;
  if (flags['totp-code-file'] !== undefined) {
    if (flags['totp-code-file'] === '-') stdin.claim('the TOTP code');
    code = (await readFirstLine(flags['totp-code-file'], io)).trim();
  } else if (io.stdin.isTTY) {
    code = await io.prompt('TOTP code: ');
  } else {
    stdin.claim('the TOTP code');
    code = (await readFirstLine('-', io)).trim();
  }
  if (code === null || !/^[0-9]{6}$/.test(code.trim())) usageError('a TOTP code is 6 digits (from --totp-code-file, the terminal or standard input)');
  return { code: code.trim() };
}

/**
 * Sends a request that may be sensitive: directly without `--step-up`;
 * with it, through a step-up verified by a TOTP (or recovery) code.
 */
export async function callWithStepUp<T = Record<string, unknown>>(
  opts: ServiceOptions, flags: StepUpFlags, io: Io, stdin: StdinClaim,
  method: 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown,
): Promise<T> {
  if (!flags['step-up'] && (flags['totp-code-file'] !== undefined || flags['recovery-code-file'] !== undefined)) {
    usageError('--totp-code-file and --recovery-code-file go with --step-up');
  }
  const http = httpClient(opts);
  try {
    const headers: Record<string, string> = {};
    if (flags.approval !== undefined) {
      if (!/^[A-Za-z0-9_-]{43}$/.test(flags.approval)) usageError('--approval takes an approval request id (43 base64url characters)');
      headers['keyward-approval'] = flags.approval;
    }
    if (flags['step-up']) {
      const su = await http.request<{ id: string; request: unknown; expires_at: string; operation: string }>({
        method: 'POST', path: '/v1/mfa/step-up', body: { method, path, ...(body === undefined ? {} : { body }) },
      });
      await writeAll(io.stderr, `step-up for ${su.body.operation} (id ${su.body.id}, until ${su.body.expires_at}):\n${JSON.stringify(su.body.request, null, 2)}\n`);
      const answer = await readAnswer(flags, io, stdin);
      await http.request({ method: 'POST', path: `/v1/mfa/step-up/${su.body.id}/verify`, body: answer });
      headers['keyward-step-up'] = su.body.id;
    }
    const res = await http.request<T>({ method, path, ...(body === undefined ? {} : { body }), headers });
    return res.body;
  } finally {
    http.dispose();
  }
}
