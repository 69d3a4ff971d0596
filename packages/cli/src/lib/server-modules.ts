/**
 * The parts of `@keyward/server` the CLI runs locally (init, unseal, offline
 * audit verify, `keyward server`), all from the package's public entry point.
 *
 * Loaded on first use (a dynamic import of `@keyward/server`, typed from it)
 * so that commands that never touch the key service — keygen, seal, open —
 * do not load fastify, SQLite and the rest at start.
 */
import type * as ServerNs from '@keyward/server';

export type ServerModule = typeof ServerNs;

let loaded: Promise<ServerModule> | undefined;

/** `@keyward/server`, imported once. */
export function serverModule(): Promise<ServerModule> {
  loaded ??= import('@keyward/server');
  return loaded;
}

// Names kept for the commands that use them (each is the whole public module).
export const custodians = serverModule;
export const unsealKey = serverModule;
export const shareFile = serverModule;
export const store = serverModule;
export const audit = serverModule;
export const serverEntry = serverModule;
