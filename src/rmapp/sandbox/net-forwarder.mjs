// Runs inside a sandbox whose only network device is loopback: listens on 127.0.0.1:3128 and
// hands every connection to the egress proxy's Unix socket (src/rmapp/sandbox/egress-proxy.ts),
// then runs the command (HTTP_PROXY and HTTPS_PROXY point here) and exits with its status.
// Plain JavaScript so it runs with the host's node, read-only inside the sandbox.
// What it says on stderr is the command's stderr: under bubblewrap a missing program is caught before
// it starts (die-with-parent.ts EXEC_CHECK, on a descriptor of rmapp's own), so its "cannot run" is
// reported as the command's output and exit status, never as rmapp's diagnosis (a command can print it).
// Usage: node net-forwarder.mjs <socket> -- <command> [args...]
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';

const [socket, sep, ...argv] = process.argv.slice(2);
if (!socket || sep !== '--' || !argv.length) {
  process.stderr.write('usage: net-forwarder.mjs <socket> -- <command> [args...]\n');
  process.exit(125);
}
const server = createServer((client) => {
  const upstream = connect(socket);
  client.pipe(upstream).on('error', () => client.destroy());
  upstream.pipe(client).on('error', () => upstream.destroy());
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(3128, '127.0.0.1', () => {
  const child = spawn(argv[0], argv.slice(1), { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('error', (err) => {
    process.stderr.write(`rmapp sandbox: cannot run ${argv[0]}: ${err.message}\n`);
    process.exit(127);
  });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)));
});
server.on('error', (err) => {
  process.stderr.write(`rmapp sandbox: network forwarder: ${err.message}\n`);
  process.exit(125);
});
