/** @module Typed errors of the SOPS/age layer. Messages name files, key paths and public keys only, never secrets. */
import { AppError } from '../errors.ts';

/** Stable codes of {@link SopsError}; the deploy task forwards them as `TaskResult.code`. */
export type SopsErrorCode =
  | 'SOPS_NO_KEY'
  | 'SOPS_NO_MATCHING_KEY'
  | 'SOPS_MAC_MISMATCH'
  | 'SOPS_MALFORMED'
  | 'SOPS_UNSUPPORTED_STANZA'
  | 'SOPS_UNSUPPORTED'
  | 'SOPS_DECRYPT_FAILED'
  | 'SOPS_READ_FAILED'
  | 'SOPS_WRITE_FAILED'
  | 'SOPS_BAD_PATH'
  | 'SOPS_TIMEOUT';

/**
 * A SOPS or age decryption failure. The message is safe to log and to show: it never contains plaintext,
 * data keys or identities (callers must keep it that way when adding context).
 */
export class SopsError extends AppError {
  readonly code: SopsErrorCode;
  constructor(code: SopsErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
