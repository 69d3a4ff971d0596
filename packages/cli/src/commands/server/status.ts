/** `keyward status`: the key service's health (initialized, sealed, keyholder, version). */
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { ADDR_FLAG, addresses, call, defineServiceCommand } from '../../lib/service.js';

export const status = defineServiceCommand({
  name: 'status',
  summary: 'show whether the key service is initialized, sealed, and its keyholder up',
  usage: ['[--addr URL] [--json]'],
  flags: {
    ...ADDR_FLAG,
    insecure: { type: 'boolean', help: 'allow plain http to a non-loopback address' },
    json: { type: 'boolean', help: 'print the health document as JSON' },
  },
  details: 'GET /v1/sys/health (no token). Also prints the unseal progress while sealed. Exits 0 whenever the service answered.',
  async run({ flags, positionals }, { io }) {
    if (positionals.length > 0) usageError('status takes no positional arguments');
    const service = { addresses: addresses(flags.addr, io), token: null, insecure: flags.insecure };
    const health = await call<Record<string, unknown>>(service, 'GET', '/v1/sys/health');
    let progress: unknown = null;
    if (health.sealed === true && health.initialized !== false && health.hsm === undefined) {
      try {
        progress = (await call<Record<string, unknown>>(service, 'GET', '/v1/sys/unseal-key')).progress ?? null;
      } catch {
        progress = null;
      }
    }
    if (flags.json) {
      await printJson(io.stdout, { ...health, ...(progress === null ? {} : { unsealProgress: progress }) });
      return EXIT_OK;
    }
    const p = progress as { received?: unknown; threshold?: unknown } | null;
    const lines = [
      `initialized: ${String(health.initialized)}`,
      `sealed:      ${String(health.sealed)}${p ? ` (${String(p.received)} of ${String(p.threshold)} shares received)` : ''}`,
      `keyholder:   ${String(health.keyholder)}`,
      `version:     ${String(health.version)}`,
    ];
    const hsm = health.hsm as { state?: unknown; code?: unknown } | undefined;
    if (hsm) lines.push(`hsm:         ${String(hsm.state)}${typeof hsm.code === 'string' ? ` (${hsm.code})` : ''} — HSM-wrapped mode: unseals itself from the HSM`);
    await writeAll(io.stdout, lines.join('\n') + '\n');
    return EXIT_OK;
  },
});
