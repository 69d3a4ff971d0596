/** `keyward seal-server`: seal the key service (the keyholder wipes its keys; unsealing needs the shares again). */
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, readToken } from '../../lib/service.js';

export const sealServer = defineServiceCommand({
  name: 'seal-server',
  summary: 'seal the key service: the keyholder wipes the master key (admin token)',
  usage: ['[--addr URL] [--token-file FILE] [--json]'],
  flags: { ...TOKEN_FLAGS, json: { type: 'boolean', help: 'print the answer as JSON' } },
  details: `POST /v1/sys/seal with an admin token.\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('seal-server takes no positional arguments');
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await call(({ addresses: addresses(flags.addr, io), token }), 'POST', '/v1/sys/seal', {});
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, 'the key service is sealed\n');
    return EXIT_OK;
  },
});
