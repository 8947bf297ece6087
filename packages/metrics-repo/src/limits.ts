/** Documented input limits. Longer or larger input is refused with a ValidationError. */
export const limits = {
  /** Longest metric name, in UTF-16 code units. */
  maxNameLength: 256,
  /** Most labels on one metric. */
  maxLabels: 32,
  /** Longest label key, in UTF-16 code units. */
  maxLabelKeyLength: 128,
  /** Longest label value, in UTF-16 code units. */
  maxLabelValueLength: 1024,
  /** Longest eventId, in UTF-16 code units. */
  maxEventIdLength: 256,
  /** Timestamps must lie within what a JavaScript Date can hold (±8.64e15 ms from the epoch). */
  maxAbsTimestampMs: 8.64e15,
  /** Widest `summarize` bucket: 366 days, in ms. */
  maxBucketMs: 31_622_400_000,
} as const;
