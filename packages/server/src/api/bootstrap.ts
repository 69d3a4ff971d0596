/**
 * The bootstrap rule: what the initial admin token of `keyward init` may do.
 *
 * The token `keyward init` prints belongs to the principal `root` of the
 * namespace `sys` (every token of that principal is a *bootstrap token*,
 * so minting another one for it gains nothing). It exists to enroll the
 * first administrators and nothing else:
 *
 * - `POST /v1/tokens` with `admin: true`, for a principal other than `root`
 *   that is (or is created as) a `person`, not disabled, and without `roles`;
 * - `GET /v1/principals`, `GET /v1/principals/:id` (to check who is enrolled);
 * - `DELETE /v1/tokens/:id` of a token of `root` itself (to burn it when done).
 *
 * Every other authenticated route answers `KW_BOOTSTRAP_ONLY` (403) and the
 * refusal is audited (`auth.bootstrap_only`, outcome denied): no key
 * operation, no policy change, no audit read, no signing key, no seal. The
 * administrators it enrolled register their own signing keys with their own
 * tokens (`keyward login`).
 *
 * Dev mode (`keyward server --dev`) is not bound by this rule: its root
 * token belongs to `dev-root`, a full administrator (dev mode is insecure by
 * design: temporary data, auto-unsealed).
 *
 * MFA (issue #7): the bootstrap token also enrolls the first administrators'
 * second factors (`POST /v1/mfa/totp[/:id/activate]`, `POST
 * /v1/mfa/webauthn/options|:id` with `principal`, for a person holding an
 * admin token and no active factor) and expires once the first factor is
 * active ({@link bootstrapExpired}).
 */
import type { PrincipalRow, Store } from '../store/index.js';
import { ApiError } from './errors.js';
import { mfaEnforcedInStore } from './mfa-settings.js';

/** The principal of the initial admin token (`keyward init`). */
export const BOOTSTRAP_PRINCIPAL = 'root';
/** Its namespace. */
export const BOOTSTRAP_NAMESPACE = 'sys';
/** The full-admin principal of dev mode's root token. */
export const DEV_ROOT_PRINCIPAL = 'dev-root';

/** `METHOD /route/pattern` of every route a bootstrap token may call (the route decides the rest). */
export const BOOTSTRAP_ROUTES: ReadonlySet<string> = new Set([
  'POST /v1/tokens',
  'DELETE /v1/tokens/:id',
  'GET /v1/principals',
  'GET /v1/principals/:id',
  // Issue #7: the first administrators' second factors (routes/mfa.ts checks the target:
  // a person holding an admin token, with no active factor yet).
  'POST /v1/mfa/totp',
  'POST /v1/mfa/totp/:id/activate',
  'POST /v1/mfa/webauthn/options',
  'POST /v1/mfa/webauthn/:id',
]);

/** True for the principal whose tokens are bootstrap tokens. */
export function isBootstrapPrincipal(p: Pick<PrincipalRow, 'id' | 'ns'>): boolean {
  return p.id === BOOTSTRAP_PRINCIPAL && p.ns === BOOTSTRAP_NAMESPACE;
}

/** True when a bootstrap token may call this route at all. */
export function bootstrapAllowsRoute(method: string, url: string | undefined): boolean {
  return url !== undefined && BOOTSTRAP_ROUTES.has(`${method} ${url}`);
}

/**
 * Whether the bootstrap token has expired beyond its own expiry: true once
 * the first second factor (TOTP or WebAuthn) of an administrator is active —
 * the moment step-up enforcement starts (api/mfa-settings.ts, store meta
 * `mfa.enforced_since`, written with that activation), so every node agrees.
 * Enroll every first administrator's token before activating the first
 * factor; each can then enroll their own factors with their own token.
 */
export function bootstrapExpired(store: Store): Promise<boolean> {
  return mfaEnforcedInStore(store);
}

/**
 * What a bootstrap token may ask of `POST /v1/tokens`: an admin token for a
 * person other than `root`, without roles. `existing` is the target principal
 * if it exists. Throws KW_BOOTSTRAP_ONLY otherwise.
 */
export function checkBootstrapEnrollment(
  body: { principal: string; admin?: boolean | undefined; kind?: 'person' | 'service' | undefined; roles?: readonly string[] | undefined },
  existing: PrincipalRow | null,
): void {
  const refuse = (why: string) => new ApiError('KW_BOOTSTRAP_ONLY', `the initial admin token only enrolls administrators: ${why}`);
  if (body.admin !== true) throw refuse('give admin: true (tokens for services and other people are created by the administrators)');
  if (body.principal === BOOTSTRAP_PRINCIPAL) throw refuse(`it cannot issue tokens for ${BOOTSTRAP_PRINCIPAL} itself`);
  if (body.roles !== undefined && body.roles.length > 0) throw refuse('roles are set later by the administrators');
  const kind = existing?.kind ?? body.kind;
  if (kind !== 'person') throw refuse('administrators are people: give kind: person');
  if (existing && isBootstrapPrincipal(existing)) throw refuse(`it cannot issue tokens for ${BOOTSTRAP_PRINCIPAL} itself`);
}
