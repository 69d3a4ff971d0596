#!/usr/bin/env node
/**
 * Reproducible keyholder bundle (issue #8; docs/tee.md §Reproducible keyholder builds).
 *
 *   node scripts/build-keyholder.mjs [--out DIR] [--json]     build DIR/keyholder.mjs (default packages/server/dist/)
 *   node scripts/build-keyholder.mjs --check [--json]          build twice in fresh directories; exit 1 unless byte-identical
 *
 * One ES module holding the keyholder process (packages/server/src/keyholder/process.ts)
 * and every pure-JS dependency, built by esbuild (the pinned devDependency) from the
 * TypeScript sources with fixed options: no timestamps, no source maps, no absolute
 * paths (absWorkingDir is the repository root, and comments name files relative to it),
 * legal comments dropped, a fixed target. Native addons (pkcs11js: HSM mode only) stay
 * external: they are loaded from node_modules and are not part of the measurement.
 *
 * The measurement is SHA-256 (and SHA-384) of the bundle's bytes. What a deployment pins:
 *   - TPM / measured boot: the loader extends SHA-256(bundle) into a PCR before it starts
 *     the keyholder; the pinned value is PCR = SHA-256(previous PCR ‖ SHA-256(bundle)),
 *     printed here as `pcr16` for a freshly reset PCR 16 (what the tests do).
 *   - Nitro Enclaves: the bundle is a file in the EIF; PCR0 covers the whole image
 *     (kernel, init, Node and the bundle), so pin PCR0 of the EIF built from this bundle
 *     (`nitro-cli build-enclave` prints it), and publish both hashes.
 *   - SEV-SNP / TDX: MEASUREMENT / MRTD (+ RTMRs) cover firmware, kernel and initrd:
 *     put the bundle in the measured initrd (or extend it into an RTMR) and pin those.
 * Output: { file, bytes, sha256, sha384, pcr16 } (with --json, as JSON).
 */
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = 'packages/server/src/keyholder/process.ts';
/**
 * The esbuild options every Keyward Node bundle shares (this one and the CLI's, scripts/build-cli.mjs):
 * ES modules for Node 20 from the TypeScript sources; native addons and optional native accelerators
 * never bundled; a `require` for the CommonJS dependencies (an ES module has none of its own).
 */
export const NODE_BUNDLE = {
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  conditions: ['source'],
  external: ['pkcs11js', 'better-sqlite3', 'cbor-extract', 'pg-native'],
  legalComments: 'none',
  logLevel: 'error',
  banner: { js: "import { createRequire as __kwCreateRequire } from 'node:module'; const require = __kwCreateRequire(import.meta.url);" },
};

/** Builds the bundle into `outDir`; returns its path and measurement. */
export async function buildKeyholder(outDir) {
  mkdirSync(outDir, { recursive: true });
  const outfile = join(outDir, 'keyholder.mjs');
  await build({ ...NODE_BUNDLE, entryPoints: [ENTRY], outfile, sourcemap: false, minify: false, charset: 'utf8' });
  return measure(outfile);
}

/** SHA-256 / SHA-384 of a bundle, and the PCR value after extending SHA-256 into a reset (all-zero) PCR. */
export function measure(file) {
  const bytes = readFileSync(file);
  const sha256 = createHash('sha256').update(bytes).digest();
  const pcr16 = createHash('sha256').update(Buffer.alloc(32)).update(sha256).digest('hex');
  return { file, bytes: bytes.length, sha256: sha256.toString('hex'), sha384: createHash('sha384').update(bytes).digest('hex'), pcr16 };
}

async function main() {
  const { values } = parseArgs({ options: { out: { type: 'string' }, check: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    process.stdout.write('usage: node scripts/build-keyholder.mjs [--out DIR] [--check] [--json]\n  --check  build twice in fresh directories and fail unless the bundles are byte-identical\n');
    return 0;
  }
  if (values.check) {
    const dirs = [mkdtempSync(join(tmpdir(), 'kw-kh-a-')), mkdtempSync(join(tmpdir(), 'kw-kh-b-'))];
    try {
      const a = await buildKeyholder(dirs[0]);
      const b = await buildKeyholder(dirs[1]);
      const same = readFileSync(a.file).equals(readFileSync(b.file));
      const out = { reproducible: same, sha256: a.sha256, sha256_second: b.sha256, sha384: a.sha384, pcr16: a.pcr16, bytes: a.bytes };
      process.stdout.write(values.json ? `${JSON.stringify(out)}\n` : `${same ? 'reproducible' : 'NOT reproducible'}: ${a.sha256}${same ? '' : ` vs ${b.sha256}`}\n`);
      return same ? 0 : 1;
    } finally {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  }
  // The default is where `npm run build` puts it: the keyholder `keyward server` and `keyward keyholder serve` run.
  const m = await buildKeyholder(resolve(values.out ?? join(ROOT, 'packages/server/dist')));
  process.stdout.write(values.json ? `${JSON.stringify(m)}\n` : `${m.file}\n  bytes  ${m.bytes}\n  sha256 ${m.sha256}\n  sha384 ${m.sha384}\n  pcr16  ${m.pcr16} (SHA-256 extended into a reset PCR)\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then((code) => process.exit(code), (e) => { process.stderr.write(`build-keyholder: ${e instanceof Error ? e.message : String(e)}\n`); process.exit(1); });
}
