/** `keyward policy put NS/ID --file FILE`: store a policy (a new version). */
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { readTextFile, writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, defineServiceCommand, keyRef, readToken, seg } from '../../lib/service.js';
import { STEP_UP_DETAILS, STEP_UP_FLAGS, callWithStepUp } from '../../lib/step-up.js';

export const policyPut = defineServiceCommand({
  name: 'put',
  summary: 'store a policy document (JSON) as the new version of NS/ID',
  usage: ['NS/ID --file FILE [--step-up [--totp-code-file FILE]] [--json]'],
  flags: {
    file: { type: 'string', short: 'f', value: 'FILE', help: 'the policy document, JSON ("-" = stdin; then give the token with --token-file or the environment)' },
    ...TOKEN_FLAGS,
    ...STEP_UP_FLAGS,
    json: { type: 'boolean', help: 'print the service answer as JSON' },
  },
  details: `PUT /v1/policies/{ns}/{id} with the document as body (admin token).\n${TOKEN_DETAILS}\n${STEP_UP_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1) usageError('policy put takes one NS/ID');
    const { ns, name: id } = keyRef(positionals[0], 'NS/ID');
    if (flags.file === undefined) usageError('policy put needs --file FILE');
    const text = await readTextFile(flags.file, io, stdin, 'the policy document');
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      fail('KW_INVALID_ARGUMENT', `'${flags.file}' is not JSON`);
    }
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await callWithStepUp(({ addresses: addresses(flags.addr, io), token }), flags, io, stdin, 'PUT', `/v1/policies/${seg(ns)}/${seg(id)}`, doc);
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `policy ${ns}/${id} stored\n`);
    return EXIT_OK;
  },
});
