/** @module Absolute path of the fake compose CLI script (see README.md beside it). */
import { fileURLToPath } from 'node:url';

/** Use as `SHIPARR_COMPOSE_COMMAND`; behaviour is chosen with FAKE_COMPOSE_MODE / FAKE_COMPOSE_LOG / FAKE_COMPOSE_PIDS. */
export const FAKE_COMPOSE = fileURLToPath(new URL('./fake-compose', import.meta.url));
