/** Small byte helpers for the httpsig code. */

export const utf8 = new TextEncoder();

/** Equality in time independent of where the inputs differ (the length is not secret). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
