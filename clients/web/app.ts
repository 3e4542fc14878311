// The web chat page: signs in with a token from the URL fragment (`/#token=<jwt>`) or the
// paste box, then shows the conversation list and the open conversation. Everything it
// knows comes through the SDK, over MQTT-over-WebSocket or, when that is blocked,
// long-poll; the page can't tell which and needn't (it only says which in the header).
import { ThreadlineClient, type StateChange } from '../sdk/index.js'
import { byId } from './dom.js'
import { Sidebar } from './sidebar.js'
import { Thread } from './thread.js'

const TOKEN_KEY = 'threadline.token'
const DEVICE_KEY = 'threadline.device'

const signIn = byId<HTMLElement>('sign-in')
const tokenForm = byId<HTMLFormElement>('token-form')
const tokenInput = byId<HTMLTextAreaElement>('token')
const tokenHint = byId('token-hint')
const chat = byId('chat')
const me = byId('me')
const connection = byId('connection')
const alertBox = byId('alert')

/** The token in `#token=…`, removed from the address bar so it is not copied or bookmarked along. */
function tokenFromFragment (): string | null {
  const token = new URLSearchParams(location.hash.slice(1)).get('token')
  if (token === null || token.trim() === '') return null
  history.replaceState(null, '', location.pathname + location.search)
  return token.trim()
}

/**
 * One device per tab (a session of its own, so two tabs of one user don't take each
 * other's MQTT session over), kept across reloads of that tab.
 */
function deviceId (): string {
  let id = sessionStorage.getItem(DEVICE_KEY)
  if (id === null) {
    const bytes = crypto.getRandomValues(new Uint8Array(6))
    id = 'web-' + Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('')
    sessionStorage.setItem(DEVICE_KEY, id)
  }
  return id
}

export function showAlert (message: string | null): void {
  alertBox.textContent = message ?? ''
  alertBox.hidden = message === null
}

/** Shows the paste box and resolves with the next token submitted in it. */
function askForToken (why: string | null): Promise<string> {
  tokenHint.textContent = why ?? tokenHint.textContent
  signIn.hidden = false
  tokenInput.focus()
  return new Promise(resolve => {
    const submit = (e: SubmitEvent): void => {
      e.preventDefault()
      const token = tokenInput.value.trim()
      if (token === '') return
      tokenForm.removeEventListener('submit', submit)
      tokenInput.value = ''
      signIn.hidden = true
      resolve(token)
    }
    tokenForm.addEventListener('submit', submit)
  })
}

function showConnection ({ state, transport }: StateChange): void {
  connection.dataset.state = state
  connection.dataset.transport = transport ?? ''
  connection.textContent = state === 'online'
    ? `Online · ${transport === 'longpoll' ? 'long-poll' : 'WebSocket'}`
    : state === 'connecting' ? 'Connecting…' : 'Offline · reconnecting'
}

const reason = (err: unknown): string => err instanceof Error ? err.message : String(err)

/** Back to the paste box, saying why; the next token submitted starts again. */
function signInAgain (why: string): void {
  sessionStorage.removeItem(TOKEN_KEY)
  showAlert(why)
  showConnection({ state: 'offline', transport: null })
  void askForToken(null).then(start)
}

async function start (token: string): Promise<void> {
  let client: ThreadlineClient
  try {
    client = new ThreadlineClient({
      url: location.origin,
      token,
      deviceId: deviceId(),
      // the server refused the token (expired, most likely): the user pastes a new one
      refreshToken: async () => {
        const fresh = await askForToken('The server refused your token (it may have expired): paste a new one.')
        sessionStorage.setItem(TOKEN_KEY, fresh)
        return fresh
      }
    })
  } catch (err) {
    return signInAgain(`That is not a token: ${reason(err)}`)
  }
  client.on('state', showConnection)
  client.on('error', (err) => showAlert(err instanceof Error ? err.message : `${err.code}: ${err.message}`))
  showConnection({ state: 'connecting', transport: null })
  try {
    await client.connect()
  } catch (err) {
    await client.close()
    return signInAgain(`Could not connect: ${reason(err)}`)
  }
  showAlert(null)
  sessionStorage.setItem(TOKEN_KEY, token)
  me.textContent = `Signed in as ${client.userId}`
  me.hidden = false
  chat.hidden = false

  const thread = new Thread(client)
  const sidebar = new Sidebar(client, (view) => {
    thread.open(view).catch((err: unknown) => showAlert(`Could not open the conversation: ${reason(err)}`))
  })
  thread.onViewNeeded = (convId) => sidebar.view(convId)
  await sidebar.load()
}

const initial = tokenFromFragment() ?? sessionStorage.getItem(TOKEN_KEY)
if (initial !== null) void start(initial)
else void askForToken(null).then(start)
