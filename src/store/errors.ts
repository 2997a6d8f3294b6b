/** @module Typed errors of the SQLite store. Messages name ids, keys and paths only, never stored text. */
import { AppError } from '../errors.ts';

/**
 * Stable codes of store failures:
 * - `STORE_OPEN_FAILED`: the database file cannot be created or opened (permissions, not a database…).
 * - `STORE_SCHEMA_TOO_NEW`: the file was written by a newer Shiparr; it is left untouched.
 * - `STORE_MIGRATION_FAILED`: a migration failed and was rolled back.
 * - `STORE_NOT_FOUND`: unknown repository key/id or deployment id (HTTP 404).
 * - `STORE_INVALID_INPUT`: a value outside its domain (status, trigger, limit…) (HTTP 422).
 * - `STORE_CONFLICT`: the write contradicts the stored state, e.g. finishing a finished deployment (HTTP 409).
 * - `STORE_UNAVAILABLE`: the health probe could not read the database (closed, I/O error…).
 */
export type StoreErrorCode =
  | 'STORE_OPEN_FAILED'
  | 'STORE_SCHEMA_TOO_NEW'
  | 'STORE_MIGRATION_FAILED'
  | 'STORE_NOT_FOUND'
  | 'STORE_INVALID_INPUT'
  | 'STORE_CONFLICT'
  | 'STORE_UNAVAILABLE';

const STATUS_OF: Record<StoreErrorCode, number> = {
  STORE_OPEN_FAILED: 500,
  STORE_SCHEMA_TOO_NEW: 500,
  STORE_MIGRATION_FAILED: 500,
  STORE_NOT_FOUND: 404,
  STORE_INVALID_INPUT: 422,
  STORE_CONFLICT: 409,
  STORE_UNAVAILABLE: 503,
};

/** A store failure with a stable `code`; client-caused ones (404/409/422) are safe to expose over HTTP. */
export class StoreError extends AppError {
  readonly code: StoreErrorCode;
  override readonly status: number;
  override readonly expose: boolean;
  constructor(code: StoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.status = STATUS_OF[code];
    this.expose = this.status < 500;
  }
}
