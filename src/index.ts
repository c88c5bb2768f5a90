/**
 * rmapp: durable XState v5 workflows with their state in Postgres (or embedded PGlite).
 *
 * @example
 * import { createEngine, defineWorkflow, step } from 'rmapp';
 */
export {
  createEngine,
  Engine,
  type StartOptions,
  type CancelResult,
  type SendOptions,
  type SendResult,
  type StartRetry,
} from './state_machine/engine.ts';
export type { RetryOptions } from './state_machine/run-retry.ts';
export type { QueuedSignal } from './persistence/inbox.ts';
export { DEFAULT_ENGINE_OPTIONS, DEFAULT_BUFFER_MS, MIN_LEASE_MS, type EngineOptions } from './state_machine/engine-options.ts';
export { silentLogger, type Logger, type LogFn } from './persistence/logger.ts';
export type { HistoryBound } from './persistence/retention.ts';
export type {
  RunId,
  AnyWorkflowDefinition,
  GenericEvent,
  WorkflowStartInput,
  WorkflowEvent,
  WorkflowOutput,
} from './state_machine/typed-runs.ts';
export {
  defineWorkflow,
  machineVersion,
  type WorkflowDefinition,
  type DefineWorkflowOptions,
  type CleanupContext,
  type SignalDefaults,
} from './state_machine/definition.ts';
export {
  checkRunVersions,
  type OwedCleanupVerdict,
  type RunVersionVerdict,
  type RegisteredDefinitions,
  type VersionCheck,
} from './state_machine/version-check.ts';
export { step, type StepContext, type SaveArtifactOptions, type StepOptions, type StepFunction } from './state_machine/step.ts';
export { StepFailedError } from './state_machine/step-execution.ts';
export {
  WorkflowError,
  ValidationError,
  RunStateError,
  UnknownWorkflowError,
  ConcurrencyKeyError,
  RunNotFoundError,
  WaitStoppedError,
  WaitTimeoutError,
  AgentError,
  TestFailureError,
  toErrorData,
  fromErrorData,
  ERROR_CATEGORIES,
  type ErrorCategory,
  type ErrorData,
} from './state_machine/errors.ts';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './state_machine/retry-policy.ts';
export type { EngineEventMap, EngineEventName } from './state_machine/events.ts';
export type { RunInfo, ChildInfo } from './state_machine/run-info.ts';
export type { ConcurrencyScope } from './state_machine/concurrency-key.ts';
export { systemClock, type Clock } from './state_machine/session-host.ts';
export { DEFAULT_LIMITS, isArtifactRef, SizeLimitError, type Limits, type ArtifactRef } from './state_machine/limits.ts';
export { instrumentMetrics, type MetricSources } from './state_machine/metrics.ts';
export { contextFromTraceparent, traceparentOf } from './state_machine/telemetry.ts';
export { openDatabase, redactUrl, type Database, type OpenDatabaseOptions } from './persistence/database.ts';
export { MASK } from './persistence/mask-marker.ts';
export { migrate, DatabaseTooNewError, MigrationPrivilegeError, MigrationRecordError } from './persistence/migrate.ts';
export { RUN_STATUSES, FINAL_STATUSES, type RunStatus, type HistoryEvent } from './persistence/run-status.ts';
