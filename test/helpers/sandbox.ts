/**
 * The sandbox the GitHub tests run the scripted agent and the test command in: the real bubblewrap
 * driver (CI installs `bubblewrap`), so every workflow test also runs through the isolation.
 */
import { createSandbox } from '../../src/rmapp/sandbox/index.ts';

export const testSandbox = createSandbox({ driver: 'bubblewrap' });
