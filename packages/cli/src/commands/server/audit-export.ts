/** `keyward audit export`: the audit log as a JSON Lines export that `audit verify` checks offline. */
import { parseCheckpoint, parseNote } from '@keyward/tlog';
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { checkOutputPath, isStdStream, writeAll, writeFileAtomic } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import * as server from '../../lib/server-modules.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, readToken } from '../../lib/service.js';

const PAGE = 1000;

export const auditExport = defineServiceCommand({
  name: 'export',
  summary: 'export the audit log (up to its latest signed checkpoint) as JSON Lines',
  usage: ['[-o FILE] [--json]'],
  flags: {
    output: { type: 'string', short: 'o', value: 'FILE', help: 'write the export to FILE (default stdout)' },
    ...TOKEN_FLAGS,
    json: { type: 'boolean', help: 'print { output, origin, size } as JSON (needs -o)' },
  },
  details: `
GET /v1/audit/checkpoint, then GET /v1/audit/events?from&to in pages of ${PAGE}.
The export (docs/audit.md) is a canonical JSON header carrying the signed
checkpoint, then one canonical JSON event per line; "keyward audit verify"
checks it offline with the log's public key.
${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('audit export takes no positional arguments');
    const out = isStdStream(flags.output) ? null : flags.output;
    if (flags.json && out === null) usageError('--json needs -o FILE (stdout carries the export)');
    if (out !== null) await checkOutputPath(out);
    const { canonicalJson, fullExportHeaderLine } = await server.audit();
    const token = await readToken(flags['token-file'], io, stdin);
    const service = { addresses: addresses(flags.addr, io), token };
    const { note } = await call<{ note?: unknown }>(service, 'GET', '/v1/audit/checkpoint');
    if (typeof note !== 'string') fail('KW_INTERNAL', 'the checkpoint answer carries no note');
    let cp;
    try {
      cp = parseCheckpoint(parseNote(note).text);
    } catch (e) {
      fail('KW_INTERNAL', `the service's checkpoint is not a signed checkpoint note: ${(e as Error).message}`, e);
    }
    const lines: string[] = [fullExportHeaderLine(note)];
    for (let from = 0; from < cp.size;) {
      const to = Math.min(cp.size, from + PAGE);
      const res = await call<Record<string, unknown> | unknown[]>(service, 'GET', `/v1/audit/events?from=${from}&to=${to}`);
      const items = Array.isArray(res) ? res : Array.isArray((res as { events?: unknown }).events) ? (res as { events: unknown[] }).events : null;
      if (items === null) fail('KW_INTERNAL', 'the events answer is not a list of events');
      if (items.length === 0) break; // the verifier reports what is missing
      for (const item of items) lines.push(eventLine(item, canonicalJson) + '\n');
      from += items.length;
    }
    const text = lines.join('');
    if (out === null) await writeAll(io.stdout, text);
    else await writeFileAtomic(out, text);
    if (flags.json) await printJson(io.stdout, { output: out, origin: cp.origin, size: cp.size, events: lines.length - 1 });
    return EXIT_OK;
  },
});

/** An event as its stored canonical JSON line: a string is taken verbatim, an object is canonicalized. */
function eventLine(item: unknown, canonicalJson: (v: never) => string): string {
  const inner = item !== null && typeof item === 'object' && !Array.isArray(item) && 'event' in item ? item.event : item;
  if (typeof inner === 'string') return inner;
  return canonicalJson(inner as never);
}
