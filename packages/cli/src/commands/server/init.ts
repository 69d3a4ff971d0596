/** `keyward init`: a new data directory — store, keyholder state, master key split into unseal shares, initial admin token. */
import { defineCommand } from '../../lib/command.js';
import { promises as fsp } from 'node:fs';
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { readTextFile, writeAll } from '../../lib/io.js';
import { INIT_TOKEN_TTL_HOURS, TOKEN_FILE, VERIFIER_KEY_FILE, initDataDir } from '../../lib/init.js';
import { printJson } from '../../lib/output.js';
import { serviceError } from '../../lib/service.js';

export const HSM_PIN_ENV = 'KEYWARD_HSM_PIN';

export const init = defineCommand({
  name: 'init',
  summary: 'create a key service data directory: store, keyholder state, unseal shares, initial admin token',
  usage: [
    '--data DIR [--store postgres://…] [--shares N --threshold K] [--share-recipients FILE] [--origin NAME] [--token-file] [--json]',
    '--data DIR --hsm-module PATH --hsm-token LABEL [--hsm-pin-file FILE] [--hsm-wrap-mechanism pad|kwp] [--hsm-audit-key] [other flags as above]',
  ],
  flags: {
    data: { type: 'string', value: 'DIR', help: 'the data directory to create (mode 0700; must be new or empty)' },
    store: { type: 'string', value: 'URL', help: 'initialize this PostgreSQL database (postgres://…; or $KEYWARD_STORE) instead of DIR/keyward.db' },
    shares: { type: 'string', value: 'N', help: 'number of unseal shares, 2..255 (default 5)' },
    threshold: { type: 'string', value: 'K', help: 'shares needed to unseal, 2..N (default 3)' },
    'share-recipients': { type: 'string', value: 'FILE', help: "seal share i to the i-th Keyward recipient in FILE (one per line, # comments)" },
    origin: { type: 'string', value: 'NAME', help: 'the audit log origin (default keyward.local/audit/<init id>)' },
    'token-file': { type: 'boolean', help: `write the initial admin token to DIR/${TOKEN_FILE} (0600) instead of stdout` },
    json: { type: 'boolean', help: 'print a JSON summary on stdout' },
    'hsm-module': { type: 'string', value: 'PATH', help: 'HSM-wrapped mode: the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so); docs/hsm.md' },
    'hsm-token': { type: 'string', value: 'LABEL', help: 'HSM-wrapped mode: the token label' },
    'hsm-pin-file': { type: 'string', value: 'FILE', help: `HSM-wrapped mode: the file holding the token's user PIN (or $${HSM_PIN_ENV}); never on the command line` },
    'hsm-wrap-mechanism': { type: 'string', value: 'pad|kwp', help: 'the RFC 5649 mechanism the token offers: pad = CKM_AES_KEY_WRAP_PAD 0x210A (default), kwp = CKM_AES_KEY_WRAP_KWP 0x210B' },
    'hsm-audit-key': { type: 'boolean', help: 'HSM-wrapped mode: generate the audit checkpoint signing key (Ed25519) in the HSM too' },
  },
  details: `
The master key is generated in memory, split with Shamir's scheme into N
shares of which any K rebuild it, and wiped: it never touches disk. Shares go
to DIR/shares/share-<i>.txt (mode 0600), to be handed to custodians; with
--share-recipients each share is sealed to its custodian's recipient instead
(DIR/shares/share-<i>.kw.txt; the custodian runs "keyward unseal -i KEY").

The initial admin token is printed once on stdout (or written to
DIR/${TOKEN_FILE}); it expires after ${INIT_TOKEN_TTL_HOURS} hours and is meant only to enroll the
first administrators. The init is the audit log's first event (sys.init),
adopted by the keyholder when the server first starts. The audit log's public key (for "keyward audit verify
--key") is printed on stderr and kept in DIR/${VERIFIER_KEY_FILE}.

--store postgres://USER@HOST/DB puts the store in PostgreSQL (schema
migrations applied first) so several nodes can share it; the database must
not be initialized already. Other nodes get a copy of DIR/keyholder.json and
DIR/audit-verifier-key.txt in their own data directory and start with the
same --store; each is unsealed with the same shares.

HSM-wrapped mode (--hsm-module, --hsm-token; docs/hsm.md): a non-extractable
AES-256 key keyward-mk-<init id> is generated in the token and wraps the
master key (RFC 5649); the server unseals itself from the HSM at every start
(give it the PIN: keyward server --hsm-pin-file or $${HSM_PIN_ENV}). The shares
are then RECOVERY shares of a separate key: they authorise recovery
operations and decrypt nothing without the HSM. --hsm-audit-key puts the
audit checkpoint key (Ed25519, keyward-audit-<init id>) in the HSM as well.
The PIN is read from --hsm-pin-file or $${HSM_PIN_ENV}, never from the command
line, and is written nowhere.

--json prints { dataDir, initId, shares, threshold, shareFiles, origin,
verifierKey, tokenId, tokenExpiresAt, hsm, token | tokenFile }.`,
  examples: ['keyward init --data /var/lib/keyward > admin-token', 'keyward init --data /var/lib/keyward --hsm-module /usr/lib/softhsm/libsofthsm2.so --hsm-token keyward --hsm-pin-file /run/secrets/hsm-pin --hsm-audit-key --token-file', 'keyward init --data ./kw --shares 3 --threshold 2 --share-recipients custodians.txt --token-file', 'keyward init --data /var/lib/keyward --store postgres://keyward@db.internal/keyward --token-file'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('init takes no positional arguments');
    if (flags.data === undefined) usageError('init needs --data DIR');
    const shares = intFlag(flags.shares, '--shares', 5);
    const threshold = intFlag(flags.threshold, '--threshold', 3);
    if (shares < 2 || shares > 255) usageError('--shares must be from 2 to 255');
    if (threshold < 2 || threshold > shares) usageError(`--threshold must be from 2 to the number of shares (${shares})`);
    let recipients: string[] | undefined;
    if (flags['share-recipients'] !== undefined) {
      const text = await readTextFile(flags['share-recipients'], io, stdin, 'the share recipients file');
      recipients = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    }
    const storeFlag = flags.store ?? (io.env.KEYWARD_STORE || undefined);
    if (storeFlag !== undefined && !/^postgres(?:ql)?:\/\//.test(storeFlag)) usageError('--store must be a postgres:// or postgresql:// URL');
    const hsm = await hsmOptions(flags, io);
    let r;
    try {
      r = await initDataDir({
        ...(hsm ? { hsm } : {}),
        dir: flags.data, shares, threshold, tokenToFile: flags['token-file'],
        ...(storeFlag !== undefined ? { store: storeFlag } : {}),
        ...(recipients ? { recipients } : {}), ...(flags.origin !== undefined ? { origin: flags.origin } : {}),
      });
    } catch (e) {
      throw serviceError(e);
    }
    if (flags.json) {
      const { token, shareRecords: _unused, ...rest } = r;
      await printJson(io.stdout, { ...rest, ...(r.tokenFile === null ? { token } : {}) });
      return EXIT_OK;
    }
    const lines = [
      `Initialized ${r.dataDir} (init ${r.initId}).`,
      r.hsm
        ? `HSM-wrapped mode: the master key is wrapped by '${r.hsm.keyLabel}' in token '${r.hsm.tokenLabel}'${r.hsm.auditKeyLabel ? `, the audit key is '${r.hsm.auditKeyLabel}'` : ''}; the server unseals itself from the HSM.\nRecovery shares (they do NOT unseal and open nothing without the HSM): any ${r.threshold} of ${r.shares} authorise recovery operations. Hand each to its custodian and delete it here:`
        : `Unseal shares: any ${r.threshold} of ${r.shares} unseal the service. Hand each to its custodian and delete it here:`,
      ...r.shareFiles.map((s) => `  share ${s.index}: ${s.file ?? '(in memory)'}${s.recipient ? ` (sealed to ${s.recipient})` : ''}`),
      `Audit log key: ${r.verifierKey}`,
      r.tokenFile === null ? `Initial admin token (shown once; expires in ${INIT_TOKEN_TTL_HOURS} h, at ${r.tokenExpiresAt}; enroll the first administrators with it) on stdout.` : `Initial admin token written to ${r.tokenFile}.`,
    ];
    await writeAll(io.stderr, lines.join('\n') + '\n');
    if (r.tokenFile === null) await writeAll(io.stdout, `${r.token}\n`);
    return EXIT_OK;
  },
});

/** The --hsm-* flags as init options (PIN from --hsm-pin-file or $KEYWARD_HSM_PIN), or null without --hsm-module. */
async function hsmOptions(
  flags: { 'hsm-module'?: string | undefined; 'hsm-token'?: string | undefined; 'hsm-pin-file'?: string | undefined; 'hsm-wrap-mechanism'?: string | undefined; 'hsm-audit-key'?: boolean | undefined },
  io: { env: Readonly<Record<string, string | undefined>> },
): Promise<{ module: string; tokenLabel: string; pin: string; wrapMechanism: 'pad' | 'kwp'; auditKey: boolean } | null> {
  const module = flags['hsm-module'];
  if (module === undefined) {
    for (const f of ['hsm-token', 'hsm-pin-file', 'hsm-wrap-mechanism'] as const) if (flags[f] !== undefined) usageError(`--${f} needs --hsm-module`);
    if (flags['hsm-audit-key']) usageError('--hsm-audit-key needs --hsm-module');
    return null;
  }
  const tokenLabel = flags['hsm-token'];
  if (tokenLabel === undefined) usageError('--hsm-module needs --hsm-token LABEL');
  const mech = flags['hsm-wrap-mechanism'] ?? 'pad';
  if (mech !== 'pad' && mech !== 'kwp') usageError('--hsm-wrap-mechanism is pad (0x210A) or kwp (0x210B)');
  let pin: string | undefined;
  if (flags['hsm-pin-file'] !== undefined) {
    try {
      pin = (await fsp.readFile(flags['hsm-pin-file'], 'utf8')).replace(/\r?\n$/, '');
    } catch (e) {
      fail('KW_IO', `cannot read the HSM PIN file '${flags['hsm-pin-file']}'`, e);
    }
  } else {
    pin = io.env[HSM_PIN_ENV];
  }
  if (pin === undefined || pin === '') usageError(`HSM-wrapped mode needs the token PIN: --hsm-pin-file FILE or $${HSM_PIN_ENV}`);
  return { module, tokenLabel, pin, wrapMechanism: mech, auditKey: flags['hsm-audit-key'] ?? false };
}

export function intFlag(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d{1,9}$/.test(v)) usageError(`${name} must be a whole number`);
  return Number(v);
}
