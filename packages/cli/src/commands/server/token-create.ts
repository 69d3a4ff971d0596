/** `keyward token create`: a new bearer token (admin token needed). */
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { checkOutputPath, writeAll, writeFileAtomic } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, defineServiceCommand, readToken } from '../../lib/service.js';
import { STEP_UP_DETAILS, STEP_UP_FLAGS, callWithStepUp } from '../../lib/step-up.js';

export const tokenCreate = defineServiceCommand({
  name: 'create',
  summary: 'create a bearer token for a principal',
  usage: ['--principal ID [--kind person|service] [--ttl SECONDS] [--admin [--step-up [--totp-code-file FILE]]] [-o FILE] [--json]'],
  flags: {
    principal: { type: 'string', value: 'ID', help: 'the principal the token acts as' },
    ttl: { type: 'string', value: 'SECONDS', help: 'lifetime in seconds (default: the service default)' },
    admin: { type: 'boolean', help: 'an administration token' },
    kind: { type: 'string', value: 'KIND', help: 'person or service, for a principal created by this call (administrators enrolled with the initial token are persons)' },
    output: { type: 'string', short: 'o', value: 'FILE', help: 'write the new token to FILE (mode 0600; never overwrites) instead of stdout' },
    ...TOKEN_FLAGS,
    ...STEP_UP_FLAGS,
    json: { type: 'boolean', help: 'print the service answer as JSON (the token is left out when -o is given)' },
  },
  details: `POST /v1/tokens { principal, ttl_seconds?, admin? } with an admin token.
The new token is printed once on stdout (or written to -o FILE); the service
keeps only its SHA-256.\n${TOKEN_DETAILS}\nAn --admin token is a sensitive request:${STEP_UP_DETAILS}`,
  examples: ['keyward token create --principal svc-orders --ttl 86400 -o orders.token < admin.token'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('token create takes no positional arguments');
    if (flags.principal === undefined) usageError('token create needs --principal ID');
    const body: Record<string, unknown> = { principal: flags.principal };
    if (flags.ttl !== undefined) {
      if (!/^\d{1,10}$/.test(flags.ttl) || Number(flags.ttl) < 1) usageError('--ttl must be a positive number of seconds');
      body.ttl_seconds = Number(flags.ttl);
    }
    if (flags.admin) body.admin = true;
    if (flags.kind !== undefined) {
      if (flags.kind !== 'person' && flags.kind !== 'service') usageError('--kind must be person or service');
      body.kind = flags.kind;
    }
    if (flags.output !== undefined && flags.output !== '-') await checkOutputPath(flags.output);
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await callWithStepUp<Record<string, unknown>>(({ addresses: addresses(flags.addr, io), token }), flags, io, stdin, 'POST', '/v1/tokens', body);
    if (typeof res.token !== 'string') fail('KW_INTERNAL', 'the service answer carries no token');
    const toFile = flags.output !== undefined && flags.output !== '-';
    if (toFile) await writeFileAtomic(flags.output!, `${res.token}\n`, { exclusive: true });
    if (flags.json) {
      const { token: secret, ...rest } = res;
      await printJson(io.stdout, toFile ? { ...rest, file: flags.output } : { ...rest, token: secret });
    } else {
      if (!toFile) await writeAll(io.stdout, `${res.token}\n`);
      await writeAll(io.stderr, `token ${typeof res.id === 'string' ? res.id : ''} created for ${flags.principal}${toFile ? ` in ${flags.output}` : ''}\n`);
    }
    return EXIT_OK;
  },
});
