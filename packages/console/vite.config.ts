/**
 * Builds the console into dist/ (served by `keyward server` at /console):
 * two pages (the console app and the /console/seal demo), hashed assets, no
 * inline script, style or data: URLs, so the server's strict CSP holds.
 * `@keyward/core`, `@keyward/tlog` and (for the seal demo's directory look-ups)
 * `@keyward/client` with `@keyward/directory` are bundled from their sources.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here('./'),
  base: '/console/',
  publicDir: false,
  logLevel: 'warn',
  resolve: { conditions: ['source', 'module', 'browser', 'development|production'] },
  build: {
    outDir: here('./dist'),
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    rollupOptions: { input: { main: here('./index.html'), seal: here('./seal.html') } },
  },
});
