import type { IncomingMessage, Server, ServerResponse } from 'node:http';
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
  /** Per open connection: requests answered, one in progress, bytes read when the last one was answered. */
  private readonly state = new WeakMap<Socket, { answered: number; busy: boolean; bytesRead: number }>();
  /** When the server last accepted a connection (performance.now()), or -Infinity. */
  lastAcceptedAt = Number.NEGATIVE_INFINITY;

  constructor(
    server: Server,
    private readonly maxPerClient: number,
    onDrop: (reason: DropReason) => void,
  ) {
    // Node closes connections over server.maxConnections itself, before 'connection'.
    server.on('drop', () => onDrop('max_connections'));
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const entry = this.state.get(request.socket as Socket);
      if (entry === undefined) return;
      entry.busy = true;
      response.once('close', () => {
        entry.busy = false;
        entry.answered += 1;
        entry.bytesRead = request.socket.bytesRead;
      });
    });
    server.on('connection', (socket: Socket) => {
      this.lastAcceptedAt = performance.now();
      const client = socket.remoteAddress ?? 'unknown';
      const count = this.perClient.get(client) ?? 0;
      if (this.maxPerClient > 0 && count >= this.maxPerClient) {
        onDrop('max_connections_per_client');
        socket.destroy();
        return;
      }
      this.perClient.set(client, count + 1);
      this.open.add(socket);
      this.state.set(socket, { answered: 0, busy: false, bytesRead: 0 });
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

  /**
   * Closes the idle keep-alive connections: answered, and nothing read since. Not those that began
   * a request (its headers or body still arriving: the grace period is theirs), nor those not yet
   * heard from: on a busy machine their request may sit unread in the kernel's buffer, and closing
   * a socket with unread bytes resets it (the client loses its answer). Returns how many it closed.
   */
  closeIdle(): number {
    let closed = 0;
    for (const socket of this.open) {
      const entry = this.state.get(socket);
      if (entry === undefined || entry.busy || entry.answered === 0 || socket.bytesRead > entry.bytesRead) continue;
      socket.destroy();
      closed += 1;
    }
    return closed;
  }

  /** Closes every connection still open; returns how many there were. */
  cutOff(): number {
    const count = this.open.size;
    for (const socket of this.open) socket.destroy();
    return count;
  }
}
