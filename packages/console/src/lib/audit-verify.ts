/**
 * Audit verification in the browser, with @keyward/tlog only: the signed
 * checkpoint is checked against the log's public key (C2SP signed note,
 * Ed25519), then each event's inclusion proof against that checkpoint's root
 * (RFC 9162), with the leaf hash computed here from the event's exact bytes —
 * nothing the server says about hashes is taken on trust.
 *
 * @example
 * const cp = verifyCheckpoint(note, vkey);
 * const verdict = checkInclusion(cp, 41, eventText, proof); // { status: 'verified' } | …
 */
import { leafHash, newVerifier, openCheckpoint, parseVerifierKey, verifyInclusion } from '@keyward/tlog';

export interface VerifiedCheckpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Uint8Array;
  readonly note: string;
}

export interface InclusionProof {
  readonly index: number;
  readonly size: number;
  readonly leaf_hash: string;
  readonly hashes: readonly string[];
}

export type Verdict =
  | { readonly status: 'verified' }
  | { readonly status: 'unverified'; readonly reason: string }
  | { readonly status: 'pending'; readonly reason: string };

/** base64url (unpadded) → bytes. */
export function fromB64u(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error('not base64url');
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/**
 * Verifies the checkpoint note with the log's verifier key; its origin must
 * be the key's name. Throws (a TlogError) when it does not verify.
 */
export function verifyCheckpoint(note: string, verifierKey: string): VerifiedCheckpoint {
  const name = parseVerifierKey(verifierKey).name;
  const { checkpoint } = openCheckpoint(note, [newVerifier(verifierKey)], { origin: name });
  return { origin: checkpoint.origin, size: checkpoint.size, root: checkpoint.root, note };
}

/**
 * The verdict for event `index` whose canonical text is `eventText`, given
 * the server's inclusion proof for it in the tree of the verified
 * checkpoint. Events at or past the checkpoint's size are `pending`.
 */
export function checkInclusion(cp: VerifiedCheckpoint, index: number, eventText: string, proof: InclusionProof | null): Verdict {
  if (index >= cp.size) return { status: 'pending', reason: 'newer than the signed checkpoint' };
  if (proof === null) return { status: 'unverified', reason: 'no inclusion proof' };
  if (proof.index !== index || proof.size !== cp.size) return { status: 'unverified', reason: 'the proof is for another position or tree' };
  const leaf = leafHash(new TextEncoder().encode(eventText));
  let claimed: Uint8Array;
  let path: Uint8Array[];
  try {
    claimed = fromB64u(proof.leaf_hash);
    path = proof.hashes.map(fromB64u);
  } catch {
    return { status: 'unverified', reason: 'malformed proof' };
  }
  if (!equal(claimed, leaf)) return { status: 'unverified', reason: 'the event bytes differ from the logged leaf' };
  try {
    verifyInclusion(leaf, index, cp.size, path, cp.root);
    return { status: 'verified' };
  } catch {
    return { status: 'unverified', reason: 'the inclusion proof does not lead to the signed root' };
  }
}
