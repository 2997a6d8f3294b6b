/** @module Public surface of the SQLite store: the Store class, its row types, errors and migration helpers. */
export { Store, INTERRUPTED_ERROR, type StoreOptions } from './store.ts';
export { StoreError, type StoreErrorCode } from './errors.ts';
export { MIGRATIONS, SCHEMA_VERSION, migrate, readUserVersion } from './migrations.ts';
export { LOG_LIMIT_BYTES, LOG_STORED_MAX_BYTES, truncationMarker } from './log-cap.ts';
export type * from './types.ts';
