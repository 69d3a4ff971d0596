/**
 * A bar chart of events over time as inline SVG (built with createElementNS:
 * no library, no inline style, nothing the CSP refuses), with the numbers
 * also in a visually hidden list for screen readers.
 */
import { h } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';

function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, ...children: (Node | string)[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

export interface Bucket { readonly start: Date; readonly count: number; readonly denied: number }

/** Counts events into `n` equal buckets ending now (hourly over the last n hours if `hourly`, else daily). */
export function bucketize(times: readonly { time: string; outcome: string }[], n: number, stepMs: number, end = Date.now()): Bucket[] {
  const last = Math.ceil(end / stepMs) * stepMs;
  const first = last - n * stepMs;
  const out = Array.from({ length: n }, (_, i) => ({ start: new Date(first + i * stepMs), count: 0, denied: 0 }));
  for (const t of times) {
    const i = Math.floor((Date.parse(t.time) - first) / stepMs);
    if (i < 0 || i >= n) continue;
    out[i]!.count++;
    if (t.outcome !== 'allowed') out[i]!.denied++;
  }
  return out;
}

/** The chart: one bar per bucket (allowed and refused stacked), labelled axes, a hidden data table. */
export function barChart(id: string, title: string, buckets: readonly Bucket[], label: (d: Date) => string): HTMLElement {
  const W = 600, H = 160, pad = 28;
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const bw = (W - pad) / Math.max(1, buckets.length);
  const bars = buckets.flatMap((b, i) => {
    const x = pad + i * bw;
    const hAll = ((H - pad) * b.count) / max;
    const hDenied = ((H - pad) * b.denied) / max;
    const tip = `${label(b.start)}: ${b.count} event${b.count === 1 ? '' : 's'}${b.denied ? `, ${b.denied} refused` : ''}`;
    return [
      s('rect', { class: 'bar', x: x + 1, y: H - pad - hAll, width: Math.max(1, bw - 2), height: hAll, 'data-count': b.count }, s('title', {}, tip)),
      ...(b.denied ? [s('rect', { class: 'bar-denied', x: x + 1, y: H - pad - hDenied, width: Math.max(1, bw - 2), height: hDenied }, s('title', {}, tip))] : []),
    ];
  });
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${id}-title`, class: 'chart', preserveAspectRatio: 'none' },
    s('title', { id: `${id}-title` }, `${title}: ${buckets.reduce((a, b) => a + b.count, 0)} events, at most ${max} in one interval`),
    s('line', { class: 'axis', x1: pad, y1: H - pad, x2: W, y2: H - pad }),
    s('text', { class: 'axis-label', x: 0, y: 12 }, String(max)),
    s('text', { class: 'axis-label', x: 0, y: H - pad }, '0'),
    s('text', { class: 'axis-label', x: pad, y: H - 8 }, buckets[0] ? label(buckets[0].start) : ''),
    s('text', { class: 'axis-label', x: W, y: H - 8, 'text-anchor': 'end' }, buckets.at(-1) ? label(buckets.at(-1)!.start) : ''),
    ...bars);
  return h('figure', { id, class: 'chart-figure' },
    svg,
    h('figcaption', {}, title),
    // A list, not a table: inside the stacked narrow-window key table a hidden nested table sent Chromium's layout into a loop.
    h('ul', { class: 'sr-only' }, ...buckets.map((b) => h('li', {}, `${label(b.start)}: ${b.count} events, ${b.denied} refused`))));
}
