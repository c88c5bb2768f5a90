/**
 * The analysis of an issue, asked of the coding agent as JSON before planning: what the issue is
 * about, what kind of change it needs, and what could go wrong. It is kept as the run's `analysis`
 * artifact and handed to the planner, so the plan starts from a stated understanding of the issue.
 */
import { z } from 'zod';

/**
 * @example
 * issueAnalysisSchema.parse({ summary: 'The CLI crashes on empty input', kind: 'bug', risks: ['exit codes change'] });
 */
export const issueAnalysisSchema = z.object({
  /** One or two sentences: what is asked, in the agent's words. */
  summary: z.string().trim().min(1),
  kind: z.enum(['feature', 'bug', 'docs', 'chore']),
  /** What could break or is unclear; empty when nothing stands out. */
  risks: z.array(z.string().trim().min(1)).default([]),
});

/** A validated analysis. */
export type IssueAnalysis = z.output<typeof issueAnalysisSchema>;
