/**
 * `keyward principal list|show|set-roles|disable`: manage the people and
 * services that authenticate (admin token). Disabling a principal revokes
 * every token and request-signing key it has, for good.
 */
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, readToken, seg } from '../../lib/service.js';
import { STEP_UP_DETAILS, STEP_UP_FLAGS, callWithStepUp } from '../../lib/step-up.js';

const ID_RE = /^[\x21-\x7e]{1,255}$/;
const NS_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function principalId(positionals: readonly string[], what: string): string {
  if (positionals.length !== 1 || !ID_RE.test(positionals[0]!)) usageError(`principal ${what} takes one principal ID`);
  return positionals[0]!;
}

interface PrincipalView { id: string; ns: string; kind: string; roles: string[]; disabled_at: string | null }

export const principalList = defineServiceCommand({
  name: 'list',
  summary: 'list principals (of one namespace with --ns)',
  usage: ['[--ns NS] [--json]'],
  flags: { ns: { type: 'string', value: 'NS', help: 'only this namespace' }, ...TOKEN_FLAGS, json: { type: 'boolean', help: 'print the service answer as JSON' } },
  details: `GET /v1/principals[?ns=NS] (admin token; the initial admin token of init may list too).\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('principal list takes no positional arguments (use --ns NS)');
    if (flags.ns !== undefined && !NS_RE.test(flags.ns)) usageError('--ns must be 1–64 of A–Z a–z 0–9 . _ - starting with a letter or digit');
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await call<{ principals: PrincipalView[] }>({ addresses: addresses(flags.addr, io), token }, 'GET', `/v1/principals${flags.ns !== undefined ? `?ns=${encodeURIComponent(flags.ns)}` : ''}`);
    if (flags.json) await printJson(io.stdout, res);
    else {
      const lines = res.principals.map((p) => `${p.id}\t${p.ns}\t${p.kind}\t${p.roles.join(',') || '-'}${p.disabled_at ? `\tdisabled ${p.disabled_at}` : ''}`);
      await writeAll(io.stdout, lines.length ? `${lines.join('\n')}\n` : '');
    }
    return EXIT_OK;
  },
});

export const principalShow = defineServiceCommand({
  name: 'show',
  summary: 'show a principal with its tokens and signing keys (ids and dates)',
  usage: ['ID'],
  flags: { ...TOKEN_FLAGS },
  details: `GET /v1/principals/{id} (admin token). Prints JSON; token values and hashes are never shown.\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    const id = principalId(positionals, 'show');
    const token = await readToken(flags['token-file'], io, stdin);
    await printJson(io.stdout, await call({ addresses: addresses(flags.addr, io), token }, 'GET', `/v1/principals/${seg(id)}`));
    return EXIT_OK;
  },
});

export const principalSetRoles = defineServiceCommand({
  name: 'set-roles',
  summary: "replace a principal's roles (policies grant operations to roles)",
  usage: ['ID [--role ROLE]... [--step-up [--totp-code-file FILE]] [--approval ID] [--json]'],
  flags: {
    role: { type: 'string', multiple: true, value: 'ROLE', help: 'a role (repeat for several; none clears them)' },
    ...TOKEN_FLAGS,
    ...STEP_UP_FLAGS,
    json: { type: 'boolean', help: 'print the service answer as JSON' },
  },
  details: `PUT /v1/principals/{id}/roles { roles } (admin token). A role change is a
sensitive operation: it takes effect only as a governance snapshot the
keyholder signs (docs/mfa.md).\n${TOKEN_DETAILS}\n${STEP_UP_DETAILS}`,
  examples: ['keyward principal set-roles svc-orders --role orders-app --role reader'],
  async run({ flags, positionals }, { io, stdin }) {
    const id = principalId(positionals, 'set-roles');
    for (const r of flags.role) if (!ID_RE.test(r)) usageError(`--role '${r}' must be printable ASCII without spaces`);
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await callWithStepUp<PrincipalView>({ addresses: addresses(flags.addr, io), token }, flags, io, stdin, 'PUT', `/v1/principals/${seg(id)}/roles`, { roles: flags.role });
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `${id}: roles ${res.roles.join(', ') || '(none)'}\n`);
    return EXIT_OK;
  },
});

export const principalDisable = defineServiceCommand({
  name: 'disable',
  summary: 'disable a principal for good: revokes all its tokens and signing keys (needs --yes)',
  usage: ['ID --yes [--json]'],
  flags: {
    yes: { type: 'boolean', help: 'confirm: a disabled principal cannot be enabled again' },
    ...TOKEN_FLAGS,
    json: { type: 'boolean', help: 'print the service answer as JSON' },
  },
  details: `POST /v1/principals/{id}/disable (admin token). Disabling "root" burns
the initial admin token of init once the administrators are enrolled.\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    const id = principalId(positionals, 'disable');
    if (!flags.yes) usageError('disabling a principal is irreversible: add --yes to confirm');
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await call<{ tokens_revoked: number; signing_keys_revoked: number }>({ addresses: addresses(flags.addr, io), token }, 'POST', `/v1/principals/${seg(id)}/disable`);
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `${id} disabled: ${res.tokens_revoked} token(s) and ${res.signing_keys_revoked} signing key(s) revoked\n`);
    return EXIT_OK;
  },
});
