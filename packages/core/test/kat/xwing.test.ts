/** X-Wing KEM draft vectors (draft-connolly-cfrg-xwing-kem) through KEMS.xwing. */
import { defineXwing } from './kat-suites.js';

defineXwing();
