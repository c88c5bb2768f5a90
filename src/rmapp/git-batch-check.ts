/**
 * What `git cat-file --batch-check --follow-symlinks` answers, parsed: the workspace's reads of a
 * repository's settings at a commit (workspace.ts `Workspaces.settingsAt`) ask it about several paths at once.
 */
/** What `git cat-file --batch-check` says of an object that exists. */
export interface ObjectInfo {
  id: string;
  type: 'blob' | 'tree' | 'commit' | 'tag';
  size: number;
}

/**
 * What `git cat-file --batch-check --follow-symlinks` says of a path whose symbolic links lead nowhere
 * in the commit: `symlink` (out of the repository, `target` the part outside), `dangling` (to a path
 * the commit does not have), `loop`, `notdir` (through a file as if it were a folder).
 */
export interface BrokenLink {
  link: 'symlink' | 'dangling' | 'loop' | 'notdir';
  target: string;
}

/**
 * The answers of `git cat-file --batch-check=%(objectname) %(objecttype) %(objectsize) --follow-symlinks`,
 * one per object asked, or null when the output is not one answer per object. Parsed as bytes: a link's
 * target is given as `<kind> <bytes>\n<target>\n`, and a target may hold line breaks.
 */
export function parseBatchCheck(out: Buffer, count: number): (ObjectInfo | BrokenLink | null)[] | null {
  const answers: (ObjectInfo | BrokenLink | null)[] = [];
  let at = 0;
  while (at < out.length) {
    const end = out.indexOf(0x0a, at);
    if (end === -1) return null;
    const line = out.toString('latin1', at, end);
    at = end + 1;
    const info = /^([0-9a-f]{40,64}) (blob|tree|commit|tag) (\d+)$/.exec(line);
    const link = /^(symlink|dangling|loop|notdir) (\d+)$/.exec(line);
    if (info) answers.push({ id: info[1] as string, type: info[2] as ObjectInfo['type'], size: Number(info[3]) });
    else if (link) {
      const bytes = Number(link[2]);
      if (out[at + bytes] !== 0x0a) return null;
      answers.push({ link: link[1] as BrokenLink['link'], target: out.toString('utf8', at, at + bytes) });
      at += bytes + 1;
    } else answers.push(null); // `<name> missing`, `<name> ambiguous`
  }
  return answers.length === count ? answers : null;
}

/** Where a {@link BrokenLink} leads, for a message (the target quoted, at most 200 characters). */
export function brokenLinkText(l: BrokenLink): string {
  const target = JSON.stringify(l.target.length > 200 ? `${l.target.slice(0, 200)}…` : l.target);
  if (l.link === 'symlink') return `to ${target}, outside the repository`;
  if (l.link === 'loop') return 'in a loop of links';
  return l.link === 'dangling' ? 'to a path the repository does not have' : 'through a file as if it were a folder';
}
