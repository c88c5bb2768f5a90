/**
 * Commit messages as git stores them (src/rmapp/pull-request-text.ts): Workspaces.commitAll finds the
 * commit a re-executed step made by comparing its message with the branch's, so the message built must
 * be the one git keeps. An agent's summary with Markdown line breaks (two trailing spaces), blank-line
 * runs, CRLF or ANSI colours was rewritten by git's whitespace clean-up, so the step re-run after a
 * crash never found its commit and reported "changed nothing"; a NUL made `git commit` fail outright.
 */
import { execFileSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { commitMessage } from '../src/rmapp/pull-request-text.ts';

/** What `git commit -F -` keeps of a message (its default clean-up when the message is not edited). */
const asGitKeepsIt = (message: string) => execFileSync('git', ['stripspace'], { input: message, encoding: 'utf8' }).trim();

it('builds the message git keeps, whatever the agent printed', () => {
  const summary = 'Adds the flag.  \r\nSecond line\t\n\n\n\n\u001b[32mgreen\u001b[0m and a NUL\u0000 here.';
  const message = commitMessage({ subject: 'feat: x (#1)', body: [summary, 'Attempt 1.'], coAuthor: 'alice', runId: 'run-1' });
  expect(message, 'git would rewrite this message, so commitAll could not find its commit again').toBe(asGitKeepsIt(message));
  for (const c of ['\u0000', '\u001b', '\r']) expect(message).not.toContain(c);
  expect(message).toContain('Adds the flag.\nSecond line\n\ngreen and a NUL here.');
});
