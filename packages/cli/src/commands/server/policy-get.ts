/** `keyward policy get NS/ID`: print a policy. */
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, keyRef, readToken, seg } from '../../lib/service.js';

export const policyGet = defineServiceCommand({
  name: 'get',
  summary: 'print the current policy NS/ID (JSON)',
  usage: ['NS/ID'],
  flags: { ...TOKEN_FLAGS, json: { type: 'boolean', help: 'same output (the policy is JSON already)' } },
  details: `GET /v1/policies/{ns}/{id} (admin token).\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1) usageError('policy get takes one NS/ID');
    const { ns, name: id } = keyRef(positionals[0], 'NS/ID');
    const token = await readToken(flags['token-file'], io, stdin);
    await printJson(io.stdout, await call(({ addresses: addresses(flags.addr, io), token }), 'GET', `/v1/policies/${seg(ns)}/${seg(id)}`));
    return EXIT_OK;
  },
});
