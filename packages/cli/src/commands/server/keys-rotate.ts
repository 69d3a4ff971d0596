/** `keyward keys rotate NS/NAME`: a new primary version. */
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, keyRef, readToken, seg } from '../../lib/service.js';

export const keysRotate = defineServiceCommand({
  name: 'rotate',
  summary: 'rotate a key: a new version becomes the one used for new data',
  usage: ['NS/NAME [--json]'],
  flags: { ...TOKEN_FLAGS, json: { type: 'boolean', help: 'print the service answer as JSON' } },
  details: `POST /v1/keys/{ns}/{name}/rotate (admin token). Not retried on another address after an unknown outcome.\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1) usageError('keys rotate takes one NS/NAME');
    const { ns, name } = keyRef(positionals[0]);
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await call<Record<string, unknown>>(({ addresses: addresses(flags.addr, io), token }), 'POST', `/v1/keys/${seg(ns)}/${seg(name)}/rotate`, {});
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `rotated ${ns}/${name}${typeof res.version === 'number' ? `: version ${res.version}` : ''}\n`);
    return EXIT_OK;
  },
});
