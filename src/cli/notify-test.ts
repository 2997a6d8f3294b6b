/** @module `shiparr notify-test <url>`: sends a test notification and reports whether the service accepted it. */
import { silentLogger } from '../logger.ts';
import { createNotifier, formatMessage, validateNotificationUrl } from '../notify/index.ts';

/** The streams the command writes to (process.stdout/stderr in the CLI, buffers in tests). */
export interface OutStream {
  write(chunk: string): unknown;
}

const USAGE = 'usage: shiparr notify-test <shoutrrr-url> [--timeout SECONDS]\n';

/**
 * Sends a `test` message to one URL.
 * @returns 0 when the service accepted it, 1 when it did not (reason printed with the token masked), 2 on usage errors.
 */
export async function notifyTestCommand(args: string[], out: OutStream, err: OutStream): Promise<number> {
  let url: string | undefined;
  let timeoutMs: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--help' || a === '-h') {
      out.write(USAGE);
      return 0;
    }
    if (a === '--timeout') {
      const s = Number(args[++i]);
      if (!Number.isFinite(s) || s <= 0) {
        err.write(`--timeout needs a positive number of seconds\n${USAGE}`);
        return 2;
      }
      timeoutMs = s * 1000;
    } else if (a.startsWith('-')) {
      err.write(`unknown option ${a.slice(0, 40)}\n${USAGE}`);
      return 2;
    } else if (url === undefined) {
      url = a;
    } else {
      err.write(USAGE);
      return 2;
    }
  }
  if (!url) {
    err.write(USAGE);
    return 2;
  }
  const problem = validateNotificationUrl(url);
  if (problem) {
    err.write(`notification URL ${problem}\n`);
    return 1;
  }
  const notifier = createNotifier({ log: silentLogger(), ...(timeoutMs ? { timeoutMs } : {}) });
  const result = await notifier.send(
    url,
    formatMessage({ event: 'test', project: '', repository: '', commit: null, trigger: 'cli' }),
  );
  if (result.ok) {
    out.write(`ok: test notification accepted by ${result.service} (${result.url})\n`);
    return 0;
  }
  err.write(
    `failed: ${result.service} (${result.url}): ${result.error ?? 'unknown error'} after ${result.attempts} attempt(s)\n`,
  );
  return 1;
}
