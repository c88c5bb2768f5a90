/**
 * Child process of `dbosRecovery` (bench/dbos.ts). Not meant to be run by hand:
 *   node --import tsx bench/dbos-child.ts crash   <databaseUrl> <workflows>
 *     launches DBOS, starts the workflows with step 4 blocking forever, sends {type:'blocked'}
 *     once every workflow is inside step 4, then waits to be SIGKILLed;
 *   node --import tsx bench/dbos-child.ts recover <databaseUrl> <workflows>
 *     launches DBOS, which recovers the PENDING workflows (step 4 does not block here), sends
 *     {type:'launched'}, and shuts down cleanly on {type:'shutdown'}.
 */
import { DBOS } from '@dbos-inc/dbos-sdk';
import { benchWorkflow, launchDbos, RECOVERY_ID_PREFIX, setStep4Hook, shutdownDbos, type ChildMessage } from './dbos.ts';

function send(msg: ChildMessage): void {
  process.send?.(msg);
}

async function main(): Promise<void> {
  const [mode, databaseUrl, count] = process.argv.slice(2);
  const workflows = Number(count);
  if ((mode !== 'crash' && mode !== 'recover') || !databaseUrl || !Number.isInteger(workflows) || workflows < 1) {
    throw new Error('usage: dbos-child.ts crash|recover <databaseUrl> <workflows>');
  }
  process.on('message', (raw: unknown) => {
    if ((raw as { type?: string }).type === 'shutdown') {
      void shutdownDbos().finally(() => process.exit(0));
    }
  });

  if (mode === 'crash') {
    let inside = 0;
    setStep4Hook(() => {
      inside += 1;
      if (inside === workflows) send({ type: 'blocked' });
      return new Promise<void>(() => {}); // never settles: the process is killed here
    });
    await launchDbos(databaseUrl);
    for (let i = 0; i < workflows; i++) {
      await DBOS.startWorkflow(benchWorkflow, { workflowID: `${RECOVERY_ID_PREFIX}${i}` })(i);
    }
    setInterval(() => {}, 60_000); // stay alive until killed
  } else {
    await launchDbos(databaseUrl); // recovery of PENDING workflows starts inside launch
    send({ type: 'launched' });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  const msg: ChildMessage = { type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  if (process.send) process.send(msg, () => process.exit(1));
  else process.exit(1);
});
