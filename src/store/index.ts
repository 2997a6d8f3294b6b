/** @module Public surface of the SQLite store: the Store class, its row types, errors and migration helpers. */
export { Store, INTERRUPTED_ERROR } from './store.ts';
export { StoreError } from './errors.ts';
export { MIGRATIONS, SCHEMA_VERSION, migrate, readUserVersion } from './migrations.ts';
export { LOG_LIMIT_BYTES, LOG_STORED_MAX_BYTES, truncationMarker } from './log-cap.ts';
export type * from './types.ts';
