/**
 * A tiny DOM builder: elements, attributes, listeners and text — never
 * HTML strings, so nothing the API returns can become markup (and the CSP
 * needs no 'unsafe-inline').
 *
 * @example
 * main.replaceChildren(h('h1', { tabindex: '-1' }, 'Keys'), h('button', { type: 'button', onclick: reload }, 'Reload'));
 */
export type Child = Node | string | number | null | undefined | false;
type Attr = string | number | boolean | null | undefined | ((ev: Event) => void);

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, Attr> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

/** A status mark that says its meaning in words, not colour alone. */
export function mark(kind: 'ok' | 'bad' | 'warn' | 'info', text: string): HTMLSpanElement {
  const icon = { ok: '✓', bad: '✗', warn: '!', info: '…' }[kind];
  return h('span', { class: `mark mark-${kind}` }, h('span', { 'aria-hidden': 'true' }, icon), ` ${text}`);
}

/** "90d", "12h", "45m" for a number of seconds. */
export function duration(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds >= 86400) return `${(seconds / 86400).toFixed(1)}d`;
  if (seconds >= 3600) return `${(seconds / 3600).toFixed(1)}h`;
  return `${Math.round(seconds / 60)}m`;
}

/** A UTC timestamp, short. */
export function when(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}
