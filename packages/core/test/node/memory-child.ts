/**
 * Child process of memory.test.ts: seals and opens a large sparse file with
 * the file API and reports resident memory as JSON on stdout:
 * { idle, peakSeal, peakOpen } in bytes, plus the timings.
 * argv: <input> <sealed> <opened> (the input must exist; the outputs must not).
 */
import { generateIdentity } from '../../src/index.js';
import { openFile, sealFile } from '../../src/node/index.js';

const [input, sealed, opened] = process.argv.slice(2) as [string, string, string];
const identity = await generateIdentity('x25519');
const recipient = await identity.recipient();

const rss = () => process.memoryUsage.rss();
const settle = () => new Promise((r) => setTimeout(r, 200));

/** Runs `f` while sampling RSS every 2 ms; returns the highest sample. */
async function peakDuring(f: () => Promise<unknown>): Promise<{ peak: number; ms: number }> {
  let peak = rss();
  const timer = setInterval(() => { peak = Math.max(peak, rss()); }, 2);
  const t = performance.now();
  try {
    await f();
  } finally {
    clearInterval(timer);
  }
  return { peak: Math.max(peak, rss()), ms: performance.now() - t };
}

await settle();
const idle = Math.max(rss(), (await settle(), rss()));
const s = await peakDuring(() => sealFile(input, sealed, { recipients: [recipient] }));
const o = await peakDuring(() => openFile(sealed, opened, { identities: [identity] }));
process.stdout.write(JSON.stringify({ idle, peakSeal: s.peak, peakOpen: o.peak, sealMs: s.ms, openMs: o.ms }));
