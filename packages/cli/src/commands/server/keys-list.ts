/** `keyward keys list NS`: the keys of a namespace. */
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, readToken, seg } from '../../lib/service.js';

export const keysList = defineServiceCommand({
  name: 'list',
  summary: 'list the keys of a namespace',
  usage: ['NS [--json]'],
  flags: { ...TOKEN_FLAGS, json: { type: 'boolean', help: 'print the service answer as JSON' } },
  details: `GET /v1/keys/{ns} (admin token). Text output: one "ns/name" per line.\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1 || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(positionals[0]!)) usageError('keys list takes one namespace NS');
    const ns = positionals[0]!;
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await call<Record<string, unknown> | unknown[]>(({ addresses: addresses(flags.addr, io), token }), 'GET', `/v1/keys/${seg(ns)}`);
    if (flags.json) {
      await printJson(io.stdout, res);
      return EXIT_OK;
    }
    const items = Array.isArray(res) ? res : Array.isArray((res as { keys?: unknown }).keys) ? (res as { keys: unknown[] }).keys : [];
    const names = items.map((k) => {
      const n = typeof k === 'string' ? k : (k as { name?: unknown }).name;
      return typeof n === 'string' ? n : JSON.stringify(k);
    });
    await writeAll(io.stdout, names.map((n) => (n.includes('/') ? n : `${ns}/${n}`) + '\n').join(''));
    return EXIT_OK;
  },
});
