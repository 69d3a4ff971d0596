/** `keyward init`: a new data directory — store, keyholder state, master key split into unseal shares, initial admin token. */
import { defineCommand } from '../../lib/command.js';
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { readTextFile, writeAll } from '../../lib/io.js';
import { INIT_TOKEN_TTL_HOURS, TOKEN_FILE, VERIFIER_KEY_FILE, initDataDir } from '../../lib/init.js';
import { printJson } from '../../lib/output.js';
import { serviceError } from '../../lib/service.js';

export const init = defineCommand({
  name: 'init',
  summary: 'create a key service data directory: store, keyholder state, unseal shares, initial admin token',
  usage: ['--data DIR [--shares N --threshold K] [--share-recipients FILE] [--origin NAME] [--token-file] [--json]'],
  flags: {
    data: { type: 'string', value: 'DIR', help: 'the data directory to create (mode 0700; must be new or empty)' },
    shares: { type: 'string', value: 'N', help: 'number of unseal shares, 2..255 (default 5)' },
    threshold: { type: 'string', value: 'K', help: 'shares needed to unseal, 2..N (default 3)' },
    'share-recipients': { type: 'string', value: 'FILE', help: "seal share i to the i-th Keyward recipient in FILE (one per line, # comments)" },
    origin: { type: 'string', value: 'NAME', help: 'the audit log origin (default keyward.local/audit/<init id>)' },
    'token-file': { type: 'boolean', help: `write the initial admin token to DIR/${TOKEN_FILE} (0600) instead of stdout` },
    json: { type: 'boolean', help: 'print a JSON summary on stdout' },
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

--json prints { dataDir, initId, shares, threshold, shareFiles, origin,
verifierKey, tokenId, tokenExpiresAt, token | tokenFile }.`,
  examples: ['keyward init --data /var/lib/keyward > admin-token', 'keyward init --data ./kw --shares 3 --threshold 2 --share-recipients custodians.txt --token-file'],
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
    let r;
    try {
      r = await initDataDir({
        dir: flags.data, shares, threshold, tokenToFile: flags['token-file'],
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
      `Unseal shares: any ${r.threshold} of ${r.shares} unseal the service. Hand each to its custodian and delete it here:`,
      ...r.shareFiles.map((s) => `  share ${s.index}: ${s.file ?? '(in memory)'}${s.recipient ? ` (sealed to ${s.recipient})` : ''}`),
      `Audit log key: ${r.verifierKey}`,
      r.tokenFile === null ? `Initial admin token (shown once; expires in ${INIT_TOKEN_TTL_HOURS} h, at ${r.tokenExpiresAt}; enroll the first administrators with it) on stdout.` : `Initial admin token written to ${r.tokenFile}.`,
    ];
    await writeAll(io.stderr, lines.join('\n') + '\n');
    if (r.tokenFile === null) await writeAll(io.stdout, `${r.token}\n`);
    return EXIT_OK;
  },
});

export function intFlag(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d{1,9}$/.test(v)) usageError(`${name} must be a whole number`);
  return Number(v);
}
