/** Timestamps leave the sidecar as ISO 8601 strings (pg and PGlite hand back Dates). */
export const iso = (t: Date | string): string => new Date(t).toISOString()
