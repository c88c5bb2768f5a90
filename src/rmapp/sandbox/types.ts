/**
 * The sandbox that untrusted commands run in: the coding agent and the repository's test command.
 * Both run code that comes from outside (the repository, the agent's output, an issue's prompt
 * injection), so they get a workspace, a private /tmp and nothing else of the service: no secrets in
 * their environment, the host read-only or absent, limits on time, memory, processes and output,
 * and the network off or reduced to an allowlist of host names.
 */
import type { CommandResult } from '../process.ts';

/** How untrusted commands are isolated. `none` only by explicit setting (a loud warning at start-up). */
export type SandboxDriver = 'bubblewrap' | 'container' | 'none';

/** The limits every sandboxed command runs under. */
export interface SandboxLimits {
  /** Memory of the whole command (cgroup where the service may create one; else per process, RLIMIT_DATA). */
  memoryBytes: number;
  /** Processes and threads of the command (cgroup pids; else RLIMIT_NPROC, which does not bind root). */
  processes: number;
  /** Largest file the command may write (RLIMIT_FSIZE). */
  fileBytes: number;
  /** What is kept of stdout and of stderr (the end of each). */
  outputBytes: number;
}

/** The operator's sandbox settings (config key `sandbox`). */
export interface SandboxSettings {
  driver: SandboxDriver;
  limits: SandboxLimits;
  /** Host names (or `*.domain`) reachable through the egress proxy; empty: no network at all. */
  network: readonly string[];
  /**
   * Let the operator's allowlisted names (`network`, and a job's `network`: `agent.network`) resolve to
   * loopback or private addresses (off: the metadata service, Postgres and the service itself stay out
   * of reach). Never the names a repository adds (`SandboxJob.repositoryNetwork`).
   */
  allowPrivateNetwork: boolean;
  /** Names of environment variables passed through from the service to every sandboxed command. */
  env: readonly string[];
  /** Extra host paths visible read-only (toolchains outside /usr, e.g. /opt/java). */
  readOnlyPaths: readonly string[];
  /** Container driver: the image, and `docker` or `podman`. */
  image?: string | undefined;
  runtime?: 'docker' | 'podman' | undefined;
}

/** One command to run in the sandbox. */
export interface SandboxJob {
  argv: readonly string[];
  /** The host directory that is the command's working directory, writable (its `.git` read-only). */
  workspace: string;
  /** Written to stdin, then closed. */
  input?: string | undefined;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Names of extra environment variables passed through for this command only (the agent's API key). */
  env?: readonly string[] | undefined;
  /** Extra host names this command may reach, from the operator (the agent's API, `agent.network`). */
  network?: readonly string[] | undefined;
  /**
   * Extra host names from the repository's `.github/rmapp.yml` (its setup, tests and lint). Whoever can
   * push to the repository writes them, so `allowPrivateNetwork` never applies to them: a repository
   * naming `localhost:5432` must not reach Postgres because the operator let their own names resolve
   * to private addresses.
   */
  repositoryNetwork?: readonly string[] | undefined;
  /**
   * The command comes from a repository (`.github/rmapp.yml`), not from the operator: a host file its
   * argv names is not made visible in the sandbox (the operator's `node /opt/agent/run.mjs` is), or
   * `test: [cat, /etc/rmapp/app.pem]` would read the service's files.
   */
  fromRepository?: boolean | undefined;
  /** Each chunk of stdout as it arrives (the agent's live transcript); see `RunCommandOptions.onStdout`. */
  onStdout?: ((chunk: Buffer) => void) | undefined;
  /** Each chunk of stderr as it arrives. */
  onStderr?: ((chunk: Buffer) => void) | undefined;
  /** Between SIGTERM and SIGKILL when the command is stopped (the agent: under a second). Default 2 s. */
  killGraceMs?: number | undefined;
}

/** A sandbox: runs commands isolated from the service. */
export interface Sandbox {
  readonly driver: SandboxDriver;
  /** Runs `job.argv`; rejects on timeout, cancellation or a sandbox that cannot start. */
  run(job: SandboxJob): Promise<CommandResult>;
  /** Checks that the driver works here (start-up); throws with the fix when it does not. */
  check(): Promise<void>;
  /** What is enforced, for the start-up log line (and what is not, for the warning). */
  describe(): { summary: string; warnings: string[] };
}

/** Defaults: 4 GiB, 1,024 processes, 1 GiB files, 1 MiB of output; no network. */
export const DEFAULT_LIMITS: SandboxLimits = {
  memoryBytes: 4 * 1024 ** 3,
  processes: 1024,
  fileBytes: 1024 ** 3,
  outputBytes: 1024 * 1024,
};
