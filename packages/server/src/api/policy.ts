/**
 * Policy decisions: default deny, pure, no I/O.
 *
 * A policy document:
 *
 *   { grants: [ { principals?: ["svc-orders"], roles?: ["billing-reader"],
 *                 operations: ["datakey", "unwrap", "keys.rotate", …],
 *                 keys: ["billing/orders", "billing/tmp-*"],
 *                 context?: { tenant: "acme", table: "*" } } ] }
 *
 * A grant matches when the principal is listed by id or holds a listed role
 * (a grant naming neither matches nobody), the operation is listed, the key
 * (`ns/name`) matches a pattern (`*` at the end matches any suffix; no other
 * wildcard), and every context condition holds (the key is present with that
 * value, or with any value for `*`). Admin tokens get the control-plane
 * operations (`keys.*`, `tokens.*`, `policies.*`, `principals.*`,
 * `signing_keys.*`, `audit.read`) without a grant, and never data-plane
 * operations unless a grant gives them.
 *
 * @example
 * decide({ id: 'svc', roles: [], admin: false }, 'unwrap', 'billing/orders', { table: 'orders' }, [doc]).allowed
 */
import { z } from 'zod';

export const DATA_OPERATIONS = ['datakey', 'unwrap', 'rewrap', 'encrypt', 'decrypt', 'sign', 'verify', 'mac', 'open', 'release'] as const;
export const ADMIN_OPERATIONS = [
  'keys.create', 'keys.import', 'keys.rotate', 'keys.read', 'keys.enable', 'keys.disable', 'keys.schedule_deletion', 'keys.cancel_deletion',
  'keys.destroy', 'keys.update', 'tokens.create', 'tokens.revoke', 'policies.put', 'policies.read', 'audit.read',
  'principals.read', 'principals.update', 'principals.disable', 'signing_keys.read', 'signing_keys.revoke',
  'directory.read', 'directory.manage',
  'quorum.put', 'approvers.put', 'approvals.create', 'approvals.read',
] as const;
export const OPERATIONS = [...DATA_OPERATIONS, ...ADMIN_OPERATIONS] as const;
export type Operation = (typeof OPERATIONS)[number];

const Pattern = z.string().min(1).max(512).regex(/^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]*\*?$|^\*$/, 'a key pattern is "ns/name", "ns/prefix*" or "*"');

export const GrantSchema = z.strictObject({
  principals: z.array(z.string().min(1).max(255)).max(256).optional(),
  roles: z.array(z.string().min(1).max(255)).max(256).optional(),
  operations: z.array(z.enum(OPERATIONS)).min(1).max(64),
  keys: z.array(Pattern).min(1).max(256),
  context: z.record(z.string().min(1).max(128), z.string().max(1024)).optional(),
});
export const PolicyDocumentSchema = z.strictObject({ grants: z.array(GrantSchema).max(256) });
export type Grant = z.infer<typeof GrantSchema>;
export type PolicyDocument = z.infer<typeof PolicyDocumentSchema>;

export interface PolicySubject {
  readonly id: string;
  readonly roles: readonly string[];
  readonly admin: boolean;
}

export interface Decision {
  readonly allowed: boolean;
  /** Why: "admin", "grant", or "no grant matches" (never policy contents). */
  readonly reason: string;
}

export function isDataOperation(op: Operation): boolean {
  return (DATA_OPERATIONS as readonly string[]).includes(op);
}

function keyMatches(pattern: string, key: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return key.startsWith(pattern.slice(0, -1));
  return key === pattern;
}

function grantMatches(g: Grant, who: PolicySubject, op: Operation, key: string, context: Readonly<Record<string, string>>): boolean {
  const byId = g.principals?.includes(who.id) ?? false;
  const byRole = g.roles?.some((r) => who.roles.includes(r)) ?? false;
  if (!byId && !byRole) return false;
  if (!g.operations.includes(op)) return false;
  if (!g.keys.some((p) => keyMatches(p, key))) return false;
  for (const [k, v] of Object.entries(g.context ?? {})) {
    if (!Object.hasOwn(context, k)) return false;
    if (v !== '*' && context[k] !== v) return false;
  }
  return true;
}

/** The decision for `who` doing `op` on `key` (`ns/name`) with `context`, under `policies`. Pure. */
export function decide(who: PolicySubject, op: Operation, key: string, context: Readonly<Record<string, string>>, policies: readonly PolicyDocument[]): Decision {
  if (who.admin && !isDataOperation(op)) return { allowed: true, reason: 'admin' };
  for (const p of policies) {
    for (const g of p.grants) if (grantMatches(g, who, op, key, context)) return { allowed: true, reason: 'grant' };
  }
  return { allowed: false, reason: 'no grant matches' };
}
