/**
 * Rotation: one code path for `POST /v1/keys/{ns}/{name}/rotate` and the
 * scheduler's automatic rotation (scheduler.ts).
 *
 * The new version number is latest + 1 as the caller saw it. Inside the one
 * store transaction of the audit pipe, before the keyholder is asked for
 * anything, the key is read again: if its latest version moved
 * (`KW_STORE_CONFLICT`), or — for the scheduler, `ifDueAt` — its latest
 * version is no longer due at that time, nothing is generated, appended or
 * written. The store's `rotateKey({ version })` is a compare-and-set on the
 * latest version as well, so two writers that both pass the check (two
 * nodes on a shared database) still add exactly one version.
 *
 * @example
 * const view = await rotateKeyVersion(ctx, { key, event: { ...event, outcome: 'allowed' }, created: new Date() });
 */
import type { AuditEventInput } from '../../audit/event.js';
import { AUDIT_HMAC_KEY } from '../../keyholder/service.js';
import type { KeyRow, KeyVersionRow } from '../../store/index.js';
import type { ApiContext } from '../app.js';
import { unb64u } from '../audit-pipe.js';
import { ApiError } from '../errors.js';

/** The meta entry that marks a key HSM-resident (`keys create --hsm-resident`): every version of it is generated in the HSM. */
export const residentMetaKey = (ns: string, name: string): string => `key.custody:${ns}/${name}`;

/** True when the key was created HSM-resident (keyholder/hsm-resident.ts). */
export async function isHsmResident(store: { getMeta(key: string): Promise<string | null> }, ns: string, name: string): Promise<boolean> {
  return (await store.getMeta(residentMetaKey(ns, name))) === 'hsm';
}

/** True when the latest version of `key` (created at `latestCreated`) is due for rotation at `now`. */
export function rotationDue(key: Pick<KeyRow, 'rotationPeriodSeconds'>, latestCreated: Date, now: Date): boolean {
  return key.rotationPeriodSeconds !== null && latestCreated.getTime() + key.rotationPeriodSeconds * 1000 <= now.getTime();
}

/**
 * Adds version `key.latestVersion + 1` (generated in the keyholder, which
 * appends `event`), atomically with its audit event. `event.target.version`
 * must be that number. Throws KW_STORE_CONFLICT (nothing done) when the key
 * was rotated meanwhile or, with `ifDueAt`, is no longer due.
 */
export async function rotateKeyVersion(
  ctx: ApiContext,
  input: { readonly key: KeyRow; readonly event: AuditEventInput; readonly created: Date; readonly ifDueAt?: Date },
): Promise<{ key: KeyRow; versions: KeyVersionRow[] }> {
  const { key: k, created } = input;
  const next = k.latestVersion + 1;
  const result = await ctx.audit.record(input.event, async (tx, ev) => {
    const cur = await tx.getKey(k.ns, k.name);
    if (!cur) throw new ApiError('KW_NOT_FOUND', `no key ${k.ns}/${k.name}`);
    if (cur.latestVersion !== k.latestVersion) throw new ApiError('KW_STORE_CONFLICT', `${k.ns}/${k.name} was rotated concurrently; retry`);
    if (input.ifDueAt !== undefined) {
      const latest = await tx.getKeyVersion(k.ns, k.name, cur.latestVersion);
      if (!latest || !rotationDue(cur, latest.created, input.ifDueAt)) throw new ApiError('KW_STORE_CONFLICT', `${k.ns}/${k.name} is no longer due for rotation`);
    }
    // An HSM-resident key's new version is generated in the HSM too.
    const resident = await isHsmResident(tx, k.ns, k.name);
    const g = await ctx.keyholder.call('generate-version', { event: ev.b64, ref: { ns: k.ns, key: k.name, version: next, type: k.type }, ...(resident ? { resident: true } : {}) });
    await tx.rotateKey({ ns: k.ns, key: k.name, version: next, wrapped: unb64u(g.wrapped), publicKey: g.publicKey ? unb64u(g.publicKey) : null, created });
    const key = (await tx.getKey(k.ns, k.name))!;
    return { result: { key, versions: await tx.listKeyVersions(k.ns, k.name) }, leaf: g.leaf };
  });
  // Later events of the namespace are redacted under the new audit key version.
  if (k.name === AUDIT_HMAC_KEY) ctx.audit.forgetAuditKey(k.ns);
  return result;
}
