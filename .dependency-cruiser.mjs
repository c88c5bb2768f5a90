// Import boundaries and import cycles of `src/` (issue #18), checked by `npm run lint:deps`.
//
// The layers, lowest first (README, "Layout"):
//   src/persistence  ←  src/state_machine  ←  src/machines, src/actors  ←  src/rmapp  ←  src/index.ts
// A module may import its own layer and the layers below it; tests, bench and fixtures import anything
// (only `src/` is cruised).
//
// Why dependency-cruiser and not eslint-plugin-boundaries: the rule has to catch import cycles too
// (`state_machine/testing/` had one: index → paths → path-kit → index), and ESLint's way to do that
// (`import-x/no-cycle`) re-resolves the whole graph from every file, the slowest rule of that plugin.
// dependency-cruiser builds the graph once with the TypeScript compiler, so boundaries and cycles are one
// pass (5 s of CPU for `src/` on the 2-core machine), its rules name layers by path exactly as the issue
// words them, and `import type` counts (`tsPreCompilationDeps`) — a type pulled from a higher layer is still
// a dependency in the wrong direction. Version 17 is the last that runs on Node 20 (18 needs Node 22).
//
// Each rule's name is what `depcruise` prints beside the offending import; `test/lint-boundaries.test.ts`
// shows a forbidden import being rejected by name and an allowed one passing.

/** Paths of the layers, as regular expressions over paths relative to the repository root. */
const LAYER = {
  persistence: '^src/persistence/',
  stateMachine: '^src/state_machine/',
  machines: '^src/machines/',
  actors: '^src/actors/',
  rmapp: '^src/rmapp/',
  server: '^src/rmapp/server/',
  entry: '^src/index\\.ts$',
};

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'persistence-imports-nothing-above',
      comment: 'src/persistence is the lowest layer: it imports no other part of src/.',
      severity: 'error',
      from: { path: LAYER.persistence },
      to: { path: '^src/', pathNot: LAYER.persistence },
    },
    {
      name: 'state-machine-imports-only-persistence',
      comment: 'The engine (src/state_machine) may import src/persistence and nothing else of src/: it never imports the service.',
      severity: 'error',
      from: { path: LAYER.stateMachine },
      to: { path: '^src/', pathNot: [LAYER.stateMachine, LAYER.persistence] },
    },
    {
      name: 'machines-import-only-state-machine',
      comment:
        'Workflow machines are pure definitions: they import src/state_machine only. What a machine needs from the ' +
        'service (an input schema, say) moves down into the machine module; its steps come in as parameters.',
      severity: 'error',
      from: { path: LAYER.machines },
      to: { path: '^src/', pathNot: [LAYER.machines, LAYER.stateMachine] },
    },
    {
      name: 'machines-do-no-io',
      comment:
        'Machines import only xstate, zod and the engine: no Octokit, child_process, file system, network or database ' +
        '(docs: the machine decides, the actor acts): such clients reach a machine only through the steps passed in. ' +
        'An allowlist, so that a new client library or core module is refused too.',
      severity: 'error',
      from: { path: LAYER.machines },
      to: { pathNot: ['^src/', '(^|/)node_modules/(xstate|zod)/'] },
    },
    {
      name: 'actors-not-server',
      comment: 'Step implementations (src/actors) may use the service modules, but not the HTTP server that serves them.',
      severity: 'error',
      from: { path: LAYER.actors },
      to: { path: LAYER.server },
    },
    {
      name: 'actors-import-machines-engine-or-service',
      comment:
        'src/actors may import src/machines, src/state_machine and src/rmapp (but see actors-not-server); not src/persistence directly.',
      severity: 'error',
      from: { path: LAYER.actors },
      to: { path: '^src/', pathNot: [LAYER.actors, LAYER.machines, LAYER.stateMachine, LAYER.rmapp] },
    },
    {
      name: 'only-the-entry-imports-the-entry',
      comment: 'src/index.ts is the package entry, above every layer: nothing inside src/ imports it.',
      severity: 'error',
      from: { path: '^src/', pathNot: LAYER.entry },
      to: { path: LAYER.entry },
    },
    {
      name: 'src-not-to-tests',
      comment: 'Shipped code never imports tests, benchmarks or their fixtures (they are not in the package).',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'no-circular',
      comment:
        'An import cycle makes module initialisation order matter (a value read before its module ran is undefined) ' +
        'and ties the modules into one. Type-only cycles count too: break them by moving the shared type down.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment:
        'An import that resolves to no file or package (tsc reports most; this also covers the .mjs/.js files). The ' +
        "dashboard's browser modules import by URL (`/chart.js`), which the server maps, not the file system.",
      severity: 'error',
      from: { pathNot: '^src/rmapp/server/dashboard/' },
      to: { couldNotResolve: true },
    },
    {
      name: 'no-non-package-json',
      comment: 'A package imported by src/ but not declared in package.json works here only by accident of hoisting.',
      severity: 'error',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    // `import type` and type-only re-exports are dependencies too (see above).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.mjs', '.js', '.d.ts'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
