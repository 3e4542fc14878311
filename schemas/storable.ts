// What PostgreSQL can hold (DESIGN.md §3 "bad_request"): text columns and jsonb refuse
// U+0000 and ill-formed UTF-16 (a lone surrogate), and bigint stops at 2^63−1 while a
// JSON number stays exact only up to 2^53−1. A send that carries any of these must be
// refused alone as `bad_request` before it reaches the store, where it would abort the
// transaction it shares with other senders' sends.
import Type, { type TString, type TStringOptions } from 'typebox'

/** The largest integer a JSON number carries exactly, and so the largest seq or count. */
export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER

/** Why the store can't hold `s`, or null when it can. */
export function unstorableReason (s: string): string | null {
  if (s.includes('\u0000')) return 'contains U+0000, which cannot be stored'
  if (!s.isWellFormed()) return 'is not well-formed UTF-16 (an unpaired surrogate)'
  return null
}

/** A string the store can hold; `nonBlank`: it must also have a character that is not whitespace. */
export function StorableString (options: TStringOptions = {}, { nonBlank = false } = {}): TString {
  return Type.Refine(Type.String(options),
    (s: string) => unstorableReason(s) === null && (!nonBlank || s.trim() !== ''),
    (s: string) => unstorableReason(s) ?? 'must not be blank (whitespace only)')
}
