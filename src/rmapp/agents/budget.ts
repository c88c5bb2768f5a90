/**
 * The agent's budget for one run: turns, tokens, cost and time, summed over every agent session of
 * the run (analysis, plan, each implementation attempt, re-asks). It is checked while the agent's
 * output streams, after each event the agent reports, and the agent is stopped as soon as one limit
 * is passed — not at the end. What a run spent is kept in its `agent-usage` artifact, so a later step,
 * a retry or another worker continues from it: raising the limit is what lets a run go on.
 */
import { WorkflowError } from '../../state_machine/errors.ts';
import type { AgentUsage } from './transcript.ts';

/** Limits per run; an absent limit is no limit (config `agent.budget`). */
export interface AgentBudget {
  maxTurns?: number | undefined;
  /** Input (cached included) plus output tokens. */
  maxTokens?: number | undefined;
  maxCostUsd?: number | undefined;
  /** Time the agent ran, summed over the run's sessions (each session is also bounded by `agent.timeout`). */
  maxTimeMs?: number | undefined;
}

/** Where each limit is set, for the message that says how to raise it. */
const SETTING: Record<keyof AgentBudget, { key: string; env: string }> = {
  maxTurns: { key: 'agent.budget.maxTurns', env: 'RMAPP_AGENT_MAX_TURNS' },
  maxTokens: { key: 'agent.budget.maxTokens', env: 'RMAPP_AGENT_MAX_TOKENS' },
  maxCostUsd: { key: 'agent.budget.maxCostUsd', env: 'RMAPP_AGENT_MAX_COST_USD' },
  maxTimeMs: { key: 'agent.budget.maxTime', env: 'RMAPP_AGENT_MAX_TIME' },
};

export const BUDGET_SETTINGS = SETTING;

const tokens = (u: AgentUsage) => u.inputTokens + u.outputTokens;
const usd = (n: number) => `$${n.toFixed(n < 1 ? 4 : 2)}`;
const minutes = (ms: number) => (ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${Math.round(ms / 1000)} s`);

/**
 * The limit `spent` passes, as the error that stops the agent (category `agent`; `timeout` for time),
 * or null when it is within the budget. `spent` is the run's total including the current session.
 */
export function budgetExceeded(
  budget: AgentBudget | undefined,
  spent: AgentUsage,
  options: {
    /**
     * Before a session starts: the run has nothing left, and retrying cannot change that, so even time
     * is category `agent` (not retried) — a retried attempt of a step that ran out of time ends here.
     */
    starting?: boolean;
  } = {},
): WorkflowError | null {
  if (!budget) return null;
  const over = (limit: keyof AgentBudget, value: number, shown: (n: number) => string): WorkflowError | null => {
    const max = budget[limit];
    if (max === undefined || value <= max) return null;
    const { key, env } = SETTING[limit];
    return new WorkflowError(
      `The coding agent was stopped: this run's agent budget of ${shown(max)} is used up (${shown(value)} so far). Raise ${key} (env ${env}) and retry the run, or split the work into smaller issues.`,
      {
        code: 'AGENT_BUDGET_EXCEEDED',
        category: limit === 'maxTimeMs' && !options.starting ? 'timeout' : 'agent',
        details: { limit: key, max, spent: value },
      },
    );
  };
  return (
    over('maxTurns', spent.turns, (n) => `${n} turn${n === 1 ? '' : 's'}`) ??
    over('maxTokens', tokens(spent), (n) => `${n.toLocaleString('en-US')} tokens`) ??
    (spent.costUsd === null ? null : over('maxCostUsd', spent.costUsd, usd)) ??
    over('maxTimeMs', spent.durationMs, (n) => `${minutes(n)} of agent time`)
  );
}

/** How much agent time the run has left (Infinity without a time limit). */
export function timeLeftMs(budget: AgentBudget | undefined, spentBefore: AgentUsage): number {
  return budget?.maxTimeMs === undefined ? Infinity : budget.maxTimeMs - spentBefore.durationMs;
}
