/** Pages whose API is not built yet: they say which issue adds them. */
import type { Page } from '../main.js';
import { h } from '../lib/dom.js';

export function placeholderPage(title: string, text: string): Page {
  return (main) => {
    main.append(
      h('h1', { tabindex: '-1' }, title),
      h('p', { class: 'notice', role: 'note' }, h('strong', {}, 'Not built yet. '), text),
    );
  };
}
