/**
 * Package-level checks: every error code is documented in the Attestation
 * section of docs/errors.md (and that section names no other code), every
 * public value has JSDoc with an example, src/ imports only node: modules and
 * its own files (no runtime dependency), and docs/tee.md names every
 * measurement and version key the verifiers produce.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as attest from '../src/index.js';
import { ATTEST_ERROR_CODES, AttestError, isAttestError } from '../src/index.js';

const SRC = new URL('../src/', import.meta.url);
const ERRORS_MD = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const TEE_MD = readFileSync(new URL('../../../docs/tee.md', import.meta.url), 'utf8');
const section = ERRORS_MD.slice(ERRORS_MD.indexOf('## Attestation')).split(/\n## /)[0]!;

function walk(dir: URL, rel = ''): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  for (const name of readdirSync(new URL(rel, dir))) {
    const p = rel + name;
    if (statSync(new URL(p, dir)).isDirectory()) out.push(...walk(dir, p + '/'));
    else if (name.endsWith('.ts')) out.push({ file: p, text: readFileSync(new URL(p, dir), 'utf8') });
  }
  return out;
}
const sources = walk(SRC);

void test('every error code has exactly one row in the Attestation section of docs/errors.md, and it names no other code', () => {
  assert.ok(ERRORS_MD.includes('## Attestation'));
  for (const code of Object.keys(ATTEST_ERROR_CODES)) {
    const rows = section.split('\n').filter((l) => l.startsWith(`| \`${code}\` |`));
    assert.equal(rows.length, 1, `${code} should head exactly one row`);
  }
  for (const code of ERRORS_MD.match(/\bATTEST_[A-Z_]+\b/g) ?? []) if (code !== 'ATTEST_ERROR_CODES') assert.ok(code in ATTEST_ERROR_CODES, `docs/errors.md names unknown code ${code}`);
  for (const code of TEE_MD.match(/\bATTEST_[A-Z_]+\b/g) ?? []) assert.ok(code in ATTEST_ERROR_CODES, `docs/tee.md names unknown code ${code}`);
});

void test('AttestError carries its code and default message; isAttestError filters by code', () => {
  const e = new AttestError('ATTEST_BAD_SIGNATURE');
  assert.equal(e.name, 'AttestError');
  assert.equal(e.message, ATTEST_ERROR_CODES.ATTEST_BAD_SIGNATURE);
  assert.ok(isAttestError(e, 'ATTEST_BAD_SIGNATURE'));
  assert.ok(!isAttestError(e, 'ATTEST_MALFORMED'));
  assert.ok(!isAttestError(new Error('x')));
});

void test('src/ imports only node: modules and its own files', () => {
  for (const { file, text } of sources) {
    for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)) {
      const spec = m[1]!;
      assert.ok(spec.startsWith('./') || spec.startsWith('../') || spec.startsWith('node:'), `${file} imports ${spec}`);
    }
  }
});

void test('every public value has JSDoc with an @example', () => {
  const all = sources.map((s) => s.text).join('\n');
  for (const name of Object.keys(attest)) {
    const decl = new RegExp(`/\\*\\*((?:(?!\\*/)[\\s\\S])*)\\*/\\s*export (?:function|class|const) ${name}\\b`);
    const m = decl.exec(all);
    assert.ok(m, `${name} has no JSDoc`);
    assert.ok(m[1]!.includes('@example'), `${name}'s JSDoc has no @example`);
  }
});

void test('docs/tee.md names every measurement and version key', () => {
  const keys = ['PCR0', 'sha256:PCR7', 'MEASUREMENT', 'HOST_DATA', 'ID_KEY_DIGEST', 'AUTHOR_KEY_DIGEST', 'FAMILY_ID', 'IMAGE_ID', 'MRENCLAVE', 'MRSIGNER', 'ISVPRODID', 'MRTD', 'RTMR0', 'MRSEAM', 'MRSIGNERSEAM', 'MRCONFIGID', 'MROWNER', 'MROWNERCONFIG', 'snp.guestSvn', 'snp.tcb.bootloader', 'snp.tcb.tee', 'snp.tcb.snp', 'snp.tcb.microcode', 'snp.firmware', 'sgx.isvsvn', 'sgx.qe.isvsvn', 'tdx.module.minorSvn', 'tdx.module.majorSvn', 'tdx.qe.isvsvn', 'tpm.firmware'];
  for (const k of keys) assert.ok(TEE_MD.includes(`\`${k}\``), `docs/tee.md does not name \`${k}\``);
});

void test('the shipped AMD and Intel roots are self-signed CAs with the documented fingerprints', () => {
  const expected: [string, string, string][] = [
    [attest.AMD_ARK_MILAN_PEM, 'ARK-Milan', '69:D0:63:B4:53:44:D2:6A:2E:94:E1:F4:21:0D:E4:9E:F5:55:30:82:87:D4:C1:74:44:5C:95:63:9A:54:0B:CD'],
    [attest.AMD_ARK_GENOA_PEM, 'ARK-Genoa', '4C:65:98:D1:9C:18:71:9C:5D:FD:4A:7D:33:5F:67:4E:5B:FE:1D:8F:80:0C:EA:2C:F2:70:C1:0D:10:3D:B2:F1'],
    [attest.INTEL_SGX_ROOT_CA_PEM, 'Intel SGX Root CA', '44:A0:19:6B:2B:99:F8:89:B8:E1:49:E9:5B:80:7A:35:0E:74:24:96:43:99:E8:85:A7:CB:B8:CC:FA:B6:74:D3'],
  ];
  for (const [pem, cn, fp] of expected) {
    const c = new X509Certificate(pem);
    assert.ok(c.subject.includes(`CN=${cn}`), cn);
    assert.equal(c.fingerprint256, fp, cn);
    assert.ok(c.ca && c.verify(c.publicKey), `${cn} is not a self-signed CA`);
    assert.ok(TEE_MD.includes(fp), `docs/tee.md does not state the ${cn} fingerprint`);
  }
});
