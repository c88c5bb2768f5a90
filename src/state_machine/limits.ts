/**
 * Size limits. Each has a default and can be configured (`createEngine({ limits })`); exceeding one
 * fails that step or that call with an error naming the limit and the size — never a database error
 * (Postgres refuses a jsonb value over 255 MB, and huge rows make every macrostep slow).
 */
import { WorkflowError } from './errors.ts';

export interface Limits {
  /** Persisted snapshot of a run (its context and children). Default 1 MiB. */
  snapshotBytes: number;
  /** A step output larger than this goes to the artifact table; the machine gets an {@link ArtifactRef}. Default 64 KiB. */
  stepOutputInlineBytes: number;
  /** A step output larger than this fails the step. Default 16 MiB. */
  stepOutputBytes: number;
  /** Payload of one signal sent with `engine.send`. Default 256 KiB. */
  signalBytes: number;
  /** One artifact. Default 16 MiB. */
  artifactBytes: number;
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  snapshotBytes: 1024 * 1024,
  stepOutputInlineBytes: 64 * 1024,
  stepOutputBytes: 16 * 1024 * 1024,
  signalBytes: 256 * 1024,
  artifactBytes: 16 * 1024 * 1024,
});

/** Merges and checks configured limits. */
export function resolveLimits(partial: Partial<Limits> = {}): Limits {
  const limits = { ...DEFAULT_LIMITS, ...partial };
  for (const [name, value] of Object.entries(limits)) {
    if (!(Number.isInteger(value) && value > 0)) {
      throw new RangeError(`limits.${name} must be a positive integer number of bytes (got ${String(value)}).`);
    }
  }
  if (limits.stepOutputInlineBytes > limits.stepOutputBytes) {
    throw new RangeError('limits.stepOutputInlineBytes must not exceed limits.stepOutputBytes.');
  }
  return limits;
}

/** What a step output over `stepOutputInlineBytes` becomes in the machine: read it with `getArtifact`. */
export interface ArtifactRef {
  $artifact: string;
  bytes: number;
}

/** True for a value produced by an offloaded step output. */
export function isArtifactRef(value: unknown): value is ArtifactRef {
  return !!value && typeof value === 'object' && typeof (value as ArtifactRef).$artifact === 'string';
}

/** Thrown when a value exceeds its limit. */
export class SizeLimitError extends WorkflowError {
  constructor(what: string, limit: keyof Limits, bytes: number, max: number, hint: string) {
    super(`${what} is ${bytes} bytes, over the limit of ${max} bytes (limits.${limit}). ${hint}`, {
      code: 'SIZE_LIMIT_EXCEEDED',
      category: 'permanent',
      details: { limit, bytes, max },
    });
  }
}

/** UTF-8 size of a JSON text. */
export function jsonBytes(json: string): number {
  return Buffer.byteLength(json, 'utf8');
}
