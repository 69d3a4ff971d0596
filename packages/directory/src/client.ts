/**
 * The client side: verifies every search, update and monitor answer of a
 * {@link DirectoryBuilder} (Keyward profile, docs/directory.md) and keeps the
 * last verified tree head. It refuses a head older than the one it holds
 * (`KT_ROLLBACK`), a head of the same size with another root or one that does
 * not extend its own (`KT_FORK`), and any proof that does not check out.
 */
import { abytes, auint, equalBytes } from './bytes.js';
import { commit as commitTo, verifyCommitment } from './commitment.js';
import { DirectoryError } from './errors.js';
import { evaluateBatch, fullSubtrees, logLeafValue } from './log-tree.js';
import { evaluatePrefixProof, type PrefixLookup } from './prefix-tree.js';
import { decodeDirectoryProof, type DirectoryProof } from './responses.js';
import { alabel, aversion, type Configuration } from './structs.js';
import { verifyTreeHead } from './tree-head.js';
import { vrfVerify } from './vrf.js';

/** A tree head this client verified: size, root, signature, and the full-subtree heads it retains. */
export interface VerifiedHead {
  readonly treeSize: number;
  readonly root: Uint8Array;
  readonly signature: Uint8Array;
  readonly fullSubtrees: readonly Uint8Array[];
  /** Timestamp of the rightmost entry. */
  readonly timestamp: number;
}

/** What a verified search proved. `value` is absent when the label (or version) does not exist. */
export interface SearchResult {
  readonly version: number;
  readonly value?: Uint8Array;
  readonly commitment?: Uint8Array;
  readonly vrfOutput: Uint8Array;
}

/** Client options. */
export interface ClientOptions {
  /** Clock for the freshness check; defaults to `Date.now`. */
  readonly now?: () => number;
  /** A head verified earlier (persisted state). */
  readonly head?: VerifiedHead;
}

/**
 * Verifies directory answers and keeps the last verified tree head.
 *
 * @example
 * const client = new DirectoryClient(config);
 * const found = client.verifySearch({ label }, await log.search({ label, last: client.treeSize }));
 */
export class DirectoryClient {
  private state: VerifiedHead | undefined;
  private readonly now: () => number;

  constructor(
    readonly config: Configuration,
    options: ClientOptions = {},
  ) {
    if (config.mode !== 1) throw new DirectoryError('KT_INVALID_ARGUMENT', 'only the contactMonitoring deployment mode is implemented');
    this.now = options.now ?? Date.now;
    this.state = options.head;
  }

  /** The last verified head, or undefined before the first answer. */
  get head(): VerifiedHead | undefined {
    return this.state;
  }

  /** The size to advertise as `last` in the next request. */
  get treeSize(): number | undefined {
    return this.state?.treeSize;
  }

  /**
   * Verifies the common part of every answer: VRF proofs, the prefix proof in the rightmost entry,
   * the log proof (inclusion of the rightmost leaf, consistency with the retained head), the
   * signature, freshness, rollback and fork checks. Returns the search keys and results.
   * The client state changes only after everything has been checked.
   */
  private verifyProof(
    label: Uint8Array,
    raw: DirectoryProof | Uint8Array,
    versions: readonly number[],
    commitments: readonly (Uint8Array | undefined)[],
  ): { proof: DirectoryProof; keys: Uint8Array[]; commit: () => void } {
    const proof = raw instanceof Uint8Array ? decodeDirectoryProof(raw, this.config.mode) : raw;
    const bad = (m: string): never => {
      throw new DirectoryError('KT_BAD_RESPONSE', m);
    };
    if (proof.versions.length !== versions.length) bad(`expected proofs for ${versions.length} versions, got ${proof.versions.length}`);
    const keys = proof.versions.map((vp, i) => {
      if (vp.version !== versions[i]) bad(`proof ${i} is for version ${vp.version}, expected ${versions[i]}`);
      return vrfVerify(this.config.vrfPublicKey, label, vp.version, vp.proof);
    });
    const lookups: PrefixLookup[] = keys.map((k, i) => ({ vrfOutput: k, ...(commitments[i] ? { commitment: commitments[i] } : {}) }));
    const prefixRoot = evaluatePrefixProof(lookups, proof.prefixProof);

    const prev = this.state;
    let size: number;
    let signature: Uint8Array;
    if (proof.fullTreeHead.type === 'same') {
      if (!prev) bad('the log answered "same" but this client has no tree head');
      size = prev!.treeSize;
      signature = prev!.signature;
    } else {
      size = proof.fullTreeHead.treeHead.treeSize;
      signature = proof.fullTreeHead.treeHead.signature;
      if (size < 1) bad('tree size 0');
      if (prev && size < prev.treeSize) throw new DirectoryError('KT_ROLLBACK', `the log shows size ${size}, this client already verified ${prev.treeSize}`);
    }
    const leaf = logLeafValue({ timestamp: proof.timestamp, prefixTree: prefixRoot });
    const observed = new Map<string, Uint8Array>();
    let root: Uint8Array;
    try {
      root = evaluateBatch(
        size,
        [[size - 1, leaf]],
        proof.inclusion,
        prev ? { size: prev.treeSize, heads: prev.fullSubtrees } : undefined,
        (s, l, v) => observed.set(`${s}/${l}`, v),
      );
    } catch (e) {
      // A proof that contradicts the retained heads is a fork, not just a bad proof.
      if (e instanceof DirectoryError && /retained head/.test(e.message)) throw new DirectoryError('KT_FORK', e.message, { cause: e });
      throw e;
    }
    if (proof.fullTreeHead.type === 'same') {
      if (!equalBytes(root, prev!.root)) throw new DirectoryError('KT_BAD_LOG_PROOF', 'the proof does not lead to the retained root');
    } else {
      verifyTreeHead(this.config, { treeSize: size, signature }, root);
      if (prev && prev.treeSize === size && !equalBytes(prev.root, root)) throw new DirectoryError('KT_FORK', `two roots for tree size ${size}`);
    }
    const now = this.now();
    if (proof.timestamp > now + this.config.maxAhead) bad('the rightmost entry is too far in the future');
    if (proof.fullTreeHead.type === 'updated' && now - proof.timestamp > this.config.maxBehind) bad('the tree head is stale');
    if (prev && proof.timestamp < prev.timestamp) bad('the rightmost timestamp went backwards');
    const heads = fullSubtrees(size).map((r) => observed.get(`${r.start}/${r.len}`));
    if (heads.some((h) => h === undefined)) bad('the proof does not determine the full subtrees');
    const next: VerifiedHead = { treeSize: size, root, signature, fullSubtrees: heads as Uint8Array[], timestamp: proof.timestamp };
    return { proof, keys, commit: () => (this.state = next) };
  }

  /**
   * Verifies a search answer. For the greatest version it checks that version `g` is present
   * (opening its commitment to the returned value) and `g+1` absent; for a fixed version that it
   * is present. A verified absence throws `KT_NOT_FOUND` (after updating the head).
   *
   * @example
   * const { version, value } = client.verifySearch({ label }, bytes);
   */
  verifySearch(request: { readonly label: Uint8Array; readonly version?: number }, response: DirectoryProof | Uint8Array): SearchResult {
    alabel(request.label);
    const res = response instanceof Uint8Array ? decodeDirectoryProof(response, this.config.mode) : response;
    const first = res.versions[0]?.version;
    if (first === undefined) throw new DirectoryError('KT_BAD_RESPONSE', 'no version proof');
    let versions: number[];
    if (request.version !== undefined) {
      aversion(request.version);
      versions = [request.version];
    } else {
      versions = first === 0 && res.versions.length === 1 && !res.opening ? [0] : [first, first + 1];
      if (first === 0xffffffff) versions = [first];
    }
    const wantFound = res.opening !== undefined;
    let commitment: Uint8Array | undefined;
    if (wantFound) {
      const r0 = res.prefixProof.results[0];
      if (r0?.type !== 'inclusion') throw new DirectoryError('KT_BAD_RESPONSE', 'an opening without an inclusion result');
    }
    // The commitment of an included leaf is not carried: recompute it from the opening.
    if (res.opening) {
      commitment = computeCommitment(res.opening.opening, request.label, versions[0]!, res.opening.value);
    }
    const { keys, commit } = this.verifyProof(request.label, res, versions, [commitment]);
    const results = res.prefixProof.results;
    if (wantFound) {
      if (versions.length === 2 && results[1]!.type === 'inclusion') throw new DirectoryError('KT_BAD_RESPONSE', `version ${versions[1]} exists: ${versions[0]} is not the greatest`);
      verifyCommitment(commitment!, res.opening.opening, request.label, versions[0]!, { value: res.opening.value });
      commit();
      return { version: versions[0]!, value: res.opening.value, commitment: commitment!, vrfOutput: keys[0]! };
    }
    if (results[0]!.type === 'inclusion') throw new DirectoryError('KT_BAD_RESPONSE', 'an inclusion result without an opening');
    commit();
    throw new DirectoryError('KT_NOT_FOUND', request.version === undefined ? 'the label has no versions' : `version ${request.version} does not exist`);
  }

  /**
   * Verifies the answer to the owner's own update: the new greatest version carries exactly the
   * value the owner submitted, at the version it expected.
   *
   * @example
   * const r = client.verifyUpdate({ label, value, expectedVersion: 3 }, await log.search({ label, last }));
   */
  verifyUpdate(
    request: { readonly label: Uint8Array; readonly value: Uint8Array; readonly expectedVersion?: number },
    response: DirectoryProof | Uint8Array,
  ): SearchResult {
    abytes(request.value, 'value');
    const before = this.state;
    const r = this.verifySearch({ label: request.label }, response);
    if (!r.value || !equalBytes(r.value, request.value) || (request.expectedVersion !== undefined && r.version !== request.expectedVersion)) {
      this.state = before;
      throw new DirectoryError('KT_BAD_RESPONSE', 'the log does not show the submitted value as the greatest version');
    }
    return r;
  }

  /**
   * Verifies a monitor answer: every version in `known` (with the commitment recorded when it was
   * first verified) is still present unchanged; with `greatestVersion` (owners), no version above it
   * exists — otherwise `KT_UNEXPECTED_VERSION`, a key the owner did not add.
   *
   * @example
   * client.verifyMonitor({ label, known: [{ version: 0, commitment }], greatestVersion: 0 }, bytes);
   */
  verifyMonitor(
    request: { readonly label: Uint8Array; readonly known: readonly { readonly version: number; readonly commitment: Uint8Array }[]; readonly greatestVersion?: number },
    response: DirectoryProof | Uint8Array,
  ): void {
    alabel(request.label);
    const versions = request.known.map((k) => k.version);
    const commitments: (Uint8Array | undefined)[] = request.known.map((k) => k.commitment);
    if (request.greatestVersion !== undefined) {
      versions.push(request.greatestVersion + 1);
      commitments.push(undefined);
    }
    const res = response instanceof Uint8Array ? decodeDirectoryProof(response, this.config.mode) : response;
    if (request.greatestVersion !== undefined) {
      const last = res.prefixProof.results[versions.length - 1];
      if (last?.type === 'inclusion') {
        throw new DirectoryError('KT_UNEXPECTED_VERSION', `version ${request.greatestVersion + 1} exists, which this owner did not add`);
      }
    }
    const { commit } = this.verifyProof(request.label, res, versions, commitments);
    res.prefixProof.results.forEach((r, i) => {
      if (i < request.known.length && r.type !== 'inclusion') throw new DirectoryError('KT_BAD_RESPONSE', `version ${versions[i]} is no longer in the log`);
    });
    commit();
  }

  /**
   * Compares this client's head with another signed head (gossip between clients or from a
   * witness). Equal sizes must have equal roots; otherwise the smaller head must be extended by
   * the larger one, which `consistency` (a §12.1 proof from the log) must show.
   * Throws `KT_FORK` when the two cannot both be honest.
   *
   * @example
   * client.checkHead(other, await log.consistency(client.treeSize, other.treeSize));
   */
  checkHead(other: { readonly treeSize: number; readonly root: Uint8Array; readonly signature: Uint8Array }, consistency?: readonly Uint8Array[]): void {
    const mine = this.state;
    if (!mine) throw new DirectoryError('KT_INVALID_ARGUMENT', 'this client has no tree head yet');
    auint(other.treeSize, 'tree size');
    verifyTreeHead(this.config, { treeSize: other.treeSize, signature: other.signature }, other.root);
    if (other.treeSize === mine.treeSize) {
      if (!equalBytes(other.root, mine.root)) throw new DirectoryError('KT_FORK', `two signed roots for tree size ${mine.treeSize}`);
      return;
    }
    if (other.treeSize < mine.treeSize) throw new DirectoryError('KT_INVALID_ARGUMENT', 'the other head is older: let its holder run the check');
    if (!consistency) throw new DirectoryError('KT_INVALID_ARGUMENT', 'a consistency proof is needed for heads of different sizes');
    let root: Uint8Array;
    try {
      root = evaluateBatch(other.treeSize, [], consistency, { size: mine.treeSize, heads: mine.fullSubtrees });
    } catch (e) {
      throw new DirectoryError('KT_FORK', 'the larger head is not consistent with this one', { cause: e });
    }
    if (!equalBytes(root, other.root)) throw new DirectoryError('KT_FORK', 'the larger head does not extend this one');
  }

  /**
   * The signed head to gossip to other clients or witnesses.
   *
   * @example
   * const h = client.signedHead();
   */
  signedHead(): { treeSize: number; root: Uint8Array; signature: Uint8Array } {
    const s = this.state;
    if (!s) throw new DirectoryError('KT_INVALID_ARGUMENT', 'this client has no tree head yet');
    return { treeSize: s.treeSize, root: s.root, signature: s.signature };
  }
}

function computeCommitment(opening: Uint8Array, label: Uint8Array, version: number, value: Uint8Array): Uint8Array {
  return commitTo(opening, label, version, { value });
}

