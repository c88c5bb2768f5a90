/**
 * Copies of migrations/ whose journal ends early, to migrate a database to an older schema and then
 * test what the later migrations do to it. The caller removes the folder (`rmSync(dir, { recursive: true })`).
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIGRATIONS_DIR } from '../../src/persistence/migrate.ts';

/** A copy of migrations/ whose journal keeps the first `count` entries. */
function migrationsCopy(count: (entries: { tag: string }[]) => number): string {
  const dir = mkdtempSync(join(tmpdir(), 'rmapp-migrations-'));
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  const journalPath = join(dir, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { idx: number; tag: string }[] };
  journal.entries = journal.entries.slice(0, count(journal.entries));
  writeFileSync(journalPath, JSON.stringify(journal));
  return dir;
}

function indexOf(entries: { tag: string }[], tag: string): number {
  const at = entries.findIndex((e) => e.tag === tag);
  if (at < 0) throw new Error(`no migration ${tag} in migrations/meta/_journal.json`);
  return at;
}

/** A copy of migrations/ whose journal stops before `tag`. */
export function migrationsBefore(tag: string): string {
  return migrationsCopy((entries) => indexOf(entries, tag));
}

/** A copy of migrations/ whose journal ends at `lastTag`. */
export function migrationsUpTo(lastTag: string): string {
  return migrationsCopy((entries) => indexOf(entries, lastTag) + 1);
}
