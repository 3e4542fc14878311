// The token every request and connection carries, and its renewal. One refresh at a time:
// a 401 on three concurrent requests asks the app once.
import { tokenSubject } from './ids.js'

export class Auth {
  #token: string
  readonly #refresh: (() => Promise<string>) | undefined
  #refreshing: Promise<string> | null = null
  readonly userId: string

  constructor (token: string, refresh?: () => Promise<string>) {
    this.#token = token
    this.#refresh = refresh
    this.userId = tokenSubject(token)
  }

  get token (): string {
    return this.#token
  }

  get canRefresh (): boolean {
    return this.#refresh !== undefined
  }

  /**
   * Asks the app for a fresh token, unless `stale` is no longer the current one (another
   * caller refreshed meanwhile). Throws what refreshToken() throws.
   */
  async refresh (stale: string): Promise<string> {
    if (this.#refresh === undefined) throw new Error('the server refused the token and no refreshToken() was given')
    if (stale !== this.#token) return this.#token
    this.#refreshing ??= this.#refresh().then((token) => {
      if (typeof token !== 'string' || token === '') throw new TypeError('refreshToken() gave no token')
      this.#token = token
      return token
    }).finally(() => { this.#refreshing = null })
    return await this.#refreshing
  }
}
