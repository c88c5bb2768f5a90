/**
 * The model-based tests (test/model-based.test.ts) of BugFix and DocsUpdate: a file of their own so that they run
 * beside the other machines' (test/helpers/model-based.ts).
 */
import { machinesOf, modelBasedTests } from './helpers/model-based.ts';

modelBasedTests(machinesOf('bugfixDocs'));
