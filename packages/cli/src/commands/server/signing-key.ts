/**
 * `keyward signing-key list|revoke`: the request-signing (device) keys that
 * `keyward login` registers. A principal lists and revokes its own (a lost
 * device); an administrator those of anyone.
 */
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, readToken, seg } from '../../lib/service.js';

const ID_RE = /^[\x21-\x7e]{1,255}$/;

interface KeyView { key_id: string; principal: string; alg: string; created: string; revoked_at: string | null }

export const signingKeyList = defineServiceCommand({
  name: 'list',
  summary: "list request-signing keys: the token's principal's, or (admin) another's",
  usage: ['[--principal ID] [--json]'],
  flags: {
    principal: { type: 'string', value: 'ID', help: "another principal's keys (admin token)" },
    ...TOKEN_FLAGS,
    json: { type: 'boolean', help: 'print the service answer as JSON' },
  },
  details: `GET /v1/auth/signing-keys[?principal=ID].\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('signing-key list takes no positional arguments');
    if (flags.principal !== undefined && !ID_RE.test(flags.principal)) usageError('--principal must be printable ASCII without spaces');
    const token = await readToken(flags['token-file'], io, stdin);
    const query = flags.principal !== undefined ? `?principal=${encodeURIComponent(flags.principal)}` : '';
    const res = await call<{ signing_keys: KeyView[] }>({ addresses: addresses(flags.addr, io), token }, 'GET', `/v1/auth/signing-keys${query}`);
    if (flags.json) await printJson(io.stdout, res);
    else {
      const lines = res.signing_keys.map((k) => `${k.key_id}\t${k.principal}\t${k.alg}\t${k.created}\t${k.revoked_at ? `revoked ${k.revoked_at}` : 'active'}`);
      await writeAll(io.stdout, lines.length ? `${lines.join('\n')}\n` : '');
    }
    return EXIT_OK;
  },
});

export const signingKeyRevoke = defineServiceCommand({
  name: 'revoke',
  summary: 'revoke a request-signing key (your own; any with an admin token)',
  usage: ['KEY_ID [--json]'],
  flags: { ...TOKEN_FLAGS, json: { type: 'boolean', help: 'print the service answer as JSON' } },
  details: `DELETE /v1/auth/signing-keys/{key_id}. The key signs no data-plane request
after this; the profile that holds it must "keyward login --force" again.\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1 || !ID_RE.test(positionals[0]!)) usageError('signing-key revoke takes one KEY_ID');
    const id = positionals[0]!;
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await call<KeyView>({ addresses: addresses(flags.addr, io), token }, 'DELETE', `/v1/auth/signing-keys/${seg(id)}`);
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `signing key ${id} of ${res.principal} revoked\n`);
    return EXIT_OK;
  },
});
