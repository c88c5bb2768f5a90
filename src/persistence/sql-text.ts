/** SQL text built by hand where no parameter can be bound: {@link sqlLiteral} and the joined script. */
/** Joins statements into one simple-protocol message. */
export function joinScript(statements: readonly string[]): string {
  return statements
    .map((s) => s.trim().replace(/;+$/, ''))
    .filter(Boolean)
    .join(';\n');
}

/**
 * A string as a SQL literal, for `Database.script` (database-types.ts) where parameters cannot be bound: an escape
 * string (`E'…'`), whose meaning does not depend on `standard_conforming_strings`.
 *
 * @throws when the value holds a NUL byte, which no Postgres text can hold.
 */
export function sqlLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('A SQL text value cannot hold a NUL byte (\\u0000).');
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}
