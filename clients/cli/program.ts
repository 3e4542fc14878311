// The `threadline` command line: global options, one subcommand per task, parsed by
// commander. Each action resolves the configuration once and hands a connected (or, for
// REST-only commands, unconnected) SDK client to its command module.
import { Argument, Command, Option } from 'commander'
import { convIdArg, seqArg, userIdArg, wholeNumber } from './args.js'
import { DEFAULT_URL, TRANSPORTS, resolveConfig, type GlobalOptions } from './config.js'
import type { Io } from './io.js'
import { withClient, type Session, type Use } from './session.js'
import { chat } from './commands/chat.js'
import { conversations } from './commands/conversations.js'
import { create } from './commands/create.js'
import { history } from './commands/history.js'
import { read } from './commands/read.js'
import { send } from './commands/send.js'
import { tail } from './commands/tail.js'

const EPILOG = `
Environment:
  THREADLINE_URL     the server's HTTP base URL (default ${DEFAULT_URL}); MQTT over WebSocket is at <url>/mqtt
  THREADLINE_TOKEN   your token (a JWT; the server makes one with \`npm run token -- <user>\`)
  THREADLINE_DEVICE  a device id to keep between runs (default: a new one per run)

Exit codes: 0 done, 1 the server refused or could not be reached, 2 bad command line or configuration.

Examples:
  export THREADLINE_TOKEN=$(npm run -s token -- alice)
  CONV=$(threadline create bob)
  threadline send "$CONV" "Hi Bob!"
  threadline tail | jq .`

type Run = (session: Session, cmd: Command) => Promise<void>

export function buildProgram (io: Io): Command {
  const program = new Command('threadline')
  program
    .description('Talk to a Threadline chat server from the terminal or a script.')
    .addOption(new Option('--url <url>', "the server's HTTP base URL").env('THREADLINE_URL').default(DEFAULT_URL))
    .addOption(new Option('--token <jwt>', 'your token').env('THREADLINE_TOKEN'))
    .addOption(new Option('--device <id>', 'device id (1–64 chars of [A-Za-z0-9_.-]); default: a new one per run').env('THREADLINE_DEVICE'))
    .addOption(new Option('--transport <kind>', 'how to receive in real time').choices(TRANSPORTS).default('auto'))
    .addOption(new Option('--mqtt-url <url>', 'MQTT URL (mqtt:// or ws://) instead of the one derived from --url').env('THREADLINE_MQTT_URL'))
    .addOption(new Option('--timeout <seconds>', 'how long to wait for the server').argParser(wholeNumber(1, 3600)).default(30))
    .addHelpText('after', EPILOG)
    .showHelpAfterError(false)
    .configureHelp({ showGlobalOptions: true })
    // failures go through main()'s one-line report and exit codes, never commander's exit
    .exitOverride()
    .configureOutput({
      writeOut: s => io.stdout.write(s),
      writeErr: s => io.stderr.write(s),
      outputError: (s, write) => write(`threadline: ${s.replace(/^error: /, '')}`)
    })

  const action = (use: Use, run: Run) => async (...args: unknown[]): Promise<void> => {
    const cmd = args.at(-1) as Command
    const config = resolveConfig(cmd.optsWithGlobals<GlobalOptions>())
    await withClient(config, io, use, session => run(session, cmd))
  }

  program.command('conversations')
    .description('list your conversations, newest activity first, with unread counts')
    .option('--json', 'one JSON object per conversation')
    .action(action('rest', (s, cmd) => conversations(s, cmd.opts())))

  program.command('create')
    .description('start a direct conversation (one user) or a group (--title); prints its id')
    .addArgument(new Argument('<user_ids...>', 'the other members').argParser(userIdArg))
    .option('--title <title>', 'the group\'s title (makes it a group)')
    .addOption(new Option('--type <type>', 'direct or group (default: direct for one user without --title)').choices(['direct', 'group']))
    .option('--json', 'print the conversation as JSON')
    .action(action('rest', (s, cmd) => create(s, cmd.processedArgs[0] as string[], cmd.opts())))

  program.command('send')
    .description('send a message and wait until the server stored it; prints its seq')
    .addArgument(new Argument('<conv_id>', 'the conversation (its id, a UUID)').argParser(convIdArg))
    .argument('<text>', 'the message ("-" reads it from stdin)')
    .addOption(new Option('--reply-to <seq>', 'reply to this message').argParser(seqArg))
    .option('--json', 'print {conv_id, seq, ts, client_msg_id} as JSON')
    .action(action('once', (s, cmd) => send(s, cmd.processedArgs[0] as string, cmd.processedArgs[1] as string, cmd.opts())))

  program.command('history')
    .description('print a conversation\'s messages, oldest first (a page of the newest by default)')
    .addArgument(new Argument('<conv_id>', 'the conversation (its id, a UUID)').argParser(convIdArg))
    .addOption(new Option('--before <seq>', 'the page before this seq (scrolling back)').argParser(seqArg))
    .addOption(new Option('--limit <n>', 'events per page (1–200)').argParser(wholeNumber(1, 200)).default(50))
    .option('--json', 'one JSON object per message')
    .action(action('rest', (s, cmd) => history(s, cmd.processedArgs[0] as string, cmd.opts())))

  program.command('tail')
    .description('follow your inbox: one JSON line per event (messages, receipts, membership, errors) until interrupted')
    .action(action('follow', (s) => tail(s)))

  program.command('chat')
    .description('chat in a conversation: shows it, sends each line you type, shows what arrives')
    .addArgument(new Argument('<conv_id>', 'the conversation (its id, a UUID)').argParser(convIdArg))
    .addOption(new Option('--limit <n>', 'messages of history to show first').argParser(wholeNumber(0, 200)).default(20))
    .action(action('follow', (s, cmd) => chat(s, cmd.processedArgs[0] as string, cmd.opts())))

  program.command('read')
    .description('mark a conversation read up to its last message')
    .addArgument(new Argument('<conv_id>', 'the conversation (its id, a UUID)').argParser(convIdArg))
    .option('--json', 'print your markers as JSON')
    .action(action('once', (s, cmd) => read(s, cmd.processedArgs[0] as string, cmd.opts())))

  return program
}
