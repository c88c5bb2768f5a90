/**
 * `agent.kind: command` — any program that reads the prompt on stdin and prints its answer: its
 * stdout is the transcript, one turn, and its answer. No tokens or cost (it reports none).
 */
import type { AgentAdapter } from './adapter.ts';

export const commandAdapter: AgentAdapter = {
  kind: 'command',
  defaultCommand: [],
  reportsCost: false,
  usesFiles: false,
  check: (command) => (command.length ? [] : ['agent.command is required when agent.kind is command (the program and its arguments)']),
  argv: (command) => [...command],
  parser(t) {
    t.turn();
    return {
      line(line, truncated) {
        t.output('stdout', truncated ? `${line}… (line cut: longer than the line limit)\n` : `${line}\n`);
      },
      end({ stdout }) {
        t.result = stdout;
      },
      failure: () => null,
    };
  },
};
