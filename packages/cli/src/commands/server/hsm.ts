/**
 * `keyward hsm verify-recovery`: submit one recovery share to a key service in
 * HSM-wrapped mode (docs/hsm.md §Recovery shares), sealed end to end to the
 * keyholder's per-boot key exactly as `keyward unseal` seals unseal shares.
 * At the threshold the keyholder rebuilds the recovery key, checks it against
 * the value recorded at init and wipes it: the quorum is proven, nothing opens.
 */
import { promises as fsp } from 'node:fs';
import { armor } from '@keyward/core';
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { readTextFile, writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { readShareText } from '../../lib/share.js';
import * as server from '../../lib/server-modules.js';
import { ADDR_FLAG, addresses, call, defineServiceCommand } from '../../lib/service.js';

interface RecoveryKey { recipient?: unknown; boot?: unknown }
interface Progress { received?: unknown; threshold?: unknown; verified?: unknown }

export const hsmVerifyRecovery = defineServiceCommand({
  name: 'verify-recovery',
  summary: 'submit a recovery share (HSM-wrapped mode); at the threshold the keyholder proves the quorum',
  usage: ['--share FILE [-i IDENTITY_FILE]... [--addr URL] [--json]'],
  flags: {
    share: { type: 'string', value: 'FILE', help: 'the recovery share file (share-N.txt), or one sealed to you (share-N.kw.txt, needs -i); "-" = stdin' },
    identity: { type: 'string', short: 'i', multiple: true, value: 'FILE', help: 'your identity file, to open a share sealed to you at init' },
    ...ADDR_FLAG,
    insecure: { type: 'boolean', help: 'allow plain http to a non-loopback address (the share stays sealed)' },
    json: { type: 'boolean', help: 'print { index, received, threshold, verified } as JSON' },
  },
  details: `
In HSM-wrapped mode the key service unseals itself from its HSM; the shares
made at init are recovery shares of a separate recovery key and open nothing
without the HSM. This command checks the share locally (format, checksum),
seals it to the keyholder's per-boot key (GET /v1/sys/recovery-key, context
purpose=unseal, boot=<boot id>) and posts it to /v1/sys/recovery-share. When
the threshold is reached the keyholder rebuilds the recovery key, compares
it with the check value recorded at init (constant time), wipes it and
answers verified: true — proof that a quorum of custodians holds valid
shares, e.g. before an HSM migration. Each attempt is audited
(sys.recovery_share). Against a server not in HSM mode: KW_HSM_NOT_CONFIGURED.`,
  examples: ['keyward hsm verify-recovery --share share-2.txt --addr https://kms.example.com'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('verify-recovery takes no positional arguments (use --share FILE)');
    if (flags.share === undefined) usageError('verify-recovery needs --share FILE');
    const text = await readShareText(flags.share, flags.identity, io, stdin);
    const { decodeShareFile, sealShareForBoot } = await server.serverModule();
    const share = decodeShareFile(text);
    const service = { addresses: addresses(flags.addr, io), token: null, insecure: flags.insecure };
    const key = await call<RecoveryKey>(service, 'GET', '/v1/sys/recovery-key');
    if (typeof key.recipient !== 'string' || typeof key.boot !== 'string') fail('KW_INTERNAL', 'the recovery-key response lacks recipient or boot');
    const sealed = armor(await sealShareForBoot(text, key.recipient, key.boot));
    const res = await call<Progress>(service, 'POST', '/v1/sys/recovery-share', { share: sealed });
    const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
    const out = { index: share.index, received: num(res.received), threshold: num(res.threshold), verified: res.verified === true };
    if (flags.json) await printJson(io.stdout, out);
    else {
      await writeAll(io.stdout, out.verified
        ? `recovery share ${share.index} accepted: quorum verified (${String(out.threshold)} valid recovery shares)\n`
        : `recovery share ${share.index} accepted: ${String(out.received)} of ${String(out.threshold)} received\n`);
    }
    return EXIT_OK;
  },
});

const HSM_PIN_ENV = 'KEYWARD_HSM_PIN';
const HSM_TO_PIN_ENV = 'KEYWARD_HSM_TO_PIN';

async function readPin(file: string | undefined, envName: string, env: Readonly<Record<string, string | undefined>>): Promise<string | undefined> {
  if (file === undefined) return env[envName] || undefined;
  try {
    return (await fsp.readFile(file, 'utf8')).replace(/\r?\n$/, '');
  } catch (e) {
    return fail('KW_IO', `cannot read the HSM PIN file '${file}'`, e);
  }
}

/**
 * `keyward hsm rewrap`: the HSM migration ceremony (docs/hsm.md §HSM
 * migration; the work is @keyward/server's hsmRewrap). Offline, on a stopped
 * service, authorised by a quorum of shares.
 */
export const hsmRewrap = defineServiceCommand({
  name: 'rewrap',
  summary: 'move the master key under a new wrapping key in another token/label/module (or from software custody into an HSM); service stopped, quorum of shares',
  usage: ['--data DIR --share FILE... [-i IDENTITY]... --to-token LABEL [--to-module PATH] [--to-pin-file FILE] [--hsm-pin-file FILE] [--to-key-label L] [--to-audit-key-label L] [--to-wrap-mechanism pad|kwp] [--store URL] [--json]',
    '--data DIR --share FILE... [-i IDENTITY]... --to-module PATH --to-token LABEL --to-pin-file FILE [--recovery-shares N --recovery-threshold K] [--share-recipients FILE] [--json]'],
  flags: {
    data: { type: 'string', value: 'DIR', help: 'the data directory (holds keyholder.json; or $KEYWARD_DATA)' },
    store: { type: 'string', value: 'URL', help: 'the PostgreSQL store, postgres://… (or $KEYWARD_STORE); default DIR/keyward.db' },
    share: { type: 'string', multiple: true, value: 'FILE', help: 'a recovery share (HSM-wrapped) or unseal share (software custody); once per custodian, up to the threshold' },
    identity: { type: 'string', short: 'i', multiple: true, value: 'FILE', help: "identity files, to open shares sealed to custodians (share-N.kw.txt)" },
    'hsm-pin-file': { type: 'string', value: 'FILE', help: `the CURRENT token's user PIN (or $${HSM_PIN_ENV})` },
    'to-module': { type: 'string', value: 'PATH', help: 'the target PKCS#11 module (default: the current one)' },
    'to-token': { type: 'string', value: 'LABEL', help: 'the target token label (may be the current token: a new key label)' },
    'to-pin-file': { type: 'string', value: 'FILE', help: `the target token's user PIN (or $${HSM_TO_PIN_ENV}; default the current PIN when the token is the same)` },
    'to-key-label': { type: 'string', value: 'L', help: 'label of the new wrapping key (default keyward-mk-<init id>-<8 hex>)' },
    'to-audit-key-label': { type: 'string', value: 'L', help: 'label of the new checkpoint key pair, when the audit key is in the HSM (default keyward-audit-<init id>-<8 hex>)' },
    'to-wrap-mechanism': { type: 'string', value: 'pad|kwp', help: 'RFC 5649 in the target token: pad = 0x210A (default), kwp = 0x210B' },
    'recovery-shares': { type: 'string', value: 'N', help: 'software → HSM: recovery shares to make (default: as many as the unseal shares)' },
    'recovery-threshold': { type: 'string', value: 'K', help: 'software → HSM: recovery threshold (default: the unseal threshold)' },
    'share-recipients': { type: 'string', value: 'FILE', help: 'software → HSM: seal recovery share i to the i-th Keyward recipient in FILE' },
    json: { type: 'boolean', help: 'print { dataDir, initId, from, to, backupFile, auditKey, recoveryShareFiles, threshold, warnings } as JSON' },
  },
  details: `
An offline ceremony, like keyward init: STOP THE SERVICE (every node) first;
a keyholder answering on DIR/keyholder.sock is error[KW_HSM_SERVICE_RUNNING].

HSM-wrapped deployment: a quorum of RECOVERY shares authorises it (checked
against the value recorded at init); the current token unwraps the master
key; a new non-extractable AES-256 key in the target token (another token,
another label in the same token, or another module) wraps it, and a round
trip checks it. If the audit checkpoint key is in the old HSM (it cannot
leave it), a new pair is generated in the target token and the last signed
checkpoint is signed by both keys: DIR/audit-key-rotation-<old>-<new>.txt.
audit-verifier-key.txt becomes the new key; the old one stays as
audit-verifier-key.<old id>.txt (old exports and checkpoints verify with it).
The recovery shares stay the same.

Software custody → HSM: a quorum of UNSEAL shares rebuilds the master key,
which is wrapped in the target token; new recovery shares (same init id) are
written to DIR/recovery-shares/ (sealed with --share-recipients). The old
unseal shares still rebuild the master key: destroy them.

Refused, with nothing changed, when the store holds HSM-resident keys
(error[KW_HSM_RESIDENT_KEYS]: they exist only in the current token; move
the token with the vendor's cloning instead). Atomic: the old keyholder.json
is kept as keyholder.json.before-rewrap-<time>, and the new one replaces it by
one rename; any failure before that destroys what was made in the target
token, so the old token and keyholder.json still open the store. Nothing is
deleted from the old token. PINs come from files or the environment, never
the command line.`,
  examples: [
    'keyward hsm rewrap --data /var/lib/keyward --share c1/share-1.kw.txt -i c1/custodian.key --share c2/share-2.kw.txt -i c2/custodian.key --hsm-pin-file old-pin --to-module /opt/vendor/lib/pkcs11.so --to-token keyward-2 --to-pin-file new-pin',
    'keyward hsm rewrap --data /var/lib/keyward --share share-1.txt --share share-3.txt --to-module /usr/lib/softhsm/libsofthsm2.so --to-token keyward --to-pin-file pin --json',
  ],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('rewrap takes no positional arguments');
    const data = flags.data ?? (io.env.KEYWARD_DATA || undefined);
    if (data === undefined) usageError('rewrap needs --data DIR (or $KEYWARD_DATA)');
    if (flags['to-token'] === undefined) usageError('rewrap needs --to-token LABEL');
    if (flags.share.length === 0) usageError('rewrap needs --share FILE, once per custodian up to the threshold');
    const store = flags.store ?? (io.env.KEYWARD_STORE || undefined);
    if (store !== undefined && !/^postgres(?:ql)?:\/\//.test(store)) usageError('--store must be a postgres:// or postgresql:// URL');
    const mech = flags['to-wrap-mechanism'] ?? 'pad';
    if (mech !== 'pad' && mech !== 'kwp') usageError('--to-wrap-mechanism is pad (0x210A) or kwp (0x210B)');
    const int = (v: string | undefined, name: string): number | undefined => {
      if (v === undefined) return undefined;
      if (!/^\d{1,3}$/.test(v)) usageError(`${name} must be a whole number`);
      return Number(v);
    };
    const n = int(flags['recovery-shares'], '--recovery-shares');
    const k = int(flags['recovery-threshold'], '--recovery-threshold');
    let recipients: string[] | undefined;
    if (flags['share-recipients'] !== undefined) {
      const text = await readTextFile(flags['share-recipients'], io, stdin, 'the share recipients file');
      recipients = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    }
    const { StateFile, STATE_FILE_NAME, hsmRewrap: rewrap } = await server.serverModule();
    const state = await new StateFile(`${data}/${STATE_FILE_NAME}`).read();
    if (state === null) usageError(`'${data}' holds no ${STATE_FILE_NAME}: not an initialized data directory`);
    const current = state.custody.hsm;
    const module = flags['to-module'] ?? current?.module;
    if (module === undefined) usageError('moving from software custody into an HSM needs --to-module PATH');
    const sourcePin = current ? await readPin(flags['hsm-pin-file'], HSM_PIN_ENV, io.env) : undefined;
    if (current && sourcePin === undefined) usageError(`the deployment is HSM-wrapped: give the current token's PIN with --hsm-pin-file FILE or $${HSM_PIN_ENV}`);
    if (!current && flags['hsm-pin-file'] !== undefined) usageError('--hsm-pin-file is the current token\'s PIN; this deployment is in software custody (give --to-pin-file)');
    let pin = await readPin(flags['to-pin-file'], HSM_TO_PIN_ENV, io.env);
    if (pin === undefined && current && current.module === module && current.tokenLabel === flags['to-token']) pin = sourcePin;
    if (pin === undefined) usageError(`the target token's PIN is needed: --to-pin-file FILE or $${HSM_TO_PIN_ENV}`);
    const shares: string[] = [];
    for (const f of flags.share) shares.push(await readShareText(f, flags.identity, io, stdin));
    const r = await rewrap({
      dataDir: data, shares,
      ...(store !== undefined ? { store } : {}),
      ...(sourcePin !== undefined ? { sourcePin } : {}),
      target: {
        module, tokenLabel: flags['to-token'], pin, wrapMechanism: mech,
        ...(flags['to-key-label'] !== undefined ? { keyLabel: flags['to-key-label'] } : {}),
        ...(flags['to-audit-key-label'] !== undefined ? { auditKeyLabel: flags['to-audit-key-label'] } : {}),
      },
      ...(n !== undefined ? { recoveryShares: n } : {}),
      ...(k !== undefined ? { recoveryThreshold: k } : {}),
      ...(recipients !== undefined ? { shareRecipients: recipients } : {}),
    });
    if (flags.json) {
      await printJson(io.stdout, r);
      return EXIT_OK;
    }
    const lines = [
      `Rewrapped ${r.dataDir} (init ${r.initId}): the master key is now wrapped by '${r.to.keyLabel}' in token '${r.to.tokenLabel}' (${r.to.module}).`,
      `Previous keyholder.json kept as ${r.backupFile}. Nothing was deleted from ${r.from.custody === 'software' ? 'the old shares' : `token '${r.from.tokenLabel ?? ''}' (old key '${r.from.keyLabel ?? ''}')`}.`,
      ...(r.auditKey ? [`Audit checkpoint key moved to '${r.to.auditKeyLabel ?? ''}': new verifier key ${r.auditKey.newVerifierKey} (audit-verifier-key.txt); the old one is in ${r.auditKey.oldVerifierKeyFile}${r.auditKey.rotationCheckpointFile ? `; rotation checkpoint (signed by both) in ${r.auditKey.rotationCheckpointFile}` : ''}.`] : []),
      ...(r.recoveryShareFiles ? ['New RECOVERY shares (hand each to its custodian; the old unseal shares still rebuild the master key: destroy them):', ...r.recoveryShareFiles.map((s) => `  share ${s.index}: ${s.file}${s.recipient ? ` (sealed to ${s.recipient})` : ''}`)] : []),
      ...r.warnings.map((w) => `warning: ${w}`),
      'Next: start the service with the target PIN (keyward server --hsm-pin-file FILE); keyward status shows hsm: available.',
    ];
    await writeAll(io.stderr, lines.join('\n') + '\n');
    return EXIT_OK;
  },
});
