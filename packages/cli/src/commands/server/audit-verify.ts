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
  usage: ['--export FILE... --key VKEY|FILE [--checkpoint FILE] [--witness VKEY|FILE... [--witnesses-k K]] [--previous-key VKEY|FILE...] [--json]'],
  flags: {
    export: { type: 'string', value: 'FILE', multiple: true, help: 'the export to check ("-" = stdin); repeat it for shipped files (oldest first): their segments must chain' },
    key: { type: 'string', value: 'VKEY', help: "the log's public key (C2SP verifier key NAME+ID+BASE64), or a file holding it (init writes audit-verifier-key.txt)" },
    checkpoint: { type: 'string', value: 'FILE', help: 'a signed checkpoint of the same log saved earlier: the export must extend it' },
    witness: { type: 'string', value: 'VKEY|FILE', multiple: true, help: "a witness's cosignature verifier key (NAME+ID+BASE64, type 0x04), or a file holding one per line: the checkpoint must be cosigned by --witnesses-k of them" },
    'witnesses-k': { type: 'string', value: 'K', help: 'how many of the --witness keys must have cosigned (default: all)' },
    'previous-key': { type: 'string', value: 'VKEY|FILE', multiple: true, help: 'an earlier checkpoint key of this log, replaced by keyward hsm rewrap (audit-verifier-key.<id>.txt): governance snapshots it signed before the rotation are accepted too' },
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
newer checkpoint must extend the previous one.

Witnesses (docs/witness.md): with --witness, the export's checkpoint counts
only when at least --witnesses-k of those witnesses validly cosigned it
(keyward server with "witnesses" serves and exports such checkpoints);
otherwise error[AUDIT_NOT_WITNESSED].`,
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
    const witnessKeys: string[] = [];
    for (const w of flags.witness) {
      if (/^[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(w.trim())) witnessKeys.push(w.trim());
      else witnessKeys.push(...(await readTextFile(w, io, stdin, 'the witness key file')).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')));
    }
    if (flags['witnesses-k'] !== undefined && witnessKeys.length === 0) usageError('--witnesses-k goes with --witness');
    const k = flags['witnesses-k'] === undefined ? witnessKeys.length : Number(flags['witnesses-k']);
    if (witnessKeys.length > 0 && (!/^\d{1,2}$/.test(flags['witnesses-k'] ?? String(k)) || k < 1 || k > witnessKeys.length)) usageError(`--witnesses-k must be an integer from 1 to ${witnessKeys.length}`);
    let text = '';
    for (const f of flags.export) text += await readTextFile(f, io, stdin, 'the audit export');
    const saved = flags.checkpoint === undefined ? undefined : await readTextFile(flags.checkpoint, io, stdin, 'the saved checkpoint');
    const { verifyExport, verifySegments, splitSegments } = await server.audit();
    const options = { verifierKey: key, ...(saved !== undefined ? { savedCheckpoint: saved } : {}), ...(witnessKeys.length > 0 ? { witnesses: { keys: witnessKeys, k } } : {}) };
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
    const { verifyApprovals } = await server.audit();
    const intact = verifyExport(text, options);
    // Quorum approvals and signed governance snapshots, checked cryptographically (docs/mfa.md §Offline verification).
    const previous: string[] = [];
    for (const p of flags['previous-key']) {
      previous.push(/^[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(p.trim()) ? p.trim()
        : (await readTextFile(p, io, stdin, 'the previous verifier key file')).split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#')) ?? '');
    }
    if (previous.some((p) => !/^[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(p))) usageError('--previous-key must be a verifier key (NAME+ID+BASE64) or a file holding one');
    const extra = intact.ok ? await verifyApprovals(intact.events, { verifierKey: key, previousVerifierKeys: previous }) : [];
    const r = { ...intact, ok: intact.ok && extra.length === 0, problems: [...intact.problems, ...extra] };
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
