/**
 * The command table: every `keyward` command, in help order. Server-side
 * commands live one per file in `server/` (the five key-version state changes
 * share `server/keys-version.ts`); groups are declared with `defineGroup`.
 * `seal` and `open` are wrapped so that `--kms` goes through the key service
 * (`server/kms.ts`); without a kms flag they are the commands of `seal.ts` and `open.ts`.
 */
import { defineGroup, type Entry } from '../lib/command.js';
import { doctor } from './doctor.js';
import { inspect } from './inspect.js';
import { keygen } from './keygen.js';
import { auditExport } from './server/audit-export.js';
import { auditVerify } from './server/audit-verify.js';
import { hsmRewrap, hsmVerifyRecovery } from './server/hsm.js';
import { init } from './server/init.js';
import { keysCreate } from './server/keys-create.js';
import { keysReleasePolicySet, keysReleasePolicyShow } from './server/keys-release-policy.js';
import { keysImport, keysImportParams } from './server/keys-import.js';
import { keysList } from './server/keys-list.js';
import { keysRotate } from './server/keys-rotate.js';
import { keysShow } from './server/keys-show.js';
import { keysUpdate } from './server/keys-update.js';
import { keysCancelDeletion, keysDestroy, keysDisableVersion, keysEnableVersion, keysScheduleDeletion } from './server/keys-version.js';
import { openWithKms, sealWithKms } from './server/kms.js';
import { login } from './server/login.js';
import { mfaActivate, mfaEnroll, mfaList, mfaRecoveryCodes, mfaRemove } from './server/mfa.js';
import { approvalsApprove, approvalsDeny, approvalsEnrollKey, approvalsList, approvalsRequest, approvalsShow, quorumClear, quorumList, quorumSet } from './server/approvals.js';
import { migrate } from './server/migrate.js';
import { policyGet } from './server/policy-get.js';
import { policyPut } from './server/policy-put.js';
import { principalDisable, principalList, principalSetRoles, principalShow } from './server/principal.js';
import { sealServer } from './server/seal-server.js';
import { serverCommand } from './server/server.js';
import { keyholderServe } from './server/keyholder-serve.js';
import { signingKeyList, signingKeyRevoke } from './server/signing-key.js';
import { status } from './server/status.js';
import { tokenCreate } from './server/token-create.js';
import { tokenRevoke } from './server/token-revoke.js';
import { unseal } from './server/unseal.js';
import { rekeyCancel, rekeyStart, rekeyStatus, rekeySubmit } from './server/rekey.js';
import { witness } from './server/witness.js';
import {
  directoryApprove, directoryApproveRequest, directoryEnroll, directoryGroup, directoryMonitor, directoryRevoke, directorySafetyNumber, directoryShow, reseal,
} from './server/directory.js';

export const COMMANDS: readonly Entry[] = [
  keygen, sealWithKms, openWithKms, inspect,
  init, serverCommand, migrate, unseal, sealServer, status,
  defineGroup('keyholder', 'run the keyholder apart from the API, in a TEE, behind the attested channel (docs/tee.md)', [keyholderServe]),
  defineGroup('keys', 'manage keys on the key service', [
    keysCreate, keysImportParams, keysImport, keysList, keysShow, keysUpdate, keysRotate, keysDisableVersion, keysEnableVersion, keysScheduleDeletion, keysCancelDeletion, keysDestroy,
    defineGroup('release-policy', 'release policies: which attested TEE workloads get data keys (docs/tee.md)', [keysReleasePolicySet, keysReleasePolicyShow]),
  ]),
  defineGroup('token', 'create and revoke bearer tokens', [tokenCreate, tokenRevoke]),
  defineGroup('policy', 'store and read policies', [policyPut, policyGet]),
  defineGroup('principal', 'list, show, set roles of and disable principals', [principalList, principalShow, principalSetRoles, principalDisable]),
  login,
  defineGroup('mfa', 'second factors (TOTP; WebAuthn in the console) and recovery codes', [mfaEnroll, mfaActivate, mfaList, mfaRemove, mfaRecoveryCodes]),
  defineGroup('approvals', 'quorum approval: request, list, approve, deny; enroll your approval key (docs/mfa.md)', [approvalsList, approvalsShow, approvalsRequest, approvalsApprove, approvalsDeny, approvalsEnrollKey]),
  defineGroup('quorum', 'quorum rules: M of a role must approve an operation (docs/mfa.md)', [quorumList, quorumSet, quorumClear]),
  defineGroup('signing-key', 'list and revoke request-signing (device) keys', [signingKeyList, signingKeyRevoke]),
  defineGroup('audit', 'export the audit log; verify an export offline', [auditExport, auditVerify]),
  defineGroup('hsm', 'HSM-wrapped mode: recovery shares, migration (docs/hsm.md)', [hsmVerifyRecovery, hsmRewrap]),
  defineGroup('rekey', 'unseal-share rotation: new shares for the same master key, online (docs/operations/lost-shares.md)', [rekeyStart, rekeySubmit, rekeyStatus, rekeyCancel]),
  defineGroup('directory', 'the public-key directory: enroll, approve and revoke devices, groups, safety numbers, self-monitoring (docs/directory.md)', [
    directoryEnroll, directoryApproveRequest, directoryApprove, directoryRevoke, directoryShow, directoryGroup, directorySafetyNumber, directoryMonitor,
  ]),
  reseal,
  witness,
  doctor,
];
