/**
 * How a Postgres password file is read (pgpass-secrets.ts: as libpq reads it) and how the OpenTelemetry
 * exporters' header lists are (otlp-header-secrets.ts: as the SDK parses them, W3C baggage's format).
 */
import { describe, expect, it } from 'vitest';
import { otlpHeaderSecrets, otlpHeaderValues } from '../src/rmapp/otlp-header-secrets.ts';
import { parsePgpassLine, pgpassPath, pgpassSecrets } from '../src/rmapp/pgpass-secrets.ts';

describe('a .pgpass line', () => {
  it('reads fields with `\\:` and `\\\\` escapes, keeps `*` as written, and ends the password at its first unescaped `:`', () => {
    expect(parsePgpassLine('db\\:1:*:my\\\\db:*:pa\\:ss\\\\wd:rest')).toEqual({
      host: 'db:1',
      port: '*',
      database: 'my\\db',
      user: '*',
      password: 'pa:ss\\wd',
      written: 'pa\\:ss\\\\wd',
    });
    expect(parsePgpassLine('h:p:d:u:pw\r')?.password, 'a CRLF line').toBe('pw');
    expect(parsePgpassLine('h:p:d:u:a\\b')?.password, 'a `\\` before another character').toBe('ab');
  });

  it('gives nothing for a comment, a blank line, or fewer than five fields', () => {
    expect(parsePgpassLine('#h:p:d:u:pw')).toBeNull();
    expect(parsePgpassLine('')).toBeNull();
    expect(parsePgpassLine('h:p:d:pw')).toBeNull();
    expect(parsePgpassLine('h:p:d:u\\:pw'), 'an escaped colon is no separator').toBeNull();
  });

  it('is found where libpq looks: PGPASSFILE, else ~/.pgpass, else %APPDATA% on Windows', () => {
    expect(pgpassPath({ PGPASSFILE: '/run/pgpass', HOME: '/home/a' })).toBe('/run/pgpass');
    expect(pgpassPath({ HOME: '/home/a' }, 'linux')).toBe('/home/a/.pgpass');
    expect(pgpassPath({ APPDATA: 'C:/Users/a/AppData' }, 'win32')).toMatch(/postgresql.pgpass\.conf$/);
    expect(pgpassSecrets({ PGPASSFILE: '/nonexistent/pgpass' }), 'a missing file').toEqual([]);
    expect(pgpassSecrets({ PGPASSFILE: '/dev/zero' }), 'no regular file (it would never end)').toEqual([]);
  });
});

describe('an OTLP headers list', () => {
  it('gives each value as written and percent-decoded, a scheme’s credential, and a Basic credential’s password', () => {
    const basic = Buffer.from('u:pa55-word').toString('base64');
    expect(otlpHeaderValues(`Authorization=Bearer%20abc123def, k = v%2Cw ;prop=1,bad,=x,Auth2=Basic%20${basic}`)).toEqual([
      'Bearer%20abc123def',
      'Bearer abc123def',
      'abc123def',
      'v%2Cw',
      'v,w',
      `Basic%20${basic}`,
      `Basic ${basic}`,
      basic,
      'pa55-word',
    ]);
  });

  it('is read from the general and the per-signal variables only', () => {
    expect(
      otlpHeaderSecrets({
        OTEL_EXPORTER_OTLP_HEADERS: 'a=one-1',
        OTEL_EXPORTER_OTLP_LOGS_HEADERS: 'b=two-2',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_RESOURCE_ATTRIBUTES: 'd=four-4',
      }).sort(),
    ).toEqual(['one-1', 'two-2']);
  });
});
