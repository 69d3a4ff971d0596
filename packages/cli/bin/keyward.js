#!/usr/bin/env node
// The bundle `npm run build` makes (scripts/build-cli.mjs): one module graph, half the start-up time.
import { main } from '../dist/bundle/main.js';

process.exitCode = await main(process.argv.slice(2));
