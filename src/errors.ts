/** @module Typed application errors. Every error carries a stable `code`; HTTP maps `status`. Never throw strings. */

import type { ConfigIssue, DeployStage } from './domain/types.ts';

export abstract class AppError extends Error {
  abstract readonly code: string;
  readonly status: number = 500;
  /** true when the message is safe and useful to show to an API client. */
  readonly expose: boolean = false;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Settings (environment) are invalid: the daemon refuses to start with exit code 2. */
export class SettingsError extends AppError {
  readonly code = 'SETTINGS_INVALID';
  readonly issues: string[];
  constructor(issues: string[]) {
    super(`invalid settings:\n  ${issues.join('\n  ')}`);
    this.issues = issues;
  }
}

export function formatConfigIssue(i: ConfigIssue): string {
  return `${i.file}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

export class NotFoundError extends AppError {
  readonly code = 'NOT_FOUND';
  override readonly status = 404;
  override readonly expose = true;
}

export class ConflictError extends AppError {
  readonly code = 'CONFLICT';
  override readonly status = 409;
  override readonly expose = true;
}

export class ValidationError extends AppError {
  readonly code = 'VALIDATION_FAILED';
  override readonly status = 422;
  override readonly expose = true;
}

/** A failed deploy step. `transient` failures (network, engine down) are retried with backoff. */
export class TaskError extends AppError {
  readonly code: string;
  readonly stage: DeployStage;
  readonly transient: boolean;
  constructor(stage: DeployStage, code: string, message: string, opts?: ErrorOptions & { transient?: boolean }) {
    super(message, opts);
    this.stage = stage;
    this.code = code;
    this.transient = opts?.transient ?? false;
  }
}
