/**
 * @module Delayed events of one actor system, indexed by the actor that scheduled them. xstate's scheduler cancels an
 * actor's delayed events (`cancelAll`, run by every actor that stops: each finished check, plan or deploy step) by
 * scanning the delayed events of the whole system. Every repository actor is a child of the supervisor and keeps its
 * next poll as a delayed event, so each stop cost O(repositories): at 10,000 repositories the main thread spent most
 * of its time in that scan. {@link indexScheduler} wraps the system's scheduler so that `cancelAll` visits only the
 * actor's own events; scheduling, firing and cancelling are otherwise xstate's own. It is installed only when the
 * scheduler has the expected shape, and otherwise leaves it alone.
 */
import type { AnyActorRef } from 'xstate';

/** The parts of xstate's system scheduler (and its snapshot) that the index wraps and reads. */
interface Scheduler {
  schedule(source: AnyActorRef, target: AnyActorRef, event: unknown, delay: number, id?: string): void;
  cancel(source: AnyActorRef, id: string): void;
  cancelAll(actorRef: AnyActorRef): void;
  indexed?: true;
}
interface SystemShape {
  scheduler?: Partial<Scheduler>;
  _snapshot?: { _scheduledEvents?: Record<string, unknown> };
}

/** xstate's own key of a delayed event in the system snapshot. */
const eventKey = (source: AnyActorRef, id: string) => `${source.sessionId}.${id}`;

/**
 * Makes `system.scheduler.cancelAll(actor)` cost O(that actor's delayed events) instead of O(all delayed events of
 * the system). Returns false (and changes nothing) when the scheduler does not look like xstate's. Idempotent.
 */
export function indexScheduler(system: unknown): boolean {
  const s = (system as SystemShape | null)?.scheduler;
  const snapshot = (system as SystemShape | null)?._snapshot;
  if (!s || typeof snapshot?._scheduledEvents !== 'object') return false;
  if (s.indexed) return true;
  const { schedule, cancel, cancelAll } = s;
  if (typeof schedule !== 'function' || typeof cancel !== 'function' || typeof cancelAll !== 'function') return false;
  // Per actor session: the ids of the delayed events it scheduled. An id whose event has fired is dropped the next
  // time that actor schedules (xstate deletes the event from the snapshot when it fires), so a set stays small.
  const bySession = new Map<string, Set<string>>();
  const pending = (key: string) => snapshot._scheduledEvents?.[key] !== undefined;
  const wrapped: Scheduler = {
    indexed: true,
    schedule(source, target, event, delay, id = Math.random().toString(36).slice(2)) {
      schedule.call(s, source, target, event, delay, id);
      let ids = bySession.get(source.sessionId);
      if (!ids) bySession.set(source.sessionId, (ids = new Set()));
      for (const old of ids) if (!pending(eventKey(source, old))) ids.delete(old);
      ids.add(id);
    },
    cancel(source, id) {
      cancel.call(s, source, id);
      const ids = bySession.get(source.sessionId);
      ids?.delete(id);
      if (ids?.size === 0) bySession.delete(source.sessionId);
    },
    cancelAll(actorRef) {
      const ids = bySession.get(actorRef.sessionId);
      bySession.delete(actorRef.sessionId);
      for (const id of ids ?? []) if (pending(eventKey(actorRef, id))) cancel.call(s, actorRef, id);
    },
  };
  Object.assign(s, wrapped);
  return true;
}
