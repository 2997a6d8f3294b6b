/** @module Shared pieces: the ticking clock, relative times, the confirmation dialog, the notice line. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { absolute, relative, tone } from './format.ts';

let now = Date.now();
const tickers = new Set<(n: number) => void>();
setInterval(() => {
  now = Date.now();
  for (const t of tickers) t(now);
}, 30_000);

/** The current time, updated every 30 s (relative times follow it). */
export function useNow(): number {
  const [n, setN] = useState(now);
  useEffect(() => {
    tickers.add(setN);
    return () => tickers.delete(setN);
  }, []);
  return n;
}

/** A relative time with the absolute one on hover. */
export function Time({ at, now: n }: { at: string | null | undefined; now: number }) {
  if (!at) return <span>–</span>;
  return (
    <time dateTime={at} title={absolute(at)}>
      {relative(at, n)}
    </time>
  );
}

/** A state or status badge. */
export function Badge({ value }: { value: string }) {
  return <span class={tone(value)}>{value}</span>;
}

/** What a confirmation asks. */
export interface ConfirmRequest {
  title: string;
  body: ComponentChildren;
  confirm: string;
  danger?: boolean;
  run: () => Promise<void>;
}

/** A modal confirmation (native <dialog>: focus moves in, Escape cancels, focus returns to the opener). */
function ConfirmDialog({ req, onClose }: { req: ConfirmRequest; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => opener?.focus();
  }, []);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await req.run();
      ref.current?.close();
      onClose();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" onClose={onClose} onCancel={onClose}>
      <h2 id="confirm-title">{req.title}</h2>
      <div>{req.body}</div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="buttons">
        <button type="button" onClick={() => ref.current?.close()}>
          Cancel
        </button>
        <button type="button" class={req.danger ? 'danger' : 'primary'} disabled={busy} onClick={confirm}>
          {req.confirm}
        </button>
      </div>
    </dialog>
  );
}

/** Open/close state of a confirmation dialog. */
export function useConfirm(): [ComponentChildren, (r: ConfirmRequest) => void] {
  const [req, setReq] = useState<ConfirmRequest | null>(null);
  const node = req ? <ConfirmDialog req={req} onClose={() => setReq(null)} /> : null;
  return [node, setReq];
}
