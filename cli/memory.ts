/**
 * `shardmind remember`, `recall`, `history` and `forget`: the memory from a terminal, through the router and the
 * TypeScript client (Debian's nats-server package ships no `nats` CLI to poke it with). For people checking what
 * the agents know, correcting it when the user asks, and for scripts (`--json`).
 *
 *   shardmind remember "The user never takes meetings before 10am" --subject user --predicate earliest_meeting_time --object 10:00
 *   shardmind recall "can I book a 9am call?" [--domain calendar] [--as-of 2026-11-01T00:00:00Z] [--limit 5]
 *   shardmind history user --predicate earliest_meeting_time --domain calendar
 *   shardmind forget calendar:000000002a:0
 */
import { connect, type Fact, type RecalledFact, type ShardmindClient } from '../client/index.ts';
import { ShardmindError, timestampMs } from '../protocol/index.ts';
import { FlagValueError, flagValueLine, intFlag, numberFlag, orConfigError, parseCommandFlags, readFlagValues, UsageError } from './args.ts';
import { agentServers, withAgentServersHint } from './cluster-connect.ts';
import { natsConnectOptionsFromEnv } from './nats-tls.ts';
import type { Command } from './command.ts';
import { renderTable, stdio, type Io } from './status.ts';

const CONNECTION = '[--config FILE] [--servers URL,…] [--agent NAME] [--node NAME] [--json]';
const REMEMBER_USAGE = `usage: shardmind remember TEXT [--domain D] [--subject S] [--predicate P] [--object O] [--confidence (0, 1]] ${CONNECTION}

Stores one fact. Without --domain the router classifies the text. Prints the domain, the status and the fact id.`;
const RECALL_USAGE = `usage: shardmind recall [QUERY] [--domain D[,D…]] [--subject S] [--predicate P] [--as-of ISO] [--limit N]
                       [--max-stale-ms MS] ${CONNECTION}

Asks what is known, best first. Without --domain the router decides which domains to ask. --as-of: what we now
know held at that time (world time), among the facts recorded by then; not what was believed then. --max-stale-ms:
a replica may answer, at most that stale (the one on --node first).`;

const HISTORY_USAGE = `usage: shardmind history SUBJECT --domain D [--predicate P] [--limit N | --all] ${CONNECTION}

The facts recorded about SUBJECT (and PREDICATE) in domain D, oldest first, superseded and retracted ones included:
when each was true (valid from / to), when it was learned, who learned it, and its status. --limit: the N recorded
most recently (default 100, at most 1000; a line says when older ones remain). --all: every one, read page by page.`;
const FORGET_USAGE = `usage: shardmind forget FACT_ID [--domain D] ${CONNECTION}

Removes the fact's text from the memory and its index (the user asked us to forget it): recall and history no longer
show it. A tombstone without the text stays, so every replica forgets it too and a get of the id answers
"forgotten". The domain comes from the id unless given.`;

const CONNECTION_FLAGS = {
  config: { type: 'string' },
  servers: { type: 'string' },
  agent: { type: 'string' },
  node: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function runRemember(argv: readonly string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommandFlags(
    argv,
    {
      ...CONNECTION_FLAGS,
      domain: { type: 'string' },
      subject: { type: 'string' },
      predicate: { type: 'string' },
      object: { type: 'string' },
      confidence: { type: 'string' },
    },
    REMEMBER_USAGE,
    io,
    1,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const text = positionals[0];
  if (text === undefined || text.trim() === '') return usage(io, 'TEXT: the fact to remember is required', REMEMBER_USAGE);
  const flags = readFlagValues(io, 'remember', () => ({
    confidence: numberFlag('confidence', values.confidence, { min: 0, max: 1, minExclusive: true }, 'a number in (0, 1]'),
  }));
  if (typeof flags === 'number') return flags;
  const { confidence } = flags;
  return withClient(io, values, async (memory) => {
    const r = await memory.remember(
      {
        text,
        ...(values.subject !== undefined ? { subject: values.subject } : {}),
        ...(values.predicate !== undefined ? { predicate: values.predicate } : {}),
        ...(values.object !== undefined ? { object: values.object } : {}),
        ...(confidence !== undefined ? { confidence } : {}),
      },
      values.domain !== undefined ? { domain: values.domain } : {},
    );
    if (values.json) io.out(`${JSON.stringify(r)}\n`);
    else io.out(`${r.domain}: ${r.status} ${r.factId} (seq ${r.seq})${r.superseded.length ? `, closes ${r.superseded.join(', ')}` : ''}\n`);
  });
}

export async function runRecall(argv: readonly string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommandFlags(
    argv,
    {
      ...CONNECTION_FLAGS,
      domain: { type: 'string' },
      subject: { type: 'string' },
      predicate: { type: 'string' },
      'as-of': { type: 'string' },
      limit: { type: 'string' },
      'max-stale-ms': { type: 'string' },
    },
    RECALL_USAGE,
    io,
    1,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const query = positionals[0];
  if ((query === undefined || query.trim() === '') && values.subject === undefined) {
    return usage(io, 'QUERY or --subject: say what to recall', RECALL_USAGE);
  }
  let asOf: Date | undefined;
  let limit: number | undefined;
  let maxStaleMs: number | undefined;
  try {
    if (values['as-of'] !== undefined) {
      // The wire's own rule (a zone is required: a time without one would mean this machine's zone here and
      // something else on the Mini that answers), so the CLI refuses what the protocol refuses.
      try {
        asOf = new Date(timestampMs(values['as-of'], '--as-of'));
      } catch {
        throw new UsageError(`--as-of: "${values['as-of']}" is not an ISO 8601 time with a zone (e.g. 2026-11-01T00:00:00Z or 2026-11-01T09:00:00+01:00)`);
      }
    }
    if (values.limit !== undefined) limit = intFlag('limit', values.limit, 10, 1, 1000);
    if (values['max-stale-ms'] !== undefined) maxStaleMs = intFlag('max-stale-ms', values['max-stale-ms'], 0, 0, 86_400_000);
  } catch (err) {
    if (err instanceof FlagValueError) {
      io.err(`${flagValueLine('recall', err)}\n`);
      return 2;
    }
    if (err instanceof UsageError) return usage(io, err.message, RECALL_USAGE);
    throw err;
  }
  const domains = values.domain?.split(',').map((d) => d.trim()).filter(Boolean);
  return withClient(io, values, async (memory) => {
    const r = await memory.recall({
      ...(query !== undefined ? { query } : {}),
      ...(domains !== undefined ? { domain: domains.length === 1 ? domains[0]! : domains } : {}),
      ...(values.subject !== undefined ? { subject: values.subject } : {}),
      ...(values.predicate !== undefined ? { predicate: values.predicate } : {}),
      ...(asOf !== undefined ? { asOf } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(maxStaleMs !== undefined ? { maxStaleMs } : {}),
    });
    if (values.json) {
      io.out(`${JSON.stringify(r)}\n`);
      return;
    }
    const served = r.servedBy !== undefined ? ` (answered by ${r.servedBy}, at most ${r.staleMs} ms stale)` : '';
    io.out(`asked ${r.domains.join(', ')}${served}: ${r.facts.length} fact${r.facts.length === 1 ? '' : 's'}\n`);
    for (const m of r.missing) io.out(`  (no answer from ${m.domain}: ${m.error})\n`);
    if (r.facts.length > 0) io.out(renderTable(['SCORE', 'CONF', 'DOMAIN', 'FACT', 'ID'], r.facts.map(row)));
  });
}

export async function runHistory(argv: readonly string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommandFlags(
    argv,
    { ...CONNECTION_FLAGS, domain: { type: 'string' }, predicate: { type: 'string' }, limit: { type: 'string' }, all: { type: 'boolean' } },
    HISTORY_USAGE,
    io,
    1,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const subject = positionals[0];
  if (subject === undefined || subject.trim() === '') return usage(io, 'SUBJECT: whose history to show is required', HISTORY_USAGE);
  if (values.domain === undefined) return usage(io, '--domain: history reads one domain (e.g. --domain calendar)', HISTORY_USAGE);
  if (values.all && values.limit !== undefined) return usage(io, '--all and --limit: give one of them', HISTORY_USAGE);
  const flags = readFlagValues(io, 'history', () => ({ limit: intFlag('limit', values.limit, 100, 1, 1000) }));
  if (typeof flags === 'number') return flags;
  const domain = values.domain;
  return withClient(io, values, async (memory) => {
    let page = await memory.historyPage(subject, values.predicate, { domain, limit: values.all ? 1000 : flags.limit });
    const facts = [...page.facts];
    // Pages run from the most recently recorded back; each page is in history order, so the whole is sorted again.
    while (values.all && page.next !== undefined) {
      page = await memory.historyPage(subject, values.predicate, { domain, limit: 1000, before: page.next });
      facts.push(...page.facts);
    }
    if (values.all) facts.sort(historyOrder);
    if (values.json) {
      io.out(`${JSON.stringify(facts)}\n`);
      return;
    }
    io.out(`${facts.length} fact${facts.length === 1 ? '' : 's'} about ${subject}${values.predicate ? ` / ${values.predicate}` : ''} in ${domain}\n`);
    if (facts.length > 0) io.out(renderTable(['VALID FROM', 'VALID TO', 'STATUS', 'BY', 'FACT', 'ID'], facts.map(historyRow)));
    if (!values.all && page.next !== undefined) io.out(`older facts remain: --limit up to 1000, or --all\n`);
  });
}

export async function runForget(argv: readonly string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommandFlags(argv, { ...CONNECTION_FLAGS, domain: { type: 'string' } }, FORGET_USAGE, io, 1);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const factId = positionals[0];
  if (factId === undefined || factId.trim() === '') return usage(io, 'FACT_ID: the fact to forget is required (recall shows ids)', FORGET_USAGE);
  return withClient(io, values, async (memory) => {
    const r = await memory.forget(factId, values.domain !== undefined ? { domain: values.domain } : {});
    if (values.json) io.out(`${JSON.stringify(r)}\n`);
    else io.out(`${r.domain}: ${r.status} ${r.factId} (seq ${r.seq})${r.duplicate ? ', already forgotten' : ''}\n`);
  });
}

/** History order, as the shard sorts a page: when it became true, then when it was recorded. */
function historyOrder(a: Fact, b: Fact): number {
  return (a.validFrom?.getTime() ?? 0) - (b.validFrom?.getTime() ?? 0) || a.recordedAt.getTime() - b.recordedAt.getTime();
}

function historyRow(f: Fact): string[] {
  const day = (d: Date | undefined): string => (d === undefined ? '-' : d.toISOString().slice(0, 16).replace('T', ' '));
  return [day(f.validFrom), day(f.validTo), f.status, f.source.agent, f.text.length > 60 ? `${f.text.slice(0, 57)}…` : f.text, f.id];
}

function row(f: RecalledFact): string[] {
  return [f.score.toFixed(3), f.effectiveConfidence.toFixed(2), f.domain, f.text.length > 80 ? `${f.text.slice(0, 77)}…` : f.text, f.id];
}

function usage(io: Io, message: string, text: string): number {
  io.err(`${message}\n${text}\n`);
  return 2;
}

/** Connects a client to the cluster (--servers, or every NATS URL in the config), runs `work`; errors are exit 1. */
async function withClient(
  io: Io,
  values: { config?: string; servers?: string; agent?: string; node?: string },
  work: (memory: ShardmindClient) => Promise<void>,
): Promise<number> {
  const servers = await orConfigError(io, () => agentServers(values));
  if (servers === 1) return 1;
  let memory: ShardmindClient | undefined;
  try {
    memory = await connect({
      servers,
      agent: values.agent ?? 'shardmind-cli',
      ...(values.node !== undefined ? { node: values.node } : {}),
      ...natsConnectOptionsFromEnv(),
    }).catch((err: unknown) => {
      // Servers from the config that cannot be reached: say what `status` says (walkthrough-session13 F9).
      throw err instanceof ShardmindError ? withAgentServersHint(err, values.servers) : err;
    });
    await work(memory);
    return 0;
  } catch (err) {
    if (!(err instanceof ShardmindError)) throw err;
    io.err(`${err.code}: ${err.message}\n`);
    return 1;
  } finally {
    await memory?.close();
  }
}

export const rememberCommand: Command = {
  summary: 'store one fact through the router (prints its domain, status and id)',
  usage: REMEMBER_USAGE,
  run: (args) => runRemember(args),
};

export const historyCommand: Command = {
  summary: 'every fact ever recorded about a subject in a domain, oldest first, with when it was true',
  usage: HISTORY_USAGE,
  run: (args) => runHistory(args),
};

export const forgetCommand: Command = {
  summary: 'remove a fact from the memory at the user\'s request (a tombstone stays)',
  usage: FORGET_USAGE,
  run: (args) => runForget(args),
};

export const recallCommand: Command = {
  summary: 'ask what is known, best first (through the router; --as-of for what we now know held then)',
  usage: RECALL_USAGE,
  run: (args) => runRecall(args),
};
