/**
 * @module Deployment log capping. Policy: KEEP THE HEAD. Text is appended until the stored log reaches
 * `LOG_STORED_MAX_BYTES`; the rest is dropped and only counted, and readers get a
 * `…[truncated N bytes]` marker after the kept text. Why the head: appends stay a cheap SQL `logs || ?`
 * (no rewrite of a 256 KiB string per line), the first lines say what was deployed and how, and the
 * failure reason is stored separately in `deployments.error`.
 */

/** Hard cap of what `getDeploymentLogs` returns for one deployment (kept text + marker): 256 KiB. */
export const LOG_LIMIT_BYTES = 256 * 1024;
/** Room reserved for the truncation marker, so kept text + marker never exceed the limit. */
const MARKER_RESERVE_BYTES = 64;
/** Maximum bytes of log text stored per deployment. */
export const LOG_STORED_MAX_BYTES = LOG_LIMIT_BYTES - MARKER_RESERVE_BYTES;

/** The note appended to a log that lost `dropped` bytes to the cap. */
export function truncationMarker(dropped: number): string {
  return `\n…[truncated ${dropped} bytes]\n`;
}

/**
 * Splits `text` into what fits in `room` bytes of UTF-8 and the number of bytes dropped. Never cuts a
 * multi-byte character in half (the cut moves back to a character boundary).
 */
export function fitUtf8(text: string, room: number): { kept: string; dropped: number } {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= room) return { kept: text, dropped: 0 };
  if (room <= 0) return { kept: '', dropped: bytes };
  const buf = Buffer.from(text, 'utf8');
  let end = room;
  // 10xxxxxx is a continuation byte: the character starting before it would be split.
  while (end > 0 && ((buf[end] as number) & 0xc0) === 0x80) end--;
  return { kept: buf.subarray(0, end).toString('utf8'), dropped: bytes - end };
}
