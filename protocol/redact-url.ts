/**
 * A server URL as it may be shown: `nats://user:secret@host:4222` → `nats://user:***@host:4222` (a token alone,
 * `nats://secret@host`, → `nats://***@host`). nats.js takes credentials in the URL, so a URL from `--servers` or a
 * config can hold a password; error messages and log lines print it through this (review session 12, L2).
 */
const USER_INFO = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^@/?#]*)@/;

export function redactUrl(url: string): string {
  return url.replace(USER_INFO, (_all, scheme: string, info: string) => {
    const colon = info.indexOf(':');
    return colon < 0 ? `${scheme}***@` : `${scheme}${info.slice(0, colon)}:***@`;
  });
}
