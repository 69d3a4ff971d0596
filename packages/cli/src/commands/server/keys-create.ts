/** `keyward keys create NS/NAME --type T`: a new key (version 1 generated in the keyholder). */
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, keyRef, readToken, seg } from '../../lib/service.js';
import { parseRotationPeriod } from './keys-update.js';

export const KEY_TYPES = ['aes256', 'x25519', 'xwing', 'ed25519', 'hmac-sha256'] as const;
/** The types `--hsm-resident` accepts (keyholder/hsm-resident.ts). */
const RESIDENT_TYPES = ['aes256', 'ed25519', 'hmac-sha256'] as const;

export const keysCreate = defineServiceCommand({
  name: 'create',
  summary: 'create a key (its version 1 is born in the keyholder)',
  usage: ['NS/NAME [--type aes256|x25519|xwing|ed25519|hmac-sha256] [--rotation-period DURATION] [--hsm-resident] [--json]'],
  flags: {
    type: { type: 'string', value: 'TYPE', help: `key type: ${KEY_TYPES.join(', ')} (default aes256: data keys for kms envelopes)` },
    'rotation-period': { type: 'string', value: 'DURATION', help: 'rotate automatically when the latest version is this old: 90d, 12h, 2w or seconds (1h..3650d)' },
    'hsm-resident': { type: 'boolean', help: 'generate every version inside the HSM (aes256, ed25519, hmac-sha256; HSM custody only): the HSM runs every operation on it' },
    ...TOKEN_FLAGS,
    json: { type: 'boolean', help: 'print the service answer as JSON' },
  },
  details: `POST /v1/keys/{ns}/{name} { type, rotation_period_seconds?, hsm_resident? } (admin token). --hsm-resident needs a service initialised with an HSM (KW_HSM_NOT_CONFIGURED otherwise).\n${TOKEN_DETAILS}`,
  examples: ['keyward keys create billing/orders --type aes256', 'keyward keys create billing/orders --rotation-period 90d', 'keyward keys create billing/root --type aes256 --hsm-resident'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1) usageError('keys create takes one NS/NAME');
    const { ns, name } = keyRef(positionals[0]);
    const type = flags.type ?? 'aes256';
    if (!(KEY_TYPES as readonly string[]).includes(type)) usageError(`--type must be one of ${KEY_TYPES.join(', ')}`);
    const body: Record<string, unknown> = { type };
    if (flags['hsm-resident']) {
      if (!(RESIDENT_TYPES as readonly string[]).includes(type)) usageError(`--hsm-resident keys are ${RESIDENT_TYPES.join(', ')}`);
      body.hsm_resident = true;
    }
    if (flags['rotation-period'] !== undefined) body.rotation_period_seconds = parseRotationPeriod(flags['rotation-period'], '--rotation-period');
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await call(({ addresses: addresses(flags.addr, io), token }), 'POST', `/v1/keys/${seg(ns)}/${seg(name)}`, body);
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `created ${ns}/${name} (${type}${flags['hsm-resident'] ? ', HSM-resident' : ''})\n`);
    return EXIT_OK;
  },
});
