/**
 * @module The one `api/events` EventSource of the page: parsed events go to every listener, and the connection
 * state (connecting, live, lost, recovered) to the banner. EventSource reconnects by itself; listeners of
 * `onReconnect` refetch what they show, since events sent while the stream was down are gone.
 */
import { EVENT_TYPES, type UiEvent } from './api.ts';

/** Connection as the banner shows it. */
export type Connection = 'connecting' | 'live' | 'lost' | 'recovered';

type Listener = (e: UiEvent) => void;

const listeners = new Set<Listener>();
const connectionListeners = new Set<(c: Connection) => void>();
const reconnectListeners = new Set<() => void>();
let connection: Connection = 'connecting';
let source: EventSource | null = null;
let wasLost = false;

function setConnection(c: Connection): void {
  connection = c;
  for (const l of connectionListeners) l(c);
}

/** Delay before opening a new stream after the browser gave one up (an error status such as 503 or 401). */
const RETRY_MS = 3000;

function open(): void {
  const es = new EventSource('api/events');
  source = es;
  es.onopen = () => {
    if (wasLost) {
      wasLost = false;
      setConnection('recovered');
      for (const l of reconnectListeners) l();
    } else setConnection('live');
  };
  es.onerror = () => {
    wasLost = true;
    setConnection('lost');
    // EventSource retries a dropped stream by itself, but gives up for good after an HTTP error answer.
    if (es.readyState === EventSource.CLOSED) setTimeout(open, RETRY_MS);
  };
  for (const type of EVENT_TYPES) {
    es.addEventListener(type, (ev) => {
      let e: UiEvent;
      try {
        e = JSON.parse((ev as MessageEvent<string>).data) as UiEvent;
      } catch {
        return;
      }
      for (const l of listeners) l(e);
    });
  }
}

/** Opens the stream once (later calls do nothing). */
export function connect(): void {
  if (!source) open();
}

/** Calls `fn` for every event; returns the unsubscribe function. */
export function onEvent(fn: Listener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Calls `fn` on every connection change (and once now); returns the unsubscribe function. */
export function onConnection(fn: (c: Connection) => void): () => void {
  connectionListeners.add(fn);
  fn(connection);
  return () => connectionListeners.delete(fn);
}

/** Calls `fn` each time the stream comes back after a drop; returns the unsubscribe function. */
export function onReconnect(fn: () => void): () => void {
  reconnectListeners.add(fn);
  return () => reconnectListeners.delete(fn);
}
