/**
 * The command table: every `keyward` command, in help order. Server-side
 * commands (`init`, `server`, `keys …`, `login`, `audit …`, `doctor`) slot in
 * here, one file each; groups are declared with `defineGroup`, e.g.
 *   defineGroup('keys', 'manage keys on the key service', [keysCreate, keysRotate])
 */
import type { Entry } from '../lib/command.js';
import { inspect } from './inspect.js';
import { keygen } from './keygen.js';
import { open } from './open.js';
import { seal } from './seal.js';

export const COMMANDS: readonly Entry[] = [keygen, seal, open, inspect];
