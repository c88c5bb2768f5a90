/**
 * A GitHub request that got no answer (a refused connection, a wrong `GITHUB_API_URL`) was logged as
 * `github: GET /user - 500 with id UNKNOWN in 2ms` at error level, which reads as GitHub failing; a new
 * user pointing `rmapp run` at a closed port saw only that. The line now says what it most likely is.
 */
import { describe, expect, it } from 'vitest';
import { explainRequestLog } from '../src/rmapp/github/client.ts';

describe('the GitHub request log', () => {
  it('says a 500 without a GitHub request id is most likely no answer', () => {
    const line = explainRequestLog('GET /user - 500 with id UNKNOWN in 2ms');
    expect(line).toMatch(/^GET \/user - no answer \(status 500 with no GitHub request id: a network error, or .*GITHUB_API_URL/);
    expect(line.endsWith(' in 2ms')).toBe(true);
  });

  it('leaves GitHub answers as Octokit wrote them', () => {
    for (const msg of ['GET /user - 500 with id 1A2B:3C4D in 80ms', 'GET /repos/a/b - 404 with id UNKNOWN in 3ms', 'something else'])
      expect(explainRequestLog(msg)).toBe(msg);
  });
});
