// Type-aware lint for every package; run by the test command.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'bench/results/**', '**/*.js', '**/*.cjs', '**/*.mjs', 'packages/console/build/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Packages that must run in browsers: no Node-only modules, except in their Node adapters.
    files: ['packages/core/src/**', 'packages/tlog/src/**', 'packages/directory/src/**', 'packages/client/src/**'],
    ignores: ['packages/core/src/platform/node.ts', 'packages/core/src/node/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['node:*'], message: 'browser-compatible packages must not import Node-only APIs (use the platform adapter)' }] }],
    },
  },
  {
    // Integrations (Node only): crypto only through @keyward/core (or node:crypto), never the server's internals.
    files: ['packages/integrations/src/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['@noble/*', '@hpke/*', '@scure/*'], message: 'integrations use crypto only through @keyward/core or node:crypto' },
        { group: ['@keyward/server', '@keyward/server/*'], message: 'integrations talk to the key service through @keyward/client' },
      ] }],
    },
  },
  {
    files: ['**/test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
