import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** Why a connection was closed at once, without a response. */
export type DropReason = 'max_connections' | 'max_connections_per_client';

/**
 * The server's open connections: counted per client address, capped per
 * client (`maxPerClient`, 0 for no cap; the server's own `maxConnections` caps
 * the total), and cut off all at once when a shutdown's grace period is over.
 * A connection over a cap is closed as soon as it is accepted, so it costs a
 * descriptor for a moment only.
 */
export class ConnectionGuard {
  private readonly open = new Set<Socket>();
  private readonly perClient = new Map<string, number>();

  constructor(
    server: Server,
    private readonly maxPerClient: number,
    onDrop: (reason: DropReason) => void,
  ) {
    // Node closes connections over server.maxConnections itself, before 'connection'.
    server.on('drop', () => onDrop('max_connections'));
    server.on('connection', (socket: Socket) => {
      const client = socket.remoteAddress ?? 'unknown';
      const count = this.perClient.get(client) ?? 0;
      if (this.maxPerClient > 0 && count >= this.maxPerClient) {
        onDrop('max_connections_per_client');
        socket.destroy();
        return;
      }
      this.perClient.set(client, count + 1);
      this.open.add(socket);
      socket.once('close', () => {
        this.open.delete(socket);
        const left = (this.perClient.get(client) ?? 1) - 1;
        if (left === 0) this.perClient.delete(client);
        else this.perClient.set(client, left);
      });
    });
  }

  /** Connections open now. */
  get size(): number {
    return this.open.size;
  }

  /** Closes every connection still open; returns how many there were. */
  cutOff(): number {
    const count = this.open.size;
    for (const socket of this.open) socket.destroy();
    return count;
  }
}
