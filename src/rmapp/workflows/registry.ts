/** The workflows `rmapp worker` runs when no `--workflows` module is given. */
import type { AnyWorkflowDefinition } from '../../state_machine/definition.ts';
import { orderExample } from '../../machines/order-example.ts';

export const workflows: AnyWorkflowDefinition[] = [orderExample];
