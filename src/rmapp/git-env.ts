/**
 * The environment of the service's own git commands (workspace.ts): only this configuration, nothing of
 * the operator's or the working tree's, and the token as an `http.extraHeader`.
 */
/** Host variables git may need (proxies, certificates, ssh): passed through; nothing else of the service's environment is. */
const GIT_PASSED = [
  'PATH',
  'HOME',
  'LANG',
  'TZ',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'GIT_SSL_CAINFO',
  'SSH_AUTH_SOCK',
  'GIT_SSH_COMMAND',
];

/**
 * The environment of the service's own git commands. They run outside the sandbox, on a working tree
 * the agent wrote, so they never run what the tree could name: no configuration but this one, no hooks (`core.hooksPath=/dev/null`),
 * no fsmonitor command, and the repository's `.git` is read-only inside the sandbox so its
 * configuration stays the service's. The token travels as an `http.extraHeader`, here only.
 */
export function gitEnv(author: { name: string; email: string }, token?: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of GIT_PASSED) if (process.env[name] !== undefined) env[name] = process.env[name] as string;
  const config: [string, string][] = [
    ['core.hooksPath', '/dev/null'],
    ['core.fsmonitor', 'false'],
    // With GIT_NO_REPLACE_OBJECTS below: a `core.useReplaceRefs` in the service's own git configuration
    // would turn replace refs back on.
    ['core.useReplaceRefs', 'false'],
    ['core.sshCommand', process.env.GIT_SSH_COMMAND ?? 'ssh'],
    // Without a global configuration git still reads ~/.config/git/ignore and …/attributes by default:
    // the operator's ignore rules left files out of the agent's commit, their eol rules changed others.
    ['core.excludesFile', '/dev/null'],
    ['core.attributesFile', '/dev/null'],
    // Never into a submodule: git runs a submodule's commands with the configuration in its `.git`, and
    // in the workspace that is the sandbox's to write (a repository with a submodule checks out an
    // empty folder, where a test can `git init`). `fetch` recursed by default ("on-demand": when a
    // fetched commit moves the gitlink): a `remote.origin.url = ext::sh -c …` there, with
    // `protocol.ext.allow = always`, ran as the service on the next step's fetch.
    ['fetch.recurseSubmodules', 'false'],
    ['submodule.recurse', 'false'],
    ['push.recurseSubmodules', 'no'],
  ];
  if (token) config.push(['http.extraHeader', `Authorization: Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`]);
  config.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return {
    ...env,
    GIT_CONFIG_COUNT: String(config.length),
    // Nothing of the operator's own git configuration (~/.gitconfig, /etc/gitconfig): a repository's
    // .gitattributes names filter, diff and merge drivers by name, so a driver one defines there (git-lfs's
    // install writes one) would run on the repository's say, outside the sandbox. What git needs from
    // the host comes through the variables above (proxies, certificates, ssh).
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_ATTR_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    // A mirror holds every ref of the remote, `refs/replace/*` too, which git honours by default: anyone
    // who may push a ref could swap any object — the settings file of the default branch among them —
    // without touching a branch. rmapp reads and builds on the objects the branches name, nothing else.
    GIT_NO_REPLACE_OBJECTS: '1',
    GIT_AUTHOR_NAME: author.name,
    GIT_AUTHOR_EMAIL: author.email,
    GIT_COMMITTER_NAME: author.name,
    GIT_COMMITTER_EMAIL: author.email,
  };
}
