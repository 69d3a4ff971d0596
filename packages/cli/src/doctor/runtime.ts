/**
 * Runtime checks: the Node.js and OpenSSL versions against the advisory
 * list's minimums and end-of-life dates, and the age of the list itself.
 */
import semver from 'semver';
import type { AdvisoryList } from './advisories.js';
import { finding, type Finding } from './findings.js';

const DAY_MS = 86_400_000;

export interface RuntimeVersions {
  /** e.g. `20.20.2` (without the `v`). */
  readonly node: string;
  /** As Node reports it, e.g. `3.0.19` or `3.0.15+quic`. */
  readonly openssl: string;
}

export const currentRuntime = (): RuntimeVersions => ({ node: process.versions.node, openssl: process.versions.openssl });

/** Findings about the runtime and the list's own age, as of `now`. */
export function runtimeFindings(list: AdvisoryList, rt: RuntimeVersions, now: Date): Finding[] {
  const out: Finding[] = [];
  const ageDays = Math.floor((now.getTime() - Date.parse(`${list.updated}T00:00:00Z`)) / DAY_MS);
  if (ageDays > list.maxAgeDays) {
    out.push(finding('advisories-stale', `the advisory list is ${ageDays} days old (updated ${list.updated}; limit ${list.maxAgeDays} days)`,
      'upgrade Keyward (each release bundles a fresh list), or give a current list: keyward doctor --advisories FILE', { details: { updated: list.updated, ageDays } }));
  }

  const node = semver.coerce(rt.node)?.version ?? null;
  const upgradeNode = 'install a current Node.js LTS release (https://nodejs.org/en/about/previous-releases), then restart the server: keyward server --data DIR';
  if (node !== null) {
    const line = list.runtime.node.lines.find((l) => l.major === semver.major(node));
    const minimum = line?.minimum ?? list.runtime.node.minimum;
    if (semver.lt(node, list.runtime.node.minimum) || semver.lt(node, minimum)) {
      out.push(finding('node-below-minimum', `Node.js ${node} is below the minimum ${semver.lt(node, list.runtime.node.minimum) ? list.runtime.node.minimum : minimum}`, upgradeNode,
        { details: { version: node, minimum, note: line?.note ?? null } }));
    }
    if (line && Date.parse(`${line.eol}T00:00:00Z`) <= now.getTime()) {
      out.push(finding('node-eol', `Node.js ${line.major} reached end of life on ${line.eol}`, upgradeNode, { details: { version: node, eol: line.eol } }));
    }
  }

  const ssl = semver.coerce(rt.openssl)?.version ?? null;
  if (ssl !== null) {
    const lineName = `${semver.major(ssl)}.${semver.minor(ssl)}`;
    const line = list.runtime.openssl.lines.find((l) => l.line === lineName);
    const minimum = line?.minimum ?? list.runtime.openssl.minimum;
    const fix = "OpenSSL comes with Node.js: install a Node.js release that bundles a supported OpenSSL (check with: node -p process.versions.openssl), then restart the server";
    if (semver.lt(ssl, list.runtime.openssl.minimum) || semver.lt(ssl, minimum)) {
      out.push(finding('openssl-below-minimum', `OpenSSL ${rt.openssl} is below the minimum ${minimum}`, fix, { details: { version: rt.openssl, minimum, note: line?.note ?? null } }));
    }
    if (line && Date.parse(`${line.eol}T00:00:00Z`) <= now.getTime()) {
      out.push(finding('openssl-eol', `OpenSSL ${line.line} reached end of public support on ${line.eol}`, fix, { details: { version: rt.openssl, eol: line.eol } }));
    }
  }
  return out;
}
