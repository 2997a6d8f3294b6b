/** @module Strict parsing of path ids and query values: anything unexpected is a 400, never a NaN passed downstream. */
import type { Context } from 'koa';
import { BadRequestError } from './errors.ts';

/** Project and repository names, as the project-file schema allows them. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\/[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const ID_PATTERN = /^[1-9][0-9]{0,14}$/;

/** A database id: a positive integer without sign, leading zeros or exponent. */
export function parseId(raw: string | undefined, what = 'id'): number {
  if (raw === undefined || !ID_PATTERN.test(raw))
    throw new BadRequestError(`${what} must be a positive integer`, 'INVALID_ID');
  return Number(raw);
}

/** A repository reference: numeric id or "<project>/<repo>" (URL-encoded slash in the path). */
export function parseRepoRef(raw: string | undefined): number | string {
  if (raw !== undefined && ID_PATTERN.test(raw)) return Number(raw);
  if (raw !== undefined && KEY_PATTERN.test(raw)) return raw;
  throw new BadRequestError('repository id must be a number or "<project>/<repository>"', 'INVALID_ID');
}

/** A project name from the path or the query. */
export function parseName(raw: string | undefined, what = 'project'): string {
  if (raw === undefined || !NAME_PATTERN.test(raw))
    throw new BadRequestError(`${what} name is invalid`, 'INVALID_NAME');
  return raw;
}

/** One query parameter as a string; repeating it (`?a=1&a=2`) is a client error, not "first wins". */
export function queryValue(ctx: Context, name: string): string | undefined {
  const v = ctx.query[name];
  if (Array.isArray(v)) throw new BadRequestError(`query parameter "${name}" must be given once`, 'INVALID_QUERY');
  return v;
}

/** An integer query parameter within [min, max]; `fallback` when absent. */
export function queryInt(ctx: Context, name: string, min: number, max: number, fallback: number): number;
export function queryInt(
  ctx: Context,
  name: string,
  min: number,
  max: number,
  fallback?: undefined,
): number | undefined;
export function queryInt(ctx: Context, name: string, min: number, max: number, fallback?: number): number | undefined {
  const v = queryValue(ctx, name);
  if (v === undefined) return fallback;
  if (!/^-?[0-9]{1,16}$/.test(v))
    throw new BadRequestError(`query parameter "${name}" must be an integer`, 'INVALID_QUERY');
  const n = Number(v);
  if (n < min || n > max) {
    throw new BadRequestError(`query parameter "${name}" must be between ${min} and ${max}`, 'INVALID_QUERY');
  }
  return n;
}

/** A boolean query parameter: true/false/1/0 (or present without value = true). */
export function queryBool(ctx: Context, name: string): boolean {
  const v = queryValue(ctx, name);
  if (v === undefined || v === 'false' || v === '0') return false;
  if (v === '' || v === 'true' || v === '1') return true;
  throw new BadRequestError(`query parameter "${name}" must be true or false`, 'INVALID_QUERY');
}
