/**
 * `keyward keys update NS/NAME [--rotation-period 90d|off] [--min-decryption-version N]`:
 * change a key's automatic rotation period (the service rotates it by itself
 * once its latest version is that old) and/or its minimum decryption version.
 */
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, keyRef, readToken, seg } from '../../lib/service.js';

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
/** What the service accepts: one hour to ten years. */
export const MIN_ROTATION_PERIOD = 3600;
export const MAX_ROTATION_PERIOD = 10 * 365 * 86_400;

/**
 * A rotation period: `90d`, `12h`, `2w`, `3600s` or plain seconds (`7776000`),
 * from one hour to ten years. A bad value is a usage error (exit 2).
 *
 * @example
 * parseRotationPeriod('90d', '--rotation-period') // 7776000
 */
export function parseRotationPeriod(text: string, flag: string): number {
  const m = /^([1-9]\d{0,9})([smhdw]?)$/.exec(text.trim());
  if (!m) usageError(`${flag} must be a duration like 90d, 12h, 2w or a number of seconds (got '${text}')`);
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2] || 's']!;
  if (seconds < MIN_ROTATION_PERIOD || seconds > MAX_ROTATION_PERIOD) usageError(`${flag} must be from 1h to 3650d (got ${seconds} seconds)`);
  return seconds;
}

export const keysUpdate = defineServiceCommand({
  name: 'update',
  summary: "change a key's automatic rotation period or minimum decryption version",
  usage: ['NS/NAME [--rotation-period DURATION|off] [--min-decryption-version N] [--json]'],
  flags: {
    'rotation-period': { type: 'string', value: 'DURATION', help: 'rotate automatically when the latest version is this old: 90d, 12h, 2w, seconds (1h..3650d); "off" stops it' },
    'min-decryption-version': { type: 'string', value: 'N', help: 'versions below N can no longer decrypt or unwrap' },
    ...TOKEN_FLAGS,
    json: { type: 'boolean', help: 'print the service answer as JSON' },
  },
  details: `POST /v1/keys/{ns}/{name}/rotation-period { rotation_period_seconds | null } and/or
POST /v1/keys/{ns}/{name}/min-decryption-version { version } (admin token).
The service's scheduler rotates a key whose latest version is older than its
period (while unsealed), as "keys rotate" does, with the service as actor.\n${TOKEN_DETAILS}`,
  examples: ['keyward keys update billing/orders --rotation-period 90d', 'keyward keys update billing/orders --rotation-period off'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1) usageError('keys update takes one NS/NAME');
    const { ns, name } = keyRef(positionals[0]);
    const period = flags['rotation-period'];
    const minText = flags['min-decryption-version'];
    if (period === undefined && minText === undefined) usageError('keys update needs --rotation-period and/or --min-decryption-version');
    const seconds = period === undefined ? undefined : period === 'off' ? null : parseRotationPeriod(period, '--rotation-period');
    if (minText !== undefined && !/^[1-9]\d{0,9}$/.test(minText)) usageError('--min-decryption-version must be a positive whole number');
    const token = await readToken(flags['token-file'], io, stdin);
    const target = { addresses: addresses(flags.addr, io), token };
    const base = `/v1/keys/${seg(ns)}/${seg(name)}`;
    let res: unknown;
    if (seconds !== undefined) res = await call(target, 'POST', `${base}/rotation-period`, { rotation_period_seconds: seconds });
    if (minText !== undefined) res = await call(target, 'POST', `${base}/min-decryption-version`, { version: Number(minText) });
    if (flags.json) await printJson(io.stdout, res);
    else {
      const what = [
        ...(seconds !== undefined ? [seconds === null ? 'automatic rotation off' : `rotates every ${seconds} s`] : []),
        ...(minText !== undefined ? [`minimum decryption version ${minText}`] : []),
      ];
      await writeAll(io.stdout, `${ns}/${name}: ${what.join(', ')}\n`);
    }
    return EXIT_OK;
  },
});
