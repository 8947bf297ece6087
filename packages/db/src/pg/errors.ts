/**
 * What went wrong in a PostgreSQL call, as one stable string: the server's
 * SQLSTATE (`55P03` lock timeout, `57P01` server shut down, `23505` unique
 * violation...), the socket's errno (`ECONNREFUSED`, `ECONNRESET`), or, for the
 * `pg` driver's own errors that carry no code, a name for what happened.
 */
export function pgCodeOf(error: unknown): string {
  if (typeof error !== 'object' || error === null) return 'UNKNOWN';
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code !== '') return code;
  const message = error instanceof Error ? error.message : '';
  // Errors `pg` raises itself, with no code (lib/client.js, pg-pool).
  if (/Connection terminated|not queryable|Connection closed|ended/i.test(message)) return 'CONNECTION_LOST';
  if (/timeout/i.test(message)) return 'CONNECT_TIMEOUT';
  return 'UNKNOWN';
}

/** Whether the connection itself failed (server gone, restarting, network), as opposed to the statement. */
export function isConnectionError(error: unknown): boolean {
  const code = pgCodeOf(error);
  // Class 08: connection exception; 57P01-57P03: shutdown / crash / cannot connect now.
  return (
    code.startsWith('08') ||
    code.startsWith('57P') ||
    code.startsWith('E') ||
    code === 'CONNECTION_LOST' ||
    code === 'CONNECT_TIMEOUT'
  );
}
