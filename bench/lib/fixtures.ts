/** Keys, files and external programs the bench sections share. */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateIdentity, type HpkeIdentity, type HpkeRecipient } from '@keyward/core';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = path.join(ROOT, 'packages/cli/bin/keyward.js');

export interface Fixtures {
  readonly dir: string;
  readonly identity: HpkeIdentity;
  readonly recipient: HpkeRecipient;
  /** Keyward identity file (for the CLI). */
  readonly identityFile: string;
  /** age X25519 identity file and its recipient (for the age CLI). */
  readonly ageKeyFile: string | null;
  readonly ageRecipient: string | null;
  cleanup(): void;
}

export async function fixtures(): Promise<Fixtures> {
  const dir = mkdtempSync(path.join(tmpdir(), 'keyward-bench-'));
  const identity = await generateIdentity('x25519');
  const recipient = await identity.recipient();
  const identityFile = path.join(dir, 'keyward.key');
  writeFileSync(identityFile, `# public key: ${recipient.toString()}\n${identity.toString()}\n`, { mode: 0o600 });
  let ageKeyFile: string | null = path.join(dir, 'age.key');
  let ageRecipient: string | null = null;
  try {
    execFileSync('age-keygen', ['-o', ageKeyFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    ageRecipient = /public key: (age1\S+)/.exec(readFileSync(ageKeyFile, 'utf8'))?.[1] ?? null;
  } catch {
    ageKeyFile = null;
  }
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  return { dir, identity, recipient, identityFile, ageKeyFile, ageRecipient, cleanup };
}

/** Writes `size` random bytes to `file` without holding them in memory at once. */
export function randomFile(file: string, size: number): void {
  const fd = openSync(file, 'w');
  try {
    const block = randomBytes(Math.min(size, 4 * 2 ** 20));
    for (let o = 0; o < size; o += block.length) writeSync(fd, block, 0, Math.min(block.length, size - o));
  } finally {
    closeSync(fd);
  }
}

/** Runs a program; throws with its stderr when it fails. */
export function run(cmd: string, args: readonly string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} ${args[0] ?? ''} failed (${r.status ?? r.signal}): ${r.stderr?.toString().trim().slice(0, 300)}`);
}

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

/**
 * Whether `node packages/cli/bin/keyward.js` seals and opens a file here.
 * The bin runs the built `dist/`; it is rebuilt first when the sources are newer.
 * Returns null when it works, else why not.
 */
export function probeCli(f: Fixtures): string | null {
  try {
    const built = (() => { try { return statSync(path.join(ROOT, 'packages/cli/dist/main.js')).mtimeMs; } catch { return 0; } })();
    const sources = Math.max(newestMtime(path.join(ROOT, 'packages/cli/src')), newestMtime(path.join(ROOT, 'packages/core/src')));
    if (sources > built) {
      process.stdout.write('building the CLI (npm run build) …\n');
      execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    }
    const input = path.join(f.dir, 'probe.txt');
    writeFileSync(input, 'keyward bench probe\n');
    run(process.execPath, [CLI, 'seal', '-r', f.recipient.toString(), '-o', `${input}.kw`, input]);
    run(process.execPath, [CLI, 'open', '-i', f.identityFile, '-o', `${input}.out`, `${input}.kw`]);
    if (readFileSync(`${input}.out`, 'utf8') !== 'keyward bench probe\n') return 'the CLI round trip returned other bytes';
    return null;
  } catch (e) {
    return (e as Error).message.split('\n')[0] ?? 'failed';
  }
}
