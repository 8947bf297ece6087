import { ValidationError } from '../errors.ts';
import type { Job } from '../queue.ts';
import type { ValidRow } from '../validate.ts';

/** PostgreSQL's earliest timestamp, 4714-11-24 00:00 BC (Julian day 0), in epoch ms. JavaScript's latest fits. */
export const pgMinTimestampMs = -210_866_803_200_000;
/** 0001-01-01T00:00:00Z: from here to year 9999, `toISOString()` is a format PostgreSQL reads. */
const yearOneMs = -62_135_596_800_000;
const year10000Ms = 253_402_300_800_000;

/**
 * What the shared validation accepts but PostgreSQL cannot store, checked per job
 * before its batch is written, so that the job fails alone with a ValidationError
 * naming the field (the same code as any refused input), instead of its batch
 * statement failing for everyone.
 */
export function pgJobProblem(job: Job): ValidationError | undefined {
  if (!Array.isArray(job.rows)) return pgRowProblem(job.rows, '');
  for (let i = 0; i < job.rows.length; i++) {
    const problem = pgRowProblem(job.rows[i] as ValidRow, `rows[${i}].`);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function pgRowProblem(row: ValidRow, prefix: string): ValidationError | undefined {
  if (row.recordedAt < pgMinTimestampMs) {
    return new ValidationError(
      `${prefix}recordedAt`,
      `must be on or after 4714-11-24 BC on PostgreSQL (its earliest timestamp), got ${row.recordedAt}`,
    );
  }
  if (row.labels !== null) {
    for (const key in row.labels) {
      if ((row.labels[key] as string).includes('\u0000')) {
        return new ValidationError(
          `${prefix}labels.${key}`,
          'must not contain U+0000 on PostgreSQL (jsonb cannot store it)',
        );
      }
    }
  }
  return undefined;
}

/**
 * Epoch ms as a `timestamptz` literal, exact to the millisecond for every
 * JavaScript date PostgreSQL can hold (a float8 of seconds would round far from 1970;
 * years before 1 and after 9999 need PostgreSQL's own notation).
 */
export function timestampLiteral(ms: number): string {
  const date = new Date(ms);
  if (ms >= yearOneMs && ms < year10000Ms) return date.toISOString();
  const year = date.getUTCFullYear();
  const rest = `-${two(date.getUTCMonth() + 1)}-${two(date.getUTCDate())} ${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}.${String(date.getUTCMilliseconds()).padStart(3, '0')}+00`;
  // Astronomical year 0 is 1 BC.
  return year <= 0 ? `${String(1 - year).padStart(4, '0')}${rest} BC` : `${year}${rest}`;
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
