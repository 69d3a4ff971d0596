/** `keyward keys show NS/NAME`: a key and its versions. */
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, keyRef, readToken, seg } from '../../lib/service.js';

export const keysShow = defineServiceCommand({
  name: 'show',
  summary: 'show a key and its versions',
  usage: ['NS/NAME [--json]'],
  flags: { ...TOKEN_FLAGS, json: { type: 'boolean', help: 'print the service answer as JSON (the text form is the same JSON)' } },
  details: `GET /v1/keys/{ns}/{name} (admin token).\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1) usageError('keys show takes one NS/NAME');
    const { ns, name } = keyRef(positionals[0]);
    const token = await readToken(flags['token-file'], io, stdin);
    await printJson(io.stdout, await call(({ addresses: addresses(flags.addr, io), token }), 'GET', `/v1/keys/${seg(ns)}/${seg(name)}`));
    return EXIT_OK;
  },
});
