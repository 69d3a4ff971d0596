/** `keyward login`: make this device's signing key and HPKE identity, register the signing key with the service. */
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { KEYS_FILE, PROFILE_FLAG, exists, newDeviceKeys, profileDir, writeProfile } from '../../lib/profile.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, readToken } from '../../lib/service.js';
import path from 'node:path';

export const login = defineServiceCommand({
  name: 'login',
  summary: 'create this device\'s signing key and identity, and register the signing key with the key service',
  usage: ['[--profile DIR] [--addr URL] [--token-file FILE] [--force] [--json]'],
  flags: {
    ...PROFILE_FLAG,
    ...TOKEN_FLAGS,
    force: { type: 'boolean', help: 'replace the device keys of an existing profile' },
    json: { type: 'boolean', help: 'print { profile, keyId, publicKey, recipient, addresses } as JSON' },
  },
  details: `
Creates an Ed25519 request-signing key and an x25519 HPKE identity in the
profile directory (keys file mode 0600, directory 0700), then registers the
signing key: POST /v1/auth/signing-keys { alg: "ed25519", public_key } with the
principal's token; the returned key_id and the addresses are saved with it.
Data-plane commands (seal --kms, open --kms) use this profile with a token.
${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('login takes no positional arguments');
    const dir = profileDir(flags.profile, io);
    if (!flags.force && (await exists(path.join(dir, KEYS_FILE)))) {
      fail('KW_INVALID_ARGUMENT', `'${dir}' already holds device keys; use --force to replace them (or --profile DIR)`);
    }
    const addrs = addresses(flags.addr, io);
    const token = await readToken(flags['token-file'], io, stdin);
    const keys = await newDeviceKeys();
    try {
      const res = await call<{ key_id?: unknown }>({ addresses: addrs, token }, 'POST', '/v1/auth/signing-keys', { alg: 'ed25519', public_key: keys.publicKey });
      if (typeof res.key_id !== 'string' || res.key_id === '') fail('KW_INTERNAL', 'the service answer carries no key_id');
      await writeProfile(dir, { addresses: addrs, keyId: res.key_id, publicKey: keys.publicKey, recipient: keys.recipient, seed: keys.seed, identity: keys.identity });
      const out = { profile: dir, keyId: res.key_id, publicKey: keys.publicKey, recipient: keys.recipient, addresses: addrs };
      if (flags.json) await printJson(io.stdout, out);
      else await writeAll(io.stdout, `logged in: device key ${res.key_id} registered; profile ${dir}\n`);
    } finally {
      keys.seed.fill(0);
    }
    return EXIT_OK;
  },
});
