/** `keyward audit verify`: check an audit export offline with the log's public key. */
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { readTextFile, writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import * as server from '../../lib/server-modules.js';
import { defineServiceCommand } from '../../lib/service.js';
import { KeywardError, type KeywardErrorCode } from '@keyward/core';

export const auditVerify = defineServiceCommand({
  name: 'verify',
  summary: 'verify an audit export offline (no service needed)',
  usage: ['--export FILE --key VKEY|FILE [--checkpoint FILE] [--json]'],
  flags: {
    export: { type: 'string', value: 'FILE', help: 'the export to check ("-" = stdin)' },
    key: { type: 'string', value: 'VKEY', help: "the log's public key (C2SP verifier key NAME+ID+BASE64), or a file holding it (init writes audit-verifier-key.txt)" },
    checkpoint: { type: 'string', value: 'FILE', help: 'a signed checkpoint of the same log saved earlier: the export must extend it' },
    json: { type: 'boolean', help: 'print { ok, size, root, from, to, events, problems } as JSON (also on failure)' },
  },
  details: `
Checks every event against the signed checkpoint of the export (hash chain,
Merkle root, signature by the log key) and, with --checkpoint, that history
was not rewritten since that earlier checkpoint. Exit 0 when the export is
good; otherwise exit 1 with error[AUDIT_…] naming the first problem
(AUDIT_MODIFIED, AUDIT_DELETED, AUDIT_TRUNCATED, AUDIT_BAD_CHECKPOINT, …);
--json lists every problem.`,
  examples: ['keyward audit verify --export audit.jsonl --key /var/lib/keyward/audit-verifier-key.txt'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('audit verify takes no positional arguments (use --export FILE)');
    if (flags.export === undefined) usageError('audit verify needs --export FILE');
    if (flags.key === undefined) usageError("audit verify needs --key: the log's public key or a file holding it");
    const key = /^[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(flags.key.trim())
      ? flags.key.trim()
      : (await readTextFile(flags.key, io, stdin, 'the verifier key file')).split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#')) ?? '';
    const text = await readTextFile(flags.export, io, stdin, 'the audit export');
    const saved = flags.checkpoint === undefined ? undefined : await readTextFile(flags.checkpoint, io, stdin, 'the saved checkpoint');
    const { verifyExport } = await server.audit();
    const r = verifyExport(text, { verifierKey: key, ...(saved !== undefined ? { savedCheckpoint: saved } : {}) });
    if (flags.json) {
      await printJson(io.stdout, { ok: r.ok, size: r.size, root: r.root, from: r.from, to: r.to, events: r.events.length, problems: r.problems, problemsOmitted: r.problemsOmitted });
    } else if (r.ok) {
      await writeAll(io.stdout, `audit export OK: events [${r.from}, ${r.to}) of a log of ${r.size}, root ${r.root}\n`);
    }
    if (!r.ok) {
      const first = r.problems[0];
      const more = r.problems.length + r.problemsOmitted - 1;
      throw new KeywardError((first?.code ?? 'AUDIT_MALFORMED') as KeywardErrorCode,
        `${first?.index === null || first === undefined ? '' : `event ${first.index}: `}${first?.message ?? 'the export does not verify'}${more > 0 ? ` (and ${more} more problem(s); --json lists them)` : ''}`);
    }
    return EXIT_OK;
  },
});
