/**
 * Bring your own key: `keyward keys import-params NS/NAME` (a one-time RSA
 * wrapping key from the keyholder) and `keyward keys import NS/NAME
 * --material-file F` (wraps F locally with RSA_AES_KEY_WRAP_SHA_256 and sends
 * only the wrapped form), or `--wrapped-file F --import-token T` for material
 * wrapped elsewhere (openssl, an HSM; docs/cli.md shows the commands).
 * Key material is read from a file or stdin, never from the command line.
 */
import { parseVerifierKey } from '@keyward/tlog';
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { readFileOrStdin, readTextFile, writeAll, writeFileAtomic, type Io, type StdinClaim } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { serverModule } from '../../lib/server-modules.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, keyRef, readToken, seg } from '../../lib/service.js';
import { KEY_TYPES } from './keys-create.js';

interface ImportParamsAnswer {
  key: string; type: string; token: string; algorithm: string; wrapping_key_spec: string; public_key: string; public_key_pem: string;
  public_key_sha256: string; expires_at: string; signer: string; signature: string;
}

const VERIFIER_FLAG = {
  'verifier-key': { type: 'string', value: 'VKEY|FILE', help: "require the parameters to be signed by this audit log key (init writes audit-verifier-key.txt)" },
} as const;

const SPEC_FLAG = {
  'wrapping-key-spec': { type: 'string', value: 'SPEC', help: 'RSA_3072 (default) or RSA_4096' },
} as const;

async function pinnedSigner(flag: string | undefined, io: Io, stdin: StdinClaim): Promise<string | null> {
  if (flag === undefined) return null;
  const text = /^[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(flag.trim())
    ? flag.trim()
    : (await readTextFile(flag, io, stdin, 'the verifier key file')).split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#')) ?? '';
  try {
    return Buffer.from(parseVerifierKey(text).publicKey).toString('hex');
  } catch (e) {
    return usageError(`--verifier-key is not a verifier key (NAME+ID+BASE64): ${(e as Error).message}`);
  }
}

/** Asks for import parameters and checks the keyholder's signature over them (and the pinned signer). */
async function fetchParams(opts: { addr: string[]; token: string; ns: string; name: string; type: string | undefined; spec: string | undefined; pinned: string | null }): Promise<ImportParamsAnswer> {
  const body: Record<string, unknown> = {};
  if (opts.type !== undefined) body.type = opts.type;
  if (opts.spec !== undefined) body.wrapping_key_spec = opts.spec;
  const p = await call<ImportParamsAnswer>({ addresses: opts.addr, token: opts.token }, 'POST', `/v1/keys/${seg(opts.ns)}/${seg(opts.name)}/import-params`, body);
  const { verifyImportParams } = await serverModule();
  const publicKey = Uint8Array.from(Buffer.from(p.public_key, 'base64url'));
  const facts = { ns: opts.ns, key: opts.name, type: p.type as (typeof KEY_TYPES)[number], token: p.token, algorithm: p.algorithm, public_key_sha256: p.public_key_sha256, expires_at: p.expires_at };
  if (p.algorithm !== 'RSA_AES_KEY_WRAP_SHA_256' || !verifyImportParams({ facts, publicKey, signer: p.signer, signature: p.signature })) {
    fail('KW_SIGNATURE_INVALID', 'the import parameters are not signed by the keyholder key they name: refusing to wrap key material for them');
  }
  if (opts.pinned !== null && p.signer !== opts.pinned) {
    fail('KW_SIGNER_UNKNOWN', 'the import parameters are signed by another key than --verifier-key: refusing to wrap key material for them');
  }
  return p;
}

function checkType(type: string | undefined): void {
  if (type !== undefined && !(KEY_TYPES as readonly string[]).includes(type)) usageError(`--type must be one of ${KEY_TYPES.join(', ')}`);
}

function checkSpec(spec: string | undefined): void {
  if (spec !== undefined && spec !== 'RSA_3072' && spec !== 'RSA_4096') usageError('--wrapping-key-spec must be RSA_3072 or RSA_4096');
}

export const keysImportParams = defineServiceCommand({
  name: 'import-params',
  summary: 'get a one-time wrapping key to import key material (bring your own key)',
  usage: ['NS/NAME [--type TYPE] [--wrapping-key-spec RSA_3072|RSA_4096] [--pem-out FILE] [--verifier-key VKEY|FILE] [--json]'],
  flags: {
    type: { type: 'string', value: 'TYPE', help: `type of the key to create (${KEY_TYPES.join(', ')}); omit for a key created by an earlier import` },
    ...SPEC_FLAG,
    'pem-out': { type: 'string', value: 'FILE', help: 'also write the RSA wrapping public key as PEM to FILE (for openssl)' },
    ...VERIFIER_FLAG,
    ...TOKEN_FLAGS,
    json: { type: 'boolean', help: 'print the parameters as JSON (the default output is JSON too)' },
  },
  details: `POST /v1/keys/{ns}/{name}/import-params (admin token). The answer holds the
import token (single use, expires in 24 hours, bound to NS/NAME and the type),
the keyholder's RSA wrapping public key (DER base64url, and PEM), and the
keyholder's signature over them, checked here (and against --verifier-key
when given). Wrap the material as docs/cli.md shows, or let "keys import
--material-file" do it.\n${TOKEN_DETAILS}`,
  examples: ['keyward keys import-params app/byok --type aes256 --pem-out wrapping.pem'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1) usageError('keys import-params takes one NS/NAME');
    const { ns, name } = keyRef(positionals[0]);
    checkType(flags.type);
    checkSpec(flags['wrapping-key-spec']);
    const pinned = await pinnedSigner(flags['verifier-key'], io, stdin);
    const token = await readToken(flags['token-file'], io, stdin);
    const p = await fetchParams({ addr: addresses(flags.addr, io), token, ns, name, type: flags.type, spec: flags['wrapping-key-spec'], pinned });
    if (flags['pem-out'] !== undefined) await writeFileAtomic(flags['pem-out'], p.public_key_pem);
    await printJson(io.stdout, p);
    return EXIT_OK;
  },
});

export const keysImport = defineServiceCommand({
  name: 'import',
  summary: 'import key material as a new key (origin external), or as the next version of one',
  usage: [
    'NS/NAME --material-file FILE [--type TYPE] [--wrapping-key-spec RSA_3072|RSA_4096] [--verifier-key VKEY|FILE] [--json]',
    'NS/NAME --wrapped-file FILE --import-token TOKEN [--type TYPE] [--json]',
  ],
  flags: {
    'material-file': { type: 'string', value: 'FILE', help: 'the raw key material ("-" = stdin); wrapped here, sent only wrapped' },
    'wrapped-file': { type: 'string', value: 'FILE', help: 'material already wrapped (RSA_AES_KEY_WRAP_SHA_256) for the parameters of --import-token ("-" = stdin)' },
    'import-token': { type: 'string', value: 'TOKEN', help: 'the token of import-params that --wrapped-file was wrapped for (not a secret)' },
    type: { type: 'string', value: 'TYPE', help: `key type (${KEY_TYPES.join(', ')}); needed for a new key` },
    ...SPEC_FLAG,
    ...VERIFIER_FLAG,
    ...TOKEN_FLAGS,
    json: { type: 'boolean', help: 'print the service answer as JSON' },
  },
  details: `With --material-file: POST …/import-params, the keyholder's signature checked
(and the signer against --verifier-key when given), the material wrapped here
with an ephemeral AES-256 key (RSA-OAEP-SHA-256 of that key ‖ AES-KWP, RFC 5649,
of the material; the ephemeral key and the material are wiped afterwards), then
POST …/import. Material lengths: aes256, ed25519 (seed), x25519, xwing (seed):
32 bytes; hmac-sha256: 16 to 256 bytes. The material is never a command-line
argument; it may come from stdin only if the token does not.\n${TOKEN_DETAILS}`,
  examples: [
    'keyward keys import app/byok --type aes256 --material-file key.bin',
    'keyward keys import app/byok --wrapped-file key.wrapped --import-token "$(jq -r .token params.json)"',
  ],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1) usageError('keys import takes one NS/NAME');
    const { ns, name } = keyRef(positionals[0]);
    checkType(flags.type);
    checkSpec(flags['wrapping-key-spec']);
    const material = flags['material-file'];
    const wrappedFile = flags['wrapped-file'];
    if ((material === undefined) === (wrappedFile === undefined)) usageError('give exactly one of --material-file and --wrapped-file');
    if (wrappedFile !== undefined && flags['import-token'] === undefined) usageError('--wrapped-file needs --import-token (from keys import-params)');
    if (material !== undefined && flags['import-token'] !== undefined) usageError('--import-token goes with --wrapped-file; --material-file gets its own parameters');
    const pinned = await pinnedSigner(flags['verifier-key'], io, stdin);
    const source = (material ?? wrappedFile)!;
    if (source === '-') stdin.claim(material !== undefined ? 'the key material' : 'the wrapped key material');
    const token = await readToken(flags['token-file'], io, stdin);
    const addr = addresses(flags.addr, io);

    let importToken: string;
    let wrapped: Uint8Array;
    if (material !== undefined) {
      const p = await fetchParams({ addr, token, ns, name, type: flags.type, spec: flags['wrapping-key-spec'], pinned });
      const bytes = await readFileOrStdin(material, io);
      try {
        const { wrapForImport } = await serverModule();
        wrapped = wrapForImport(Uint8Array.from(Buffer.from(p.public_key, 'base64url')), bytes);
      } finally {
        bytes.fill(0);
      }
      importToken = p.token;
    } else {
      importToken = flags['import-token']!;
      wrapped = await readFileOrStdin(wrappedFile!, io);
    }
    const body: Record<string, unknown> = { token: importToken, wrapped: Buffer.from(wrapped).toString('base64url') };
    if (flags.type !== undefined) body.type = flags.type;
    const res = await call<Record<string, unknown>>({ addresses: addr, token }, 'POST', `/v1/keys/${seg(ns)}/${seg(name)}/import`, body);
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `imported ${ns}/${name} version ${String(res.latest_version)} (${String(res.type)}, origin external)\n`);
    return EXIT_OK;
  },
});
