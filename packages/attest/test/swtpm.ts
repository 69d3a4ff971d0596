/**
 * A private software TPM (Debian `swtpm`) for tests, driven with `tpm2-tools`
 * as PITFALLS.md describes: manufactured by `swtpm_setup --create-ek-cert`
 * with a private swtpm-localca directory (so each SoftTpm has its own
 * "manufacturer" root CA), served on free TCP ports, `tpm2_flushcontext -t`
 * after every command (the emulator has few transient slots).
 *
 * If swtpm or tpm2-tools are missing, `SoftTpm.start` throws: the tests that
 * use it fail loudly instead of skipping (scripts/install-test-deps.sh
 * installs them).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TOOLS = ['swtpm', 'swtpm_setup', 'swtpm_localca', 'tpm2_createak', 'tpm2_quote', 'tpm2_checkquote', 'tpm2_activatecredential', 'tpm2_nvread', 'tpm2_readpublic', 'tpm2_pcrread', 'tpm2_pcrextend', 'tpm2_flushcontext'];

/** Throws, naming what is missing, unless every tool the TPM tests need is installed. */
export function requireTpmTools(): void {
  const missing = TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length > 0) throw new Error(`TPM tests need swtpm, swtpm-tools and tpm2-tools (missing: ${missing.join(', ')}); run scripts/install-test-deps.sh`);
}

/** Two consecutive free TCP ports on 127.0.0.1 (server, control). */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const p = await listenOnce(0);
    if (p < 65535 && (await listenOnce(p + 1).then(() => true, () => false))) return p;
  }
  throw new Error('no free port pair for swtpm');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => {
      const a = s.address();
      const p = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(p));
    });
  });
}

export type AkKind = 'ecdsa' | 'rsassa' | 'rsapss';

/** A running swtpm with its own manufacturer CA. Call `stop()` when done. */
export class SoftTpm {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly pid: number,
  ) {}

  static async start(): Promise<SoftTpm> {
    requireTpmTools();
    const dir = mkdtempSync(join(tmpdir(), 'keyward-swtpm-'));
    const ca = join(dir, 'ca');
    const state = join(dir, 'state');
    execFileSync('mkdir', ['-p', ca, state]);
    writeFileSync(join(dir, 'localca.conf'), `statedir = ${ca}\nsigningkey = ${ca}/signkey.pem\nissuercert = ${ca}/issuercert.pem\ncertserial = ${ca}/certserial\n`);
    writeFileSync(join(dir, 'localca.options'), '--platform-manufacturer Keyward-test\n--platform-version 2.1\n--platform-model swtpm\n');
    writeFileSync(
      join(dir, 'setup.conf'),
      `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${dir}/localca.conf\ncreate_certs_tool_options = ${dir}/localca.options\nactive_pcr_banks = sha256\n`,
    );
    execFileSync('swtpm_setup', ['--tpm2', '--tpmstate', state, '--create-ek-cert', '--config', join(dir, 'setup.conf'), '--overwrite', '--logfile', join(dir, 'setup.log')], { stdio: 'pipe' });
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePortPair();
      const pidFile = join(dir, 'swtpm.pid');
      const r = spawnSync(
        'swtpm',
        ['socket', '--tpm2', '--tpmstate', `dir=${state}`, '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--flags', 'not-need-init,startup-clear', '--daemon', '--pid', `file=${pidFile}`],
        { stdio: 'pipe' },
      );
      if (r.status === 0) {
        const pid = Number(readFileSync(pidFile, 'utf8').trim());
        const tpm = new SoftTpm(dir, port, pid);
        tpm.tool('tpm2_pcrread', ['sha256:0']); // ready?
        return tpm;
      }
      lastError = r.stderr.toString();
    }
    throw new Error(`swtpm did not start: ${String(lastError)}`);
  }

  /** Runs a tpm2-tools command against this TPM, then flushes transient objects. */
  tool(name: string, args: readonly string[]): Buffer {
    const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${this.port}` };
    try {
      return execFileSync(name, args, { env, cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as { stderr?: Buffer; status?: number };
      throw new Error(`${name} ${args.join(' ')} failed (${err.status}): ${err.stderr?.toString() ?? ''}`, { cause: e });
    } finally {
      spawnSync('tpm2_flushcontext', ['-t'], { env, stdio: 'ignore' });
    }
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** The RSA EK certificate (DER) from NV index 0x01c00002. */
  ekCertificate(): Uint8Array {
    this.tool('tpm2_nvread', ['0x1c00002', '-o', 'ek.der']);
    return readFileSync(this.path('ek.der'));
  }

  /** The RSA EK's TPM2B_PUBLIC (persistent handle 0x81010001). */
  ekPublic(): Uint8Array {
    this.tool('tpm2_readpublic', ['-c', '0x81010001', '-o', 'ek.pub', '-f', 'tss']);
    return readFileSync(this.path('ek.pub'));
  }

  /** The private manufacturer root CA and the intermediate that issued the EK certificate. */
  manufacturerCa(): { root: string; issuer: string } {
    return { root: readFileSync(this.path('ca/swtpm-localca-rootca-cert.pem'), 'utf8'), issuer: readFileSync(this.path('ca/issuercert.pem'), 'utf8') };
  }

  /** Creates an AK under the EK; returns its context file name and TPM2B_PUBLIC, and its PEM. */
  createAk(name: string, kind: AkKind): { ctx: string; public: Uint8Array; pem: string } {
    const [g, s] = kind === 'ecdsa' ? ['ecc', 'ecdsa'] : ['rsa', kind];
    this.tool('tpm2_createak', ['-C', '0x81010001', '-c', `${name}.ctx`, '-G', g, '-g', 'sha256', '-s', s, '-u', `${name}.pub`, '-n', `${name}.name`, '-f', 'tss']);
    this.tool('tpm2_readpublic', ['-c', `${name}.ctx`, '-o', `${name}.pem`, '-f', 'pem']);
    return { ctx: `${name}.ctx`, public: readFileSync(this.path(`${name}.pub`)), pem: readFileSync(this.path(`${name}.pem`), 'utf8') };
  }

  /** TPM2_ActivateCredential with the EK (policy session for the endorsement hierarchy). */
  activate(akCtx: string, credentialFile: Uint8Array): Uint8Array {
    writeFileSync(this.path('cred.in'), credentialFile);
    rmSync(this.path('cred.out'), { force: true });
    this.tool('tpm2_startauthsession', ['--policy-session', '-S', 'session.ctx']);
    try {
      this.tool('tpm2_policysecret', ['-S', 'session.ctx', '-c', 'e']);
      this.tool('tpm2_activatecredential', ['-c', akCtx, '-C', '0x81010001', '-i', 'cred.in', '-o', 'cred.out', '-P', 'session:session.ctx']);
    } finally {
      const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${this.port}` };
      spawnSync('tpm2_flushcontext', ['session.ctx'], { env, cwd: this.dir, stdio: 'ignore' });
    }
    return readFileSync(this.path('cred.out'));
  }

  /** A quote over `selection` (e.g. `sha256:0,1,2,3,7,16`) with `nonce`; returns the raw TPMS_ATTEST and TPMT_SIGNATURE. */
  quote(akCtx: string, selection: string, nonce: Uint8Array, tag = 'q', scheme?: AkKind): { attest: Uint8Array; signature: Uint8Array; msgFile: string; sigFile: string; pcrFile: string } {
    const msgFile = `${tag}.msg`;
    const sigFile = `${tag}.sig`;
    const pcrFile = `${tag}.pcrs`;
    this.tool('tpm2_quote', ['-c', akCtx, '-l', selection, '-q', Buffer.from(nonce).toString('hex'), '-m', msgFile, '-s', sigFile, '-o', pcrFile, '-g', 'sha256', ...(scheme === undefined ? [] : [`--scheme=${scheme}`])]);
    return { attest: readFileSync(this.path(msgFile)), signature: readFileSync(this.path(sigFile)), msgFile, sigFile, pcrFile };
  }

  /** PCR values of one bank, from `tpm2_pcrread`. */
  pcrRead(bank: string, indices: readonly number[]): Record<number, Uint8Array> {
    const out = this.tool('tpm2_pcrread', [`${bank}:${indices.join(',')}`]).toString();
    const values: Record<number, Uint8Array> = {};
    for (const m of out.matchAll(/^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$/gm)) values[Number(m[1])] = new Uint8Array(Buffer.from(m[2]!, 'hex'));
    return values;
  }

  extend(index: number, digestHex: string): void {
    this.tool('tpm2_pcrextend', [`${index}:sha256=${digestHex}`]);
  }

  /** `tpm2_checkquote` with the AK PEM: the reference answer. Returns true when it accepts. */
  checkquote(akPem: string, q: { msgFile: string; sigFile: string; pcrFile: string }, nonce: Uint8Array): boolean {
    writeFileSync(this.path('ak-check.pem'), akPem);
    const r = spawnSync('tpm2_checkquote', ['-u', 'ak-check.pem', '-m', q.msgFile, '-s', q.sigFile, '-f', q.pcrFile, '-g', 'sha256', '-q', Buffer.from(nonce).toString('hex')], { cwd: this.dir, stdio: 'pipe' });
    return r.status === 0;
  }

  /**
   * The reference answer for RSASSA-PSS quotes: `tpm2_checkquote` (tpm2-tools
   * 5.4) verifies them with PKCS#1 v1.5 padding and rejects valid ones, so the
   * `openssl dgst` command checks the signature instead (the PCR digest and
   * nonce are checked by our verifier in the same test).
   */
  opensslVerifyPss(akPem: string, q: { msgFile: string; signature: Uint8Array }): boolean {
    writeFileSync(this.path('ak-check.pem'), akPem);
    writeFileSync(this.path('pss.sig'), q.signature.subarray(6)); // sigAlg, hash, size
    const r = spawnSync('openssl', ['dgst', '-sha256', '-verify', 'ak-check.pem', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:auto', '-signature', 'pss.sig', q.msgFile], { cwd: this.dir, stdio: 'pipe' });
    return r.status === 0;
  }

  stop(): void {
    try {
      process.kill(this.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
