// The few DOM helpers the page needs; no framework.

/** The element with this id; the page's markup (index.html) guarantees it exists. */
export function byId<T extends HTMLElement = HTMLElement> (id: string): T {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`#${id} is missing from index.html`)
  return el as T
}

type Child = Node | string | null | undefined | false

/** `h('p', { class: 'x' }, 'text', child)`: attributes as strings; text is never parsed as HTML. */
export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attrs: Record<string, string | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) if (value !== undefined) el.setAttribute(name, value)
  for (const child of children) if (child !== null && child !== undefined && child !== false) el.append(child)
  return el
}

/**
 * Makes `list`'s children the `items` in order, reusing the element of each key (so focus,
 * scroll and screen readers' live-region reading survive an update): `render` builds an
 * element's content; it runs only when the item's `sig` changed.
 */
export function reconcile<T extends { key: string }> (list: HTMLElement, items: readonly T[], sig: (item: T) => string, render: (item: T) => HTMLElement): void {
  const existing = new Map<string, HTMLElement>()
  for (const child of Array.from(list.children) as HTMLElement[]) {
    if (child.dataset.key !== undefined) existing.set(child.dataset.key, child)
  }
  let cursor = list.firstElementChild
  for (const item of items) {
    const s = sig(item)
    const build = (): HTMLElement => {
      const fresh = render(item)
      fresh.dataset.key = item.key
      fresh.dataset.sig = s
      return fresh
    }
    let el = existing.get(item.key)
    existing.delete(item.key)
    if (el === undefined) {
      el = build()
    } else if (el.dataset.sig !== s) {
      const fresh = build()
      if (cursor === el) cursor = fresh
      el.replaceWith(fresh)
      el = fresh
    }
    if (el !== cursor) list.insertBefore(el, cursor)
    cursor = el.nextElementSibling
  }
  for (const stale of existing.values()) stale.remove()
}
