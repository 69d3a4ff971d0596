/**
 * `keyward mfa enroll|activate|list|remove|recovery-codes` (issue #7;
 * docs/mfa.md): second factors on the key service. TOTP is enrolled here
 * (the otpauth URI and base32 seed are printed once, on stdout; the first
 * code activates it); WebAuthn needs a browser and is enrolled in the console.
 * Codes are read from files, a terminal prompt or stdin — never argv.
 */
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { readFirstLine, writeAll, type Io, type StdinClaim } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, readToken, seg } from '../../lib/service.js';
import { STEP_UP_DETAILS, STEP_UP_FLAGS, callWithStepUp } from '../../lib/step-up.js';

const ID_RE = /^[\x21-\x7e]{1,255}$/;

interface FactorView { id: string; principal: string; kind: string; name: string; state: string; created: string; last_used: string | null; remaining?: number }

/** The activation code: --code-file FILE ("-" = stdin), else a prompt on a terminal, else stdin. */
async function readActivationCode(file: string | undefined, io: Io, stdin: StdinClaim): Promise<string> {
  let code: string | null;
  if (file !== undefined) {
    if (file === '-') stdin.claim('the activation code');
    code = (await readFirstLine(file, io)).trim();
  } else if (io.stdin.isTTY) {
    code = await io.prompt('Code from the new authenticator: ');
  } else {
    stdin.claim('the activation code');
    code = (await readFirstLine('-', io)).trim();
  }
  if (code === null || !/^[0-9]{6}$/.test(code.trim())) usageError('a TOTP code is 6 digits');
  return code.trim();
}

export const mfaEnroll = defineServiceCommand({
  name: 'enroll',
  summary: 'enroll a second factor: totp (prints the otpauth URI and seed once) or webauthn (in the console)',
  usage: ['totp [--name NAME] [--activate [--code-file FILE]] [--step-up [--totp-code-file FILE]] [--json]', 'webauthn'],
  flags: {
    name: { type: 'string', value: 'NAME', help: 'a label for the factor (default "authenticator app")' },
    activate: { type: 'boolean', help: 'read the first code of the new authenticator at once and activate it (default on a terminal)' },
    'code-file': { type: 'string', value: 'FILE', help: 'with --activate: read the new authenticator\'s first code from FILE ("-" = stdin)' },
    ...TOKEN_FLAGS,
    ...STEP_UP_FLAGS,
    json: { type: 'boolean', help: 'print the service answer as JSON (it holds the seed)' },
  },
  details: `POST /v1/mfa/totp, then POST /v1/mfa/totp/{id}/activate { code }.
The seed is shown once: add it to an authenticator app (scan the otpauth URI
as a QR code, or type the base32 secret). The service keeps it only sealed by
its keyholder. The factor is active after its first valid code (--activate,
or later: keyward mfa activate ID). With an active factor already, adding
another is a sensitive request (--step-up). WebAuthn (passkeys, security
keys) needs a browser: use the console.\n${TOKEN_DETAILS}\n${STEP_UP_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1) usageError('mfa enroll takes totp or webauthn');
    if (positionals[0] === 'webauthn') fail('KW_UNSUPPORTED', 'WebAuthn enrollment needs a browser (navigator.credentials): use the console');
    if (positionals[0] !== 'totp') usageError('mfa enroll takes totp or webauthn');
    if (flags['code-file'] !== undefined && !flags.activate) usageError('--code-file goes with --activate');
    const token = await readToken(flags['token-file'], io, stdin);
    const opts = { addresses: addresses(flags.addr, io), token };
    const body = flags.name !== undefined ? { name: flags.name } : {};
    const res = await callWithStepUp<{ id: string; otpauth_uri: string; secret_base32: string; name: string }>(opts, flags, io, stdin, 'POST', '/v1/mfa/totp', body);
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `factor ${res.id} (${res.name}), pending\notpauth URI: ${res.otpauth_uri}\nsecret (base32): ${res.secret_base32}\n`);
    if (flags.activate || (io.stdin.isTTY && !flags.json)) {
      const code = await readActivationCode(flags['code-file'], io, stdin);
      await call(opts, 'POST', `/v1/mfa/totp/${seg(res.id)}/activate`, { code });
      await writeAll(io.stderr, `factor ${res.id} active\n`);
    } else {
      await writeAll(io.stderr, `activate it with its first code: keyward mfa activate ${res.id} --code-file FILE\n`);
    }
    return EXIT_OK;
  },
});

export const mfaActivate = defineServiceCommand({
  name: 'activate',
  summary: 'activate a pending TOTP factor with its first code',
  usage: ['FACTOR_ID [--code-file FILE] [--json]'],
  flags: {
    'code-file': { type: 'string', value: 'FILE', help: 'read the code from FILE ("-" = stdin); else a prompt on a terminal, else stdin' },
    ...TOKEN_FLAGS,
    json: { type: 'boolean', help: 'print the service answer as JSON' },
  },
  details: `POST /v1/mfa/totp/{id}/activate { code }. The first activated factor of the
deployment starts MFA enforcement (and ends the initial admin token).\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1 || !ID_RE.test(positionals[0]!)) usageError('mfa activate takes one FACTOR_ID');
    const token = await readToken(flags['token-file'], io, stdin);
    const code = await readActivationCode(flags['code-file'], io, stdin);
    const res = await call<FactorView>({ addresses: addresses(flags.addr, io), token }, 'POST', `/v1/mfa/totp/${seg(positionals[0]!)}/activate`, { code });
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `factor ${res.id} (${res.name}) ${res.state}\n`);
    return EXIT_OK;
  },
});

export const mfaList = defineServiceCommand({
  name: 'list',
  summary: "list second factors: your own, or (admin) another principal's",
  usage: ['[--principal ID] [--json]'],
  flags: {
    principal: { type: 'string', value: 'ID', help: "another principal's factors (admin token)" },
    ...TOKEN_FLAGS,
    json: { type: 'boolean', help: 'print the service answer as JSON' },
  },
  details: `GET /v1/mfa/factors[?principal=ID]: ids, kinds, names, states; never secrets.\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('mfa list takes no positional arguments');
    if (flags.principal !== undefined && !ID_RE.test(flags.principal)) usageError('--principal must be printable ASCII without spaces');
    const token = await readToken(flags['token-file'], io, stdin);
    const query = flags.principal !== undefined ? `?principal=${encodeURIComponent(flags.principal)}` : '';
    const res = await call<{ factors: FactorView[] }>({ addresses: addresses(flags.addr, io), token }, 'GET', `/v1/mfa/factors${query}`);
    if (flags.json) await printJson(io.stdout, res);
    else {
      const lines = res.factors.map((f) => `${f.id}\t${f.kind}\t${f.state}\t${f.name}\t${f.created}${f.remaining !== undefined ? `\t${f.remaining} left` : ''}`);
      await writeAll(io.stdout, lines.length ? `${lines.join('\n')}\n` : '');
    }
    return EXIT_OK;
  },
});

export const mfaRemove = defineServiceCommand({
  name: 'remove',
  summary: 'remove a second factor (needs --step-up once you have an active factor)',
  usage: ['FACTOR_ID --step-up [--totp-code-file FILE | --recovery-code-file FILE] [--json]'],
  flags: { ...TOKEN_FLAGS, ...STEP_UP_FLAGS, json: { type: 'boolean', help: 'print the service answer as JSON' } },
  details: `DELETE /v1/mfa/factors/{id} (yours; an administrator's token may remove another
person's, e.g. a lost phone).\n${TOKEN_DETAILS}\n${STEP_UP_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1 || !ID_RE.test(positionals[0]!)) usageError('mfa remove takes one FACTOR_ID');
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await callWithStepUp<{ id: string; principal: string }>({ addresses: addresses(flags.addr, io), token }, flags, io, stdin, 'DELETE', `/v1/mfa/factors/${seg(positionals[0]!)}`);
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `factor ${res.id} of ${res.principal} removed\n`);
    return EXIT_OK;
  },
});

export const mfaRecoveryCodes = defineServiceCommand({
  name: 'recovery-codes',
  summary: 'make ten one-time recovery codes (printed once; replaces the previous set; needs --step-up)',
  usage: ['--step-up [--totp-code-file FILE] [--json]'],
  flags: { ...TOKEN_FLAGS, ...STEP_UP_FLAGS, json: { type: 'boolean', help: 'print the service answer as JSON' } },
  details: `POST /v1/mfa/recovery-codes. Each code answers one step-up
(--recovery-code-file) and is then spent; store them offline.\n${TOKEN_DETAILS}\n${STEP_UP_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('mfa recovery-codes takes no positional arguments');
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await callWithStepUp<{ id: string; codes: string[] }>({ addresses: addresses(flags.addr, io), token }, flags, io, stdin, 'POST', '/v1/mfa/recovery-codes', {});
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `${res.codes.join('\n')}\n`);
    return EXIT_OK;
  },
});
