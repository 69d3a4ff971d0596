/**
 * Summarises `.cpuprofile` files (as `npm run bench:server -- --profile=DIR`
 * writes them): the functions with the most self time, and the files.
 *
 *   node --import tsx bench/profile-summary.ts DIR_OR_FILE… [--top=30]
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[]; hitCount?: number }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' } } });
const top = Number(values.top);
const files = positionals.flatMap((p) => (statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(p, f)) : [p]));

const short = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '~/').replace(/^.*\/packages\//, '');

for (const file of files) {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  prof.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  const total = prof.endTime - prof.startTime;
  const idle = [...self].filter(([id]) => ['(idle)', '(program)'].includes(byId.get(id)!.callFrame.functionName)).reduce((a, [, t]) => a + t, 0);
  const fn = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, t] of self) {
    const f = byId.get(id)!.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${short(f.url)}:${f.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + t);
    const k2 = short(f.url) || f.functionName;
    byFile.set(k2, (byFile.get(k2) ?? 0) + t);
  }
  const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
  process.stdout.write(`\n== ${file}: ${(total / 1e6).toFixed(1)} s sampled, idle/program ${pct(idle)}\n-- self time by function\n`);
  for (const [k, t] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(t)}  ${k}\n`);
  process.stdout.write('-- self time by file\n');
  for (const [k, t] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, Math.ceil(top / 2))) process.stdout.write(`${pct(t)}  ${k}\n`);
}
