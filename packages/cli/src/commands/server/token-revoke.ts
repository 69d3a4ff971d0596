/** `keyward token revoke ID`: revoke a bearer token by its id. */
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, readToken, seg } from '../../lib/service.js';

export const tokenRevoke = defineServiceCommand({
  name: 'revoke',
  summary: 'revoke a bearer token (by id, never by value)',
  usage: ['TOKEN_ID [--json]'],
  flags: { ...TOKEN_FLAGS, json: { type: 'boolean', help: 'print the service answer as JSON' } },
  details: `DELETE /v1/tokens/{id} with an admin token.\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1 || !/^[\x21-\x7e]{1,128}$/.test(positionals[0]!)) usageError('token revoke takes one TOKEN_ID');
    if (positionals[0]!.startsWith('kw_')) usageError('give the token id, not the token itself (a token never goes on the command line)');
    const id = positionals[0]!;
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await call(({ addresses: addresses(flags.addr, io), token }), 'DELETE', `/v1/tokens/${seg(id)}`);
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `token ${id} revoked\n`);
    return EXIT_OK;
  },
});
