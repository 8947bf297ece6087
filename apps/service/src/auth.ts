import { createHash, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

/** A token is RFC 6750's `b64token` (what a `Bearer` header can carry), at least this long. */
export const minTokenLength = 16;
export const maxTokenLength = 1024;
const b64token = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Why `token` cannot be the service token, or undefined when it can. Never repeats the token itself. */
export function tokenProblem(token: string): string | undefined {
  if (token.length < minTokenLength || token.length > maxTokenLength) {
    return `must be ${minTokenLength} to ${maxTokenLength} characters long, got ${token.length}`;
  }
  if (!b64token.test(token)) {
    return 'may hold only letters, digits and - . _ ~ + / (then = padding): no spaces, quotes or control characters';
  }
  return undefined;
}

export type BearerVerdict = 'ok' | 'missing' | 'invalid';

/**
 * Checks `Authorization` headers against `token`. Both sides are hashed
 * (SHA-256) and compared with `timingSafeEqual`: the time taken depends on
 * neither the token's length nor where a guess first differs.
 */
export function bearerChecker(token: string): (authorization: string | undefined) => BearerVerdict {
  const expected = sha256(token);
  return (authorization) => {
    if (authorization === undefined) return 'missing';
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    if (match === null) return 'missing';
    return timingSafeEqual(sha256(match[1] as string), expected) ? 'ok' : 'invalid';
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Whether listening on `host` keeps the service to this machine: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const name = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (name === 'localhost' || name === '::1') return true;
  const v4 = name.startsWith('::ffff:') ? name.slice('::ffff:'.length) : name;
  if (isIPv4(v4)) return v4.startsWith('127.');
  return isIPv6(name) && /^(0{0,4}:){7}0{0,3}1$/.test(name);
}
