/** The `keyward` CLI run from source (tests of the witness spawn it as a real, separate process). */
import { main } from '../../../cli/src/main.js';

process.exitCode = await main(process.argv.slice(2));
