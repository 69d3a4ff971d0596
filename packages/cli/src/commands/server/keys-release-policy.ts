/**
 * `keyward keys release-policy set NS/KEY --file policy.json` and
 * `keyward keys release-policy show NS/KEY`: the release policy of an aes256
 * key (which attested TEE workloads may receive its data keys; docs/tee.md
 * §Release flow). `set` with `--clear` removes it (nothing is released).
 */
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { readTextFile, writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, keyRef, readToken, seg } from '../../lib/service.js';

export const keysReleasePolicySet = defineServiceCommand({
  name: 'set',
  summary: 'set (or --clear) the release policy of NS/KEY from a JSON file',
  usage: ['NS/KEY --file FILE [--json]', 'NS/KEY --clear [--json]'],
  flags: {
    file: { type: 'string', short: 'f', value: 'FILE', help: 'the release policy, JSON ("-" = stdin; then give the token with --token-file or the environment)' },
    clear: { type: 'boolean', help: 'remove the policy: nothing is released to attested workloads' },
    ...TOKEN_FLAGS,
    json: { type: 'boolean', help: 'print the service answer as JSON' },
  },
  details: `PUT /v1/keys/{ns}/{name}/release-policy { policy } (admin token). The policy:
  { "platforms": ["aws-nitro" | "tpm2" | "amd-sev-snp" | "intel-sgx" | "intel-tdx", …],
    "measurements": { "PCR0": "hex…" | ["hex…", …] }, "allowDebug": false,
    "minVersions": { "snp.tcb.snp": 8 }, "maxAgeSeconds": 300, "maxClockSkewSeconds": 60 }
A malformed policy is KW_RELEASE_POLICY_INVALID and nothing is stored.
${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1) usageError('keys release-policy set takes one NS/KEY');
    const { ns, name } = keyRef(positionals[0], 'NS/KEY');
    if ((flags.file === undefined) === (flags.clear !== true)) usageError('keys release-policy set needs --file FILE or --clear');
    let policy: unknown = null;
    if (flags.file !== undefined) {
      const text = await readTextFile(flags.file, io, stdin, 'the release policy');
      try {
        policy = JSON.parse(text);
      } catch {
        fail('KW_INVALID_ARGUMENT', `'${flags.file}' is not JSON`);
      }
    }
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await call<{ policy_sha256: string | null }>({ addresses: addresses(flags.addr, io), token }, 'PUT', `/v1/keys/${seg(ns)}/${seg(name)}/release-policy`, { policy });
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, res.policy_sha256 ? `release policy of ${ns}/${name} set (sha256 ${res.policy_sha256})\n` : `release policy of ${ns}/${name} cleared\n`);
    return EXIT_OK;
  },
});

export const keysReleasePolicyShow = defineServiceCommand({
  name: 'show',
  summary: 'print the release policy of NS/KEY (JSON; null when none)',
  usage: ['NS/KEY'],
  flags: { ...TOKEN_FLAGS, json: { type: 'boolean', help: 'same output (JSON already)' } },
  details: `GET /v1/keys/{ns}/{name}/release-policy (admin token) → { key, policy, policy_sha256 }.\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1) usageError('keys release-policy show takes one NS/KEY');
    const { ns, name } = keyRef(positionals[0], 'NS/KEY');
    const token = await readToken(flags['token-file'], io, stdin);
    await printJson(io.stdout, await call({ addresses: addresses(flags.addr, io), token }, 'GET', `/v1/keys/${seg(ns)}/${seg(name)}/release-policy`));
    return EXIT_OK;
  },
});
