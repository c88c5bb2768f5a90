/**
 * The credentials of the URLs in the variables the sandbox is given (`sandbox.env`, `agent.env`), in the
 * forms operators write them, are masked by value wherever a command's output carries them — alone,
 * in the URL, in `env | base64` — by the service's one masker (src/rmapp/masking.ts), fed by
 * src/rmapp/secret-variables.ts as the service (config.ts `secretsOf`) and the CLI feed it.
 */
import { describe, expect, it } from 'vitest';
import { createMasker, MASK } from '../src/rmapp/masking.ts';
import { variableSecrets } from '../src/rmapp/secret-variables.ts';

/** The masker of a service whose `sandbox.env` names this one variable. */
const maskerFor = (value: string) => createMasker(variableSecrets(['MIRROR'], { MIRROR: value }));

/** What a test run that printed the secret alone, the variable, and `env | base64` shows, masked. */
function printed(value: string, secret: string): string {
  const masker = maskerFor(value);
  return masker.text(`secret: ${secret}\nMIRROR=${value}\n${Buffer.from(`HOME=/tmp/home\nMIRROR=${value}\n`).toString('base64')}`);
}

describe('the credentials of a URL in a variable the sandbox is given', () => {
  it.each([
    ['token', 'https://pypi.example.com/simple/?token=qT0k3nValue99&x=1', 'qT0k3nValue99'],
    ['access_token', 'https://api.example.com/v1?access_token=aXs9tok3n77', 'aXs9tok3n77'],
    ['api_key (any case)', 'https://maps.example.com/tiles?API_KEY=k3yValue123', 'k3yValue123'],
    ['sslpassword', 'postgres://app@db/test?sslpassword=ss1Pass99x', 'ss1Pass99x'],
  ])('a secret query parameter (%s) is masked alone and in base64, not only where it stands in the URL', (_name, value, secret) => {
    const out = printed(value, secret);
    expect(out).not.toContain(secret);
    expect(out).toContain(MASK);
  });

  it('a token before the `:` is masked, whatever stands after it (GitHub’s `https://<token>:x-oauth-basic@github.com`)', () => {
    // Only a user standing alone was taken: the URL pattern then hid the constant `x-oauth-basic` and
    // left the token itself in the URL as printed.
    const token = '0123456789abcdef0123456789abcdef01234567';
    const out = printed(`https://${token}:x-oauth-basic@github.com/acme/widgets.git`, token);
    expect(out).not.toContain(token);
    expect(out).not.toContain(token.slice(0, 20));
  });

  it('a login stays readable, alone or before a password', () => {
    const masker = createMasker(
      variableSecrets(['A', 'B', 'C'], {
        A: 'ssh://git@github.com/o/r.git',
        B: 'postgres://postgres@db/test',
        C: 'amqp://guest:s3cretpass@mq/',
      }),
    );
    expect(masker.text('git fetch as git; psql -U postgres; login guest')).toBe('git fetch as git; psql -U postgres; login guest');
  });

  it('a token of letters only, in mixed case, is no login', () => {
    // Letters alone passed for a login: about one random 20-character key in 34 has no digit.
    const token = 'QwErTyUiOpAsDfGhJkLz';
    expect(printed(`https://${token}@mirror.example.com/simple/`, token)).not.toContain(token);
  });

  it.each([
    ['a quote', "postgres://app:Xk9'mP2wQ7z@db/test", "Xk9'mP2wQ7z"],
    ['a double quote', 'postgres://app:Xk9"mP2wQ7z@db/test', 'Xk9"mP2wQ7z'],
    ['angle brackets', 'https://deploy:Xk9<mP2>wQ7z@mirror.example.com/', 'Xk9<mP2>wQ7z'],
  ])('a password holding %s, unencoded, is masked', (_name, value, secret) => {
    // The value was cut into words at quotes and brackets (a URL quoted in a value), which cut such a
    // password in two, and the URL pattern stops at a quote: it was printed in the clear.
    const out = printed(value, secret);
    expect(out).not.toContain(secret);
    expect(out).not.toContain('mP2');
  });

  it('a password that is its own user (a CI database’s postgres:postgres) is masked in the URL, not in every word', () => {
    // Masked by value, `postgres` went from every scheme, role and file name the tests printed:
    // `[REDACTED]://[REDACTED]:[REDACTED]@localhost…, see [REDACTED]ql.conf`. It is no secret from
    // whoever reads the user, which the URL shows.
    const masker = createMasker(
      variableSecrets(['TEST_DATABASE_URL'], { TEST_DATABASE_URL: 'postgres://postgres:postgres@localhost:5432/test' }),
    );
    expect(masker.text('psql postgres://postgres:postgres@localhost:5432/test: role "postgres"; see postgresql.conf')).toBe(
      `psql postgres://postgres:${MASK}@localhost:5432/test: role "postgres"; see postgresql.conf`,
    );
  });
});
