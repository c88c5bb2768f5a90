/**
 * What a run's inspection events tell its session. The root's `subscribe` misses child transitions
 * (docs/xstate-semantics.md), so every snapshot of any actor in the run's system marks the session
 * dirty; a machine actor's new state value becomes a `state.entered` history entry, placed before the
 * entries its macrostep's steps recorded; the root's microsteps count transitions (a signal that took
 * one was received); and the event the root is processing is kept to name it if an action throws.
 */
import type { AnyActor, AnyActorRef, InspectionEvent } from 'xstate';
import type { Span } from '@opentelemetry/api';
import type { HistoryEntry } from '../persistence/runs.ts';
import { actorPath, isMachineActor } from './actor-paths.ts';
import type { SessionHost } from './session-host.ts';
import type { HandledEvent } from './session-restore.ts';
import { ATTR } from './telemetry.ts';

/**
 * Microsteps between two checks of the time the run's actors have held the event loop. An
 * `always` loop, a `raise` answered by a `raise`, or actors that send each other events for ever spin
 * without end in plain XState (xstate 5.33): here one `engine.send` blocked the worker's event loop,
 * and after its lease every worker that claimed the run in turn.
 */
const SPIN_CHECK_EVERY = 16;

/**
 * How long the run's actors may hold the event loop at one stretch: a fifth of the lease (its safety
 * margin: past it the worker's own fencing gives the run up anyway), at least a second. A legitimate
 * burst — 15,000 events raised by one action, a batch of signals — takes a fraction of that.
 */
export function maxSpinMs(leaseMs: number): number {
  return Math.max(1_000, leaseMs / 5);
}

/**
 * The CPU time the process has used, in ms. A stretch is measured in it, not on the clock: a process
 * the machine did not schedule for a second (a loaded VM) would otherwise fail a run that only waited.
 */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000 || 1;
}

/** Turns of the event loop so far (see {@link eventLoopTurn}). */
let turns = 0;
let turnCounted = false;
/** Node's own, taken at load: a test's fake timers would hold the count for ever, every stretch one. */
const realSetImmediate = globalThis.setImmediate;

/**
 * The current turn of the event loop: one `setImmediate` per turn for the whole process counts it, so
 * that a run knows when its actors gave the loop back. One per run per turn cost the c=50 benchmark
 * ~8 % of the worker's CPU (bench/README.md, twenty-second session).
 */
function eventLoopTurn(): number {
  if (!turnCounted) {
    turnCounted = true;
    realSetImmediate(() => {
      turns += 1;
      turnCounted = false;
    });
  }
  return turns;
}

/** What {@link RunInspection} needs of its session. */
export interface InspectedSession {
  readonly runId: string;
  readonly host: SessionHost;
  readonly segmentSpan: Span;
  isEnded(): boolean;
  actor(): AnyActor | undefined;
  /** Queued history not yet written. */
  history(): HistoryEntry[];
  markDirty(): void;
  /** The root took `taken` transitions. */
  rootTransitioned(taken: number): void;
}

export class RunInspection {
  /**
   * Set while the session replays a restored snapshot (`start()`): the states it enters again are not
   * news (no `state.entered` history or event). Not a phase: the replay may end the run.
   */
  replaying = false;
  /**
   * The last event the root machine began to process, from any source (a delayed `after` / `raise` /
   * `sendTo`, a child's `sendParent`), with the state it met: names the event when an action it runs
   * throws and no external event is being delivered.
   */
  processing: HandledEvent = null;
  /** Each machine actor's last state value: a state name as it is, a nested value as its JSON. */
  private readonly stateValues = new Map<string, string>();
  /** Each machine actor's path (an actor's id and parent never change): computed once, not per snapshot. */
  private readonly paths = new WeakMap<AnyActorRef, string>();
  /** History index where the macrostep being processed began: its state entries go there. */
  private macrostepMark = 0;
  /** The process's CPU time at the stretch's first check (0: not read yet); see {@link maxSpinMs}. */
  private spinSince = 0;
  private spinEvents = 0;
  /** The event-loop turn of the run's current stretch. */
  private spinTurn = -1;

  constructor(private readonly session: InspectedSession) {}

  /**
   * Handles one inspection event; never throws into the actor (an exception here would propagate into
   * it) — except to end actors that never settle ({@link maxSpinMs}).
   */
  onInspect(ev: InspectionEvent): void {
    const s = this.session;
    const turn = eventLoopTurn();
    if (this.spinTurn !== turn) {
      // A new stretch: the run's actors gave the event loop back since their last event.
      this.spinTurn = turn;
      this.spinEvents = 0;
      this.spinSince = 0;
    } else if (
      // Only in a microstep, which runs inside XState's transition: the actor errors, and the run fails
      // naming the event and state (thrown with an event relayed, it would reach the sender instead).
      ev.type === '@xstate.microstep' &&
      ++this.spinEvents % SPIN_CHECK_EVERY === 0
    ) {
      // The CPU time is read from the first check on (a stretch of fewer microsteps never reads it).
      if (this.spinSince === 0) this.spinSince = cpuMs();
      else if (cpuMs() - this.spinSince > maxSpinMs(s.host.leaseMs)) {
        // The actor errors now: what runs after it in this turn is a stretch of its own.
        this.spinEvents = 0;
        this.spinSince = 0;
        throw new Error(
          `The machine ran for more than ${maxSpinMs(s.host.leaseMs)} ms without letting the worker do anything else — an eventless (\`always\`) transition, a \`raise\`, or events between actors that loop. Plain XState would spin for ever, blocking every run of the worker; the run fails instead.`,
        );
      }
    }
    try {
      const actor = s.actor();
      if (ev.type === '@xstate.event') {
        if (isMachineActor(ev.actorRef as AnyActorRef)) this.macrostepMark = s.history().length;
        if (ev.actorRef === actor && actor) {
          this.processing = { type: (ev.event as { type: string }).type, state: (actor.getSnapshot() as { value?: unknown }).value };
        }
        return;
      }
      if (ev.type === '@xstate.microstep') {
        // Transitions the root took (targetless ones too, which leave its snapshot object as it was):
        // an event that took one was received, and buffered events may be taken now.
        const taken = (ev as { _transitions?: unknown[] })._transitions?.length ?? 0;
        if (ev.actorRef === actor && taken > 0) s.rootTransitioned(taken);
        return;
      }
      if (ev.type !== '@xstate.snapshot' || s.isEnded() || !actor) return;
      const ref = ev.actorRef as AnyActorRef;
      if (isMachineActor(ref)) {
        let path = this.paths.get(ref);
        if (path === undefined) this.paths.set(ref, (path = actorPath(ref, actor)));
        const value = (ev.snapshot as { value?: unknown }).value;
        // A state name is compared as it is, with a `"` before it (no JSON per snapshot); the JSON of
        // a nested value starts with `{`, so the two kinds of key cannot meet.
        const key = typeof value === 'string' ? `"${value}` : JSON.stringify(value);
        if (this.stateValues.get(path) !== key) {
          this.stateValues.set(path, key);
          if (!this.replaying) {
            // Steps invoked by this macrostep were recorded while it ran; the state entry goes first.
            const history = s.history();
            history.splice(Math.min(this.macrostepMark, history.length), 0, { type: 'state.entered', path, state: value });
            this.macrostepMark += 1;
            s.host.events.emit('state.entered', { runId: s.runId, path, state: value });
            s.segmentSpan.addEvent('state.entered', { [ATTR.state]: JSON.stringify(value), 'workflow.path': path });
          }
        }
      }
      s.markDirty();
    } catch (err) {
      // An exception thrown here would propagate into the actor (docs/xstate-semantics.md): report it instead.
      s.host.logger.error({ err, runId: s.runId }, `rmapp: inspecting run ${s.runId} failed`);
    }
  }
}
