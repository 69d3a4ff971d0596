/**
 * `keyward keys disable-version|enable-version|schedule-deletion|cancel-deletion|destroy NS/NAME VERSION`:
 * state changes of one key version (five commands of the same shape, declared here together).
 */
import type { Command } from '../../lib/command.js';
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, defineServiceCommand, keyRef, readToken, seg } from '../../lib/service.js';
import { STEP_UP_DETAILS, STEP_UP_FLAGS, callWithStepUp } from '../../lib/step-up.js';

function versionCommand(name: string, op: string, summary: string, extra = ''): Command {
  const scheduling = op === 'schedule-deletion';
  const destroying = op === 'destroy';
  const sensitive = scheduling || destroying;
  return defineServiceCommand({
    name,
    summary,
    usage: [`NS/NAME VERSION${scheduling ? ' [--days 7..30]' : ''}${destroying ? ' --yes' : ''}${sensitive ? ' [--step-up [--totp-code-file FILE]]' : ''} [--json]`],
    flags: {
      days: { type: 'string', value: 'DAYS', help: scheduling ? 'days until the version is destroyed, 7..30 (default 30)' : '(schedule-deletion only)' },
      yes: { type: 'boolean', help: destroying ? 'confirm: destroying a version is irreversible' : '(destroy only)' },
      ...TOKEN_FLAGS,
      ...STEP_UP_FLAGS,
      json: { type: 'boolean', help: 'print the service answer as JSON' },
    },
    details: `POST /v1/keys/{ns}/{name}/versions/{v}/${op}${scheduling ? ' { days }' : ''} (admin token).${extra}\n${TOKEN_DETAILS}${sensitive ? `\n${STEP_UP_DETAILS}` : ''}`,
    async run({ flags, positionals }, { io, stdin }) {
      if (positionals.length !== 2) usageError(`keys ${name} takes NS/NAME VERSION`);
      const { ns, name: key } = keyRef(positionals[0]);
      const v = positionals[1]!;
      if (!/^[1-9]\d{0,9}$/.test(v)) usageError('VERSION must be a positive whole number');
      if (!scheduling && flags.days !== undefined) usageError('--days applies to schedule-deletion only');
      if (!destroying && flags.yes) usageError('--yes applies to destroy only');
      if (destroying && !flags.yes) usageError('destroying a key version is irreversible: add --yes to confirm');
      let body: Record<string, unknown> = {};
      if (scheduling) {
        const days = flags.days === undefined ? 30 : Number(flags.days);
        if (!/^\d{1,2}$/.test(flags.days ?? '30') || days < 7 || days > 30) usageError('--days must be from 7 to 30');
        body = { days };
      }
      const token = await readToken(flags['token-file'], io, stdin);
      if (!sensitive && flags['step-up']) usageError('--step-up applies to schedule-deletion and destroy only');
      const res = await callWithStepUp(({ addresses: addresses(flags.addr, io), token }), flags, io, stdin, 'POST', `/v1/keys/${seg(ns)}/${seg(key)}/versions/${v}/${op}`, body);
      if (flags.json) await printJson(io.stdout, res);
      else await writeAll(io.stdout, `${ns}/${key} version ${v}: ${op} done\n`);
      return EXIT_OK;
    },
  });
}

export const keysDisableVersion = versionCommand('disable-version', 'disable', 'disable a key version (it can no longer be used; reversible)');
export const keysEnableVersion = versionCommand('enable-version', 'enable', 'enable a disabled key version again');
export const keysScheduleDeletion = versionCommand('schedule-deletion', 'schedule-deletion', 'schedule a key version for destruction in 7..30 days');
export const keysCancelDeletion = versionCommand('cancel-deletion', 'cancel-deletion', 'cancel the scheduled destruction of a key version');
export const keysDestroy = versionCommand('destroy', 'destroy', 'destroy a key version now (irreversible; needs --yes)', ' Data sealed under it can never be opened again.');
