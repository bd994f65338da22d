/**
 * Which reply subjects a shardmind service answers. NATS permissions bound what a client publishes, not the reply
 * subject it puts on a request: a host, logged in as `host` (allowed everything), that answered whatever reply
 * subject (or `sm-reply-to`) a request named would publish for an agent where the agent itself may not —
 * `$JS.API.STREAM.PURGE.…`, `$KV.sm_epochs.…`, `sm.log.…` (review session 12, H1; decisions §69). So every service
 * an agent can reach (`sm.mem.*`, `sm.shard.*`, `sm.replica.*`) answers only client inboxes, `_INBOX.…`: the only
 * subjects an agent login may subscribe to, and where nats.js, nats.py and `nats req` put their replies by default.
 * A request naming anything else is not answered; it is counted and reported, at most once per `reportEveryMs`.
 *
 * A named agent login's inboxes are `_INBOX.<login>.…` (`agentInboxPrefix`; decisions §80): still client inboxes, so
 * the same check admits them, and nats-server, not this check, keeps one agent out of another's namespace.
 *
 * Hosts make their own requests (JetStream, KV) from another prefix (`HOST_INBOX_PREFIX`), so no answer can be
 * directed into a host's pending JetStream request either. The router's requests to shards stay on `_INBOX.`: shards
 * answer them, so they must be inboxes a shard answers.
 */
import { isReplySubject } from './hand-off.ts';

/** The prefix of every reply subject a service answers (nats.js `createInbox()`, nats.py, `nats req`). */
export const CLIENT_INBOX_PREFIX = '_INBOX.';
/** The inbox prefix of a host's own connection (nats.js `connect({ inboxPrefix })`): not answerable by services. */
export const HOST_INBOX_PREFIX = '_SMHOST';
/** How often a service reports the requests it left unanswered for their reply subject. */
export const FOREIGN_REPLY_REPORT_MS = 10_000;

/** A subject a service may answer: a well-formed subject under `_INBOX.`. */
export function isInboxSubject(subject: string): boolean {
  return subject.startsWith(CLIENT_INBOX_PREFIX) && isReplySubject(subject);
}

/**
 * The inbox namespace of a NATS login: `_INBOX.<login>`. A named agent login may subscribe only under it
 * (`_INBOX.<login>.>`, cli/nats-auth.ts), and the SDK logged in as that user makes its reply subjects there.
 */
export function agentInboxPrefix(login: string): string {
  return `${CLIENT_INBOX_PREFIX}${login}`;
}

/**
 * The inbox prefix a client logged in as `user` uses unless told otherwise: `_INBOX.<user>` when the user name is one
 * subject token, else undefined (the library's default, `_INBOX`), since a name with `.`, `*`, `>` or white space
 * cannot name one namespace.
 */
export function inboxPrefixForUser(user: string): string | undefined {
  return user.length <= 64 && isReplySubject(user) && !user.includes('.') ? agentInboxPrefix(user) : undefined;
}

/** True for an inbox prefix whose inboxes services answer: `_INBOX` itself or a well-formed subject under it. */
export function isClientInboxPrefix(prefix: string): boolean {
  return prefix === CLIENT_INBOX_PREFIX.slice(0, -1) || isInboxSubject(prefix);
}

/**
 * One service's check of reply subjects: `admits` says whether a request may be answered, and counts and reports
 * (throttled) those it may not. A report that throws is swallowed: a broken log sink must not stop the check.
 */
export class ReplySubjectCheck {
  private refused = 0;
  private unreported = 0;
  private reportedAt = Number.NEGATIVE_INFINITY;

  constructor(
    /** Names the service in reports ("shard email", "router"). */
    private readonly where: string,
    private readonly report: (line: string) => void,
    private readonly reportEveryMs = FOREIGN_REPLY_REPORT_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Requests left unanswered for their reply subject since this check was made. */
  get count(): number {
    return this.refused;
  }

  /**
   * True when a request on `subject` may be answered at `reply` — a client inbox, or nothing (no reply subject, no
   * `sm-reply-to`: nothing will be sent). `what` names the field in the report ("reply subject", "sm-reply-to").
   */
  admits(subject: string, reply: string | undefined, what = 'reply subject'): boolean {
    if (reply === undefined || reply === '' || isInboxSubject(reply)) return true;
    this.refused++;
    this.unreported++;
    const now = this.now();
    if (now - this.reportedAt >= this.reportEveryMs) {
      this.reportedAt = now;
      const n = this.unreported;
      this.unreported = 0;
      try {
        this.report(
          `${this.where}: left ${n} request(s) unanswered whose ${what} is not a client inbox (${CLIENT_INBOX_PREFIX}…); ` +
            `last: ${subject.slice(0, 200)} → ${JSON.stringify(reply.slice(0, 200))}; ${this.refused} since start`,
        );
      } catch {
        // Nowhere left to say it; the request stays unanswered all the same.
      }
    }
    return false;
  }
}
