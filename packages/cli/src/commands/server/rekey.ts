/**
 * `keyward rekey start|submit|status|cancel` (docs/key-service-crypto.md §Rekey;
 * docs/operations/lost-shares.md): unseal-share rotation on a running,
 * unsealed key service. An administrator starts it (with --step-up once MFA
 * is enforced), naming the new number of shares, threshold and custodians;
 * custodians submit their CURRENT shares sealed end to end to the attempt's
 * key (like `keyward unseal`); the submission that completes it writes the new
 * shares, each sealed to its custodian, to --out DIR.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { armor } from '@keyward/core';
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { readTextFile, writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { readShareText } from '../../lib/share.js';
import * as server from '../../lib/server-modules.js';
import { ADDR_FLAG, TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, readToken } from '../../lib/service.js';
import { STEP_UP_DETAILS, STEP_UP_FLAGS, callWithStepUp } from '../../lib/step-up.js';
import { intFlag } from './init.js';

interface SealedShare { index: number; recipient: string; armored: string }
interface Attempt {
  id: string; recipient: string; mode: string; shares: number; threshold: number;
  progress: { received: number; required: number }; started_at: string; expires_at: string;
  completed: { generation: number; share_hashes: string[]; sealed_shares: SealedShare[] } | null;
}

const JSON_FLAG = { json: { type: 'boolean', help: 'print the service answer as JSON' } } as const;
const OUT_FLAG = { out: { type: 'string', value: 'DIR', help: 'where the new shares are written, share-N.kw.txt (created 0700; existing files are never overwritten)' } } as const;

/** Writes the sealed shares to DIR (0600 each, never overwriting); the paths written. */
async function writeShares(dir: string, shares: readonly SealedShare[]): Promise<string[]> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const out: string[] = [];
  for (const s of shares) {
    const file = path.join(dir, `share-${s.index}.kw.txt`);
    try {
      await fsp.writeFile(file, s.armored.endsWith('\n') ? s.armored : `${s.armored}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') fail('KW_IO', `'${file}' exists: give another --out DIR (the new shares are still shown by "keyward rekey status --out DIR")`, e);
      throw e;
    }
    out.push(file);
  }
  return out;
}

function describe(a: Attempt): string {
  const head = `rekey ${a.id} (${a.mode}): new set ${a.threshold} of ${a.shares}; `;
  if (a.completed) return `${head}complete, generation ${a.completed.generation}\n`;
  return `${head}${a.progress.received} of ${a.progress.required} current shares received; expires ${a.expires_at}\n`;
}

export const rekeyStart = defineServiceCommand({
  name: 'start',
  summary: 'start a rekey: new shares for the same master key, each sealed to a custodian (admin; step-up)',
  usage: ['--shares N --threshold K --share-recipients FILE [--ttl SECONDS] [--step-up [--totp-code-file FILE]] [--json]'],
  flags: {
    shares: { type: 'string', value: 'N', help: 'the number of new shares, 2..255' },
    threshold: { type: 'string', value: 'K', help: 'new shares needed to unseal, 2..N' },
    'share-recipients': { type: 'string', value: 'FILE', help: 'one Keyward recipient per new share, in order (one per line, # comments): share i is sealed to line i' },
    ttl: { type: 'string', value: 'SECONDS', help: 'how long the attempt waits for the current shares (60..86400, default 3600)' },
    ...TOKEN_FLAGS,
    ...STEP_UP_FLAGS,
    ...JSON_FLAG,
  },
  details: `POST /v1/sys/rekey (admin token). Starts ONE attempt; custodians then submit their
current shares with "keyward rekey submit". At the current threshold the
keyholder re-splits the same master key (HSM-wrapped mode: makes a new
recovery key) and seals each new share to its recipient inside the keyholder;
from then on the old shares are refused. The master key itself does not
change: custodians must destroy their old shares.
${TOKEN_DETAILS}
${STEP_UP_DETAILS}`,
  examples: ['keyward rekey start --shares 5 --threshold 3 --share-recipients new-custodians.txt --step-up'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('rekey start takes no positional arguments');
    if (flags.shares === undefined || flags.threshold === undefined || flags['share-recipients'] === undefined) usageError('rekey start needs --shares N --threshold K --share-recipients FILE');
    const shares = intFlag(flags.shares, '--shares', 0);
    const threshold = intFlag(flags.threshold, '--threshold', 0);
    if (shares < 2 || shares > 255) usageError('--shares must be from 2 to 255');
    if (threshold < 2 || threshold > shares) usageError(`--threshold must be from 2 to the number of shares (${shares})`);
    const text = await readTextFile(flags['share-recipients'], io, stdin, 'the share recipients file');
    const recipients = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    if (recipients.length !== shares) usageError(`--share-recipients lists ${recipients.length} recipients for ${shares} shares: give one per share`);
    const ttl = flags.ttl === undefined ? undefined : intFlag(flags.ttl, '--ttl', 3600);
    if (ttl !== undefined && (ttl < 60 || ttl > 86_400)) usageError('--ttl must be from 60 to 86400 seconds');
    const token = await readToken(flags['token-file'], io, stdin);
    const body = { shares, threshold, recipients, ...(ttl !== undefined ? { ttl_seconds: ttl } : {}) };
    const a = await callWithStepUp<Attempt>({ addresses: addresses(flags.addr, io), token }, flags, io, stdin, 'POST', '/v1/sys/rekey', body);
    if (flags.json) await printJson(io.stdout, a);
    else await writeAll(io.stdout, `${describe(a)}custodians: keyward rekey submit --share FILE [-i KEY] (${a.progress.required} needed)\n`);
    return EXIT_OK;
  },
});

export const rekeySubmit = defineServiceCommand({
  name: 'submit',
  summary: "submit your CURRENT share to the rekey in progress (sealed to the attempt's key); the last one writes the new shares",
  usage: ['--share FILE [-i IDENTITY_FILE]... [--out DIR] [--addr URL] [--json]'],
  flags: {
    share: { type: 'string', value: 'FILE', help: 'your current share file (share-N.txt), or one sealed to you (share-N.kw.txt, needs -i); "-" = stdin' },
    identity: { type: 'string', short: 'i', multiple: true, value: 'FILE', help: 'your identity file, to open a share sealed to you' },
    ...OUT_FLAG,
    ...ADDR_FLAG,
    ...JSON_FLAG,
  },
  details: `
Like "keyward unseal": the share is checked locally (format, checksum), then
sealed to the rekey attempt's own key (GET /v1/sys/rekey/key) with the context
purpose=rekey, boot=<attempt id>, and posted to /v1/sys/rekey/share: neither
the API process nor a TLS terminator sees it. No token is needed: the shares
are the authority. The submission that reaches the threshold gets the new
shares, each sealed to its custodian, and writes them to --out DIR (default
the current directory) as share-N.kw.txt.`,
  examples: ['keyward rekey submit --share share-2.kw.txt -i ~/custodian.key', 'keyward rekey submit --share share-3.kw.txt -i ~/custodian.key --out new-shares'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('rekey submit takes no positional arguments (use --share FILE)');
    if (flags.share === undefined) usageError('rekey submit needs --share FILE');
    const text = await readShareText(flags.share, flags.identity, io, stdin);
    const { decodeShareFile, sealShareForBoot } = await server.unsealKey();
    const share = decodeShareFile(text);
    const service = { addresses: addresses(flags.addr, io), token: null };
    const key = await call<{ id?: unknown; recipient?: unknown }>(service, 'GET', '/v1/sys/rekey/key');
    if (typeof key.id !== 'string' || typeof key.recipient !== 'string') fail('KW_INTERNAL', 'the rekey key response lacks id or recipient');
    const sealed = armor(await sealShareForBoot(text, key.recipient, key.id, 'rekey'));
    const r = await call<{ id: string; index: number; progress: { received: number; required: number }; complete: boolean; completed: { generation: number; shares: number; threshold: number; share_hashes: string[]; sealed_shares: SealedShare[] } | null }>(
      service, 'POST', '/v1/sys/rekey/share', { id: key.id, share: sealed });
    let files: string[] = [];
    if (r.completed) files = await writeShares(flags.out ?? '.', r.completed.sealed_shares);
    if (flags.json) {
      await printJson(io.stdout, { id: r.id, index: share.index, received: r.progress.received, required: r.progress.required, complete: r.complete, ...(r.completed ? { generation: r.completed.generation, shares: r.completed.shares, threshold: r.completed.threshold, share_hashes: r.completed.share_hashes, files } : {}) });
    } else if (r.completed) {
      await writeAll(io.stdout, `share ${share.index} accepted: rekey complete (generation ${r.completed.generation}, ${r.completed.threshold} of ${r.completed.shares}); new shares:\n${files.map((f) => `  ${f}\n`).join('')}hand each to its custodian; every old share is now refused and must be destroyed\n`);
    } else {
      await writeAll(io.stdout, `share ${share.index} accepted: ${r.progress.received} of ${r.progress.required} current shares received\n`);
    }
    return EXIT_OK;
  },
});

export const rekeyStatus = defineServiceCommand({
  name: 'status',
  summary: 'show the rekey attempt (progress, expiry); once complete, write its new sealed shares with --out (admin)',
  usage: ['[--out DIR] [--json]'],
  flags: { ...OUT_FLAG, ...TOKEN_FLAGS, ...JSON_FLAG },
  details: `GET /v1/sys/rekey (admin token). Never shows share material: the new shares
of a completed attempt are envelopes sealed to their custodians, kept until
"keyward rekey cancel" acknowledges them or the attempt expires.
${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('rekey status takes no positional arguments');
    const token = await readToken(flags['token-file'], io, stdin);
    const st = await call<{ generation: number; rekey: Attempt | null }>({ addresses: addresses(flags.addr, io), token }, 'GET', '/v1/sys/rekey');
    let files: string[] = [];
    if (flags.out !== undefined) {
      if (!st.rekey?.completed) fail('KW_INVALID_ARGUMENT', 'no completed rekey holds new shares to write (--out is for a completed attempt)');
      files = await writeShares(flags.out, st.rekey.completed.sealed_shares);
    }
    if (flags.json) await printJson(io.stdout, { ...st, ...(flags.out !== undefined ? { files } : {}) });
    else await writeAll(io.stdout, `${st.rekey ? describe(st.rekey) : 'no rekey in progress\n'}share generation: ${st.generation}\n${files.map((f) => `  ${f}\n`).join('')}`);
    return EXIT_OK;
  },
});

export const rekeyCancel = defineServiceCommand({
  name: 'cancel',
  summary: 'cancel the rekey in progress (the shares received are forgotten), or acknowledge a completed one (admin)',
  usage: ['[--json]'],
  flags: { ...TOKEN_FLAGS, ...JSON_FLAG },
  details: `DELETE /v1/sys/rekey (admin token). A cancelled rekey changes nothing: the
current shares stay valid. On a completed rekey it drops the copy of the new
sealed shares the service kept for "keyward rekey status --out".
${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('rekey cancel takes no positional arguments');
    const token = await readToken(flags['token-file'], io, stdin);
    const r = await call<{ id: string; completed: boolean }>({ addresses: addresses(flags.addr, io), token }, 'DELETE', '/v1/sys/rekey');
    if (flags.json) await printJson(io.stdout, r);
    else await writeAll(io.stdout, r.completed ? `rekey ${r.id}: completed attempt acknowledged\n` : `rekey ${r.id} cancelled: the current shares stay valid\n`);
    return EXIT_OK;
  },
});
