/** Local TCP ports for connection-failure tests. */
import { createServer } from 'node:net';

/** A port that was free a moment ago: nothing listens there, so connecting is refused at once. */
export function closedPort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
