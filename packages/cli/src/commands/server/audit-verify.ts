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
  usage: ['--export FILE... --key VKEY|FILE [--checkpoint FILE] [--json]'],
  flags: {
    export: { type: 'string', value: 'FILE', multiple: true, help: 'the export to check ("-" = stdin); repeat it for shipped files (oldest first): their segments must chain' },
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
--json lists every problem.

Shipped audit (keyward server --audit-ship) is a sequence of segments, each
a partial export with its own signed checkpoint. Give the shipped files
oldest first (audit.jsonl.3 audit.jsonl.2 audit.jsonl.1 audit.jsonl): every
segment must verify, each must start where the previous one ended, and a
newer checkpoint must extend the previous one.`,
  examples: [
    'keyward audit verify --export audit.jsonl --key /var/lib/keyward/audit-verifier-key.txt',
    'keyward audit verify --export shipped.jsonl.1 --export shipped.jsonl --key audit-verifier-key.txt',
  ],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('audit verify takes no positional arguments (use --export FILE)');
    if (flags.export.length === 0) usageError('audit verify needs --export FILE');
    if (flags.key === undefined) usageError("audit verify needs --key: the log's public key or a file holding it");
    const key = /^[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(flags.key.trim())
      ? flags.key.trim()
      : (await readTextFile(flags.key, io, stdin, 'the verifier key file')).split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#')) ?? '';
    let text = '';
    for (const f of flags.export) text += await readTextFile(f, io, stdin, 'the audit export');
    const saved = flags.checkpoint === undefined ? undefined : await readTextFile(flags.checkpoint, io, stdin, 'the saved checkpoint');
    const { verifyExport, verifySegments, splitSegments } = await server.audit();
    const options = { verifierKey: key, ...(saved !== undefined ? { savedCheckpoint: saved } : {}) };
    if (splitSegments(text).length > 1) {
      const r = verifySegments(text, options);
      const problems = [
        ...r.segments.flatMap((s, i) => s.problems.map((p) => ({ segment: i, ...p }))),
        ...r.problems.map((p) => ({ segment: p.segment, code: p.code, index: null, message: p.message })),
      ];
      if (flags.json) await printJson(io.stdout, { ok: r.ok, segments: r.segments.length, from: r.from, to: r.to, problems });
      else if (r.ok) await writeAll(io.stdout, `audit segments OK: ${r.segments.length} segments chain over events [${r.from}, ${r.to})\n`);
      if (!r.ok) {
        const first = problems[0];
        throw new KeywardError((first?.code ?? 'AUDIT_MALFORMED') as KeywardErrorCode, `segment ${first?.segment ?? 0}: ${first?.message ?? 'the segments do not verify'}${problems.length > 1 ? ` (and ${problems.length - 1} more problem(s); --json lists them)` : ''}`);
      }
      return EXIT_OK;
    }
    const r = verifyExport(text, options);
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
