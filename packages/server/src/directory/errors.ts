/**
 * The directory's API error codes (issue #6). Listed in docs/errors.md
 * ("Directory service"); merged into the API registry (api/errors.ts), which
 * also carries the `KT_*` codes of `@keyward/directory`.
 */
export const DIRECTORY_API_ERRORS = {
  KW_DIR_UNKNOWN_ENTITY: 'No such identity or group in the directory.',
  KW_DIR_UNKNOWN_DEVICE: 'The identity has no current device with this id.',
  KW_DIR_ENTITY_EXISTS: 'An identity or group with this name exists, or the principal is already bound to another identity.',
  KW_DIR_TOKEN_INVALID: 'The enrollment token is unknown or was issued for another identity; nothing changed.',
  KW_DIR_TOKEN_EXPIRED: 'The enrollment token has expired; ask an administrator for a new one.',
  KW_DIR_TOKEN_USED: 'The enrollment token was used already (tokens are single-use).',
  KW_DIR_ALREADY_ENROLLED: 'The identity has devices: a further device is approved by one of them, not enrolled with a token.',
  KW_DIR_DEVICE_EXISTS: 'The identity already has a device with this id, or the request-signing key id is taken.',
  KW_DIR_RECORD_INVALID: 'A device record or change is malformed (names, key lengths, encodings, or a time too far from the server clock).',
  KW_DIR_BAD_SIGNATURE: "A change signature (the new device's proof of possession, or the approving or revoking device's signature) does not verify.",
  KW_DIR_NOT_A_DEVICE: 'The signer, request-signing key or unwrap recipient is not a current directory device of the identity.',
  KW_DIR_STALE_VERSION: 'The change was signed for another label version (another change came first): search again and re-sign.',
  KW_DIR_NOT_ENABLED: 'The directory is not enabled on this server (server config directory.enabled).',
  KW_DIR_NOT_WITNESSED: 'No directory head is witnessed yet: no witnesses are configured, or fewer than k of them cosigned (docs/witness.md §The directory).',
} as const;

export type DirectoryApiErrorCode = keyof typeof DIRECTORY_API_ERRORS;

/** HTTP statuses of the directory's codes and of `@keyward/directory`'s. */
export const DIRECTORY_STATUS: Readonly<Record<string, number>> = {
  KW_DIR_UNKNOWN_ENTITY: 404, KW_DIR_UNKNOWN_DEVICE: 404, KW_DIR_ENTITY_EXISTS: 409, KW_DIR_TOKEN_INVALID: 403,
  KW_DIR_TOKEN_EXPIRED: 410, KW_DIR_TOKEN_USED: 409, KW_DIR_ALREADY_ENROLLED: 409, KW_DIR_DEVICE_EXISTS: 409,
  KW_DIR_RECORD_INVALID: 400, KW_DIR_BAD_SIGNATURE: 403, KW_DIR_NOT_A_DEVICE: 403, KW_DIR_STALE_VERSION: 409, KW_DIR_NOT_ENABLED: 404, KW_DIR_NOT_WITNESSED: 503,
  KT_NOT_FOUND: 404, KT_CONFLICT: 409,
};
