/**
 * Keeps the documentation true to the code: every error code is documented
 * in docs/errors.md (and no code that does not exist), and docs/format.md
 * states every domain-separation label and every hard limit verbatim.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../src/errors.js';
import { LABELS, LIMITS, SCRYPT } from '../src/format/constants.js';

const DOCS = new URL('../../../docs/', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, DOCS), 'utf8');

const errorsMd = read('errors.md');
const formatMd = read('format.md');
const threatMd = read('threat-model-seal.md');
const known = new Set(Object.keys(ERROR_CODES));

/** Every `KW_…` code the text mentions in backticks. */
const mentionedCodes = (md: string): Set<string> => new Set([...md.matchAll(/`(KW_[A-Z0-9_]+)`/g)].map((m) => m[1]!));

void test('docs/errors.md documents every code of ERROR_CODES', () => {
  const missing = [...known].filter((code) => !errorsMd.includes(`\`${code}\``));
  assert.deepEqual(missing, [], `undocumented error codes: ${missing.join(', ')}`);
});

void test('docs/errors.md documents each code in exactly one table row', () => {
  for (const code of known) {
    const rows = errorsMd.split('\n').filter((l) => l.startsWith(`| \`${code}\` |`));
    assert.equal(rows.length, 1, `${code} should head exactly one row, found ${rows.length}`);
  }
});

void test('the docs mention no error code that does not exist', () => {
  // errors.md's sections from "## Key service" on belong to the other packages, whose own tests check them.
  const sealPart = errorsMd.slice(0, errorsMd.indexOf('\n## Key service'));
  assert.ok(sealPart.length > 1000, 'errors.md has its seal sections before "## Key service"');
  for (const [name, md] of [['errors.md', sealPart], ['format.md', formatMd], ['threat-model-seal.md', threatMd]] as const) {
    const unknown = [...mentionedCodes(md)].filter((code) => !known.has(code));
    assert.deepEqual(unknown, [], `${name} mentions unknown codes: ${unknown.join(', ')}`);
  }
});

void test('docs/format.md states every label of LABELS verbatim', () => {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (const [name, bytes] of Object.entries(LABELS)) {
    const label = decoder.decode(bytes);
    assert.ok(formatMd.includes(`\`${label}\``), `label ${name} ("${label}") is missing from format.md`);
    const hex = Buffer.from(bytes).toString('hex');
    assert.ok(formatMd.includes(hex), `label ${name}: hex ${hex} is missing from format.md`);
  }
});

void test('docs/format.md states every value of LIMITS and SCRYPT in its limits table', () => {
  const rows = formatMd.split('\n').filter((l) => l.startsWith('|'));
  const values = [
    ...Object.entries(LIMITS).map(([k, v]) => [`LIMITS.${k}`, v] as const),
    ...Object.entries(SCRYPT).map(([k, v]) => [`SCRYPT.${k}`, v] as const),
  ];
  for (const [name, value] of values) {
    const number = new RegExp(`(?<![\\d.,])${value}(?![\\d.,])`);
    const row = rows.find((l) => l.includes(`\`${name}\``) && number.test(l));
    assert.ok(row, `format.md has no table row naming \`${name}\` with the value ${value}`);
  }
});

void test('the docs link to each other and to the test vectors', () => {
  assert.match(formatMd, /errors\.md/);
  assert.match(formatMd, /threat-model-seal\.md/);
  assert.match(formatMd, /packages\/core\/test\/vectors\/envelope-v1-positive\.json/);
  assert.match(formatMd, /packages\/core\/test\/vectors\/envelope-v1-negative\.json/);
  assert.match(formatMd, /age\.md/);
});
