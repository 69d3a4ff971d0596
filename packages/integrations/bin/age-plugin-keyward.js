#!/usr/bin/env node
// The age plugin for Keyward-managed keys (docs/integrations.md §age plugin).
// age finds it on PATH by name: `age -r age1keyward1…` / `age -d -i keyward-identity.txt`.
import { main } from '../dist/age-plugin/main.js';

process.exitCode = await main(process.argv.slice(2));
