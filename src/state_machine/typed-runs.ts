/**
 * Types that carry a workflow's definition from `engine.start(definition, input)` to `send` and
 * `waitFor`: the run id returned is a string branded with its workflow, so the engine knows, at compile
 * time, which events the run's machine takes and what it outputs. A plain string id (from a database
 * row, a URL, the CLI) still works everywhere, with the untyped event and output.
 *
 * @example
 * const id = await engine.start(order, { amountCents: 1200 });   // input checked against order's zod schema
 * await engine.send(id, { type: 'approve' });                     // events of order's machine only
 * const run = await engine.waitFor(id);                           // run.output: the machine's output type
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- `any` in the conditional types below matches a definition of any input, machine or output; what is inferred (`infer I`, `infer M`) is what the caller gets */
import type { EventFromLogic, OutputFrom } from 'xstate';
import type { AnyWorkflowDefinition, WorkflowDefinition } from './definition.ts';

export type { AnyWorkflowDefinition };

declare const workflowOfRun: unique symbol;

/** A run id that remembers its workflow definition's type (at compile time only; it is a plain string). */
export type RunId<TWorkflow = unknown> = string & { readonly [workflowOfRun]?: TWorkflow };

/** An event as the untyped API takes it. */
export interface GenericEvent {
  type: string;
  [key: string]: unknown;
}

type IsAny<T> = 0 extends 1 & T ? true : false;

/** What `engine.start(definition, input)` accepts as input: the schema's input type. */
export type WorkflowStartInput<TWorkflow> = TWorkflow extends WorkflowDefinition<any, any, infer I> ? I : unknown;

/** The events the workflow's machine declares (`setup({ types: { events } })`), else any event. */
export type WorkflowEvent<TWorkflow> =
  TWorkflow extends WorkflowDefinition<any, infer M, any>
    ? IsAny<EventFromLogic<M>> extends true
      ? GenericEvent
      : EventFromLogic<M>
    : GenericEvent;

/** The machine's output type (`setup({ types: { output } })`), else `unknown` (XState's own default is `{} | null | undefined`). */
export type WorkflowOutput<TWorkflow> =
  TWorkflow extends WorkflowDefinition<any, infer M, any> ? (unknown extends OutputFrom<M> ? unknown : OutputFrom<M>) : unknown;
