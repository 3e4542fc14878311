// A growable set of small non-negative integers (message numbers of one sender), cheap to
// send over IPC as base64. Loss = acked bits missing from a member's received bits.

export class Bitmap {
  #bytes: Uint8Array

  constructor (bytes: Uint8Array = new Uint8Array(64)) {
    this.#bytes = bytes
  }

  static fromBase64 (text: string): Bitmap {
    return new Bitmap(new Uint8Array(Buffer.from(text, 'base64')))
  }

  /** Sets bit n; answers whether it was already set. */
  add (n: number): boolean {
    const i = n >>> 3
    if (i >= this.#bytes.length) {
      const grown = new Uint8Array(Math.max(i + 1, this.#bytes.length * 2))
      grown.set(this.#bytes)
      this.#bytes = grown
    }
    const mask = 1 << (n & 7)
    const had = ((this.#bytes[i] as number) & mask) !== 0
    this.#bytes[i] = (this.#bytes[i] as number) | mask
    return had
  }

  has (n: number): boolean {
    const i = n >>> 3
    return i < this.#bytes.length && ((this.#bytes[i] as number) & (1 << (n & 7))) !== 0
  }

  count (): number {
    let c = 0
    for (const b of this.#bytes) c += POPCOUNT[b] as number
    return c
  }

  /** How many bits of this set are missing from `other`. */
  missingFrom (other: Bitmap | undefined): number {
    if (other === undefined) return this.count()
    let c = 0
    const theirs = other.#bytes
    for (let i = 0; i < this.#bytes.length; i++) {
      const mine = this.#bytes[i] as number
      if (mine === 0) continue
      c += POPCOUNT[mine & ~(theirs[i] ?? 0) & 0xff] as number
    }
    return c
  }

  toBase64 (): string {
    let end = this.#bytes.length
    while (end > 0 && this.#bytes[end - 1] === 0) end--
    return Buffer.from(this.#bytes.buffer, this.#bytes.byteOffset, end).toString('base64')
  }
}

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let c = 0
  for (let v = b; v !== 0; v >>= 1) c += v & 1
  return c
})
