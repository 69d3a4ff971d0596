/**
 * A private SoftHSM2 token per test: its own config file and token directory
 * (SOFTHSM2_CONF), so tests never touch a shared token store. The library
 * reads SOFTHSM2_CONF when it initializes, so a test process uses one token
 * directory at a time (set before the first Pkcs11Token.open).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsm {
  readonly dir: string;
  readonly tokenDir: string;
  readonly conf: string;
  readonly label: string;
  readonly pin: string;
  readonly soPin: string;
  /** Runs OpenSC's pkcs11-tool against this token (logged in). */
  pkcs11Tool(...args: string[]): string;
  cleanup(): void;
}

/** Creates a fresh token and points this process's SoftHSM at it. */
export function softHsm(label = 'keyward-test'): SoftHsm {
  const dir = mkdtempSync(path.join(tmpdir(), 'keyward-softhsm-'));
  const tokenDir = path.join(dir, 'tokens');
  mkdirSync(tokenDir);
  const conf = path.join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  const pin = randomBytes(8).toString('hex');
  const soPin = randomBytes(8).toString('hex');
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], { env, stdio: 'pipe' });
  return {
    dir, tokenDir, conf, label, pin, soPin,
    pkcs11Tool: (...args) => execFileSync('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', label, '--login', '--pin', pin, ...args], { env, encoding: 'utf8', stdio: 'pipe' }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A second token in the same token directory (same SOFTHSM2_CONF): for migrations between tokens. */
export function addToken(h: SoftHsm, label: string): { readonly label: string; readonly pin: string; pkcs11Tool(...args: string[]): string } {
  const pin = randomBytes(8).toString('hex');
  const env = { ...process.env, SOFTHSM2_CONF: h.conf };
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', h.soPin], { env, stdio: 'pipe' });
  return {
    label, pin,
    pkcs11Tool: (...args) => execFileSync('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', label, '--login', '--pin', pin, ...args], { env, encoding: 'utf8', stdio: 'pipe' }),
  };
}
