/**
 * TLS for a cluster whose Minis share a network with other machines: the login (`nats-auth.ts`) keeps strangers
 * out, TLS keeps the passwords and the memory itself off the wire in clear text.
 *
 * Each Mini has a directory holding `ca.pem` (the cluster's certificate authority), and its own `server-cert.pem` /
 * `server-key.pem` signed by it, naming the Mini's host (and usable as a client certificate: routes between Minis
 * verify each other with it). `shardmind nats-config --tls DIR` points the server's client port and its cluster
 * routes at those files; every shardmind process verifies the server against the CA in `SHARDMIND_NATS_CA`.
 * `shardmind nats-tls --dir DIR --host NAME…` makes a CA (once) and a server certificate with openssl, for a desk
 * cluster that has no PKI of its own.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { intFlag, parseFlags, UsageError } from './args.ts';
import type { Command } from './command.ts';
import { natsCredentialsFromEnv } from './nats-auth.ts';

/** The file names `--tls DIR` expects. */
export const TLS_FILES = { ca: 'ca.pem', cert: 'server-cert.pem', key: 'server-key.pem' } as const;

/** The CA file shardmind processes verify the servers with; setting it turns TLS on for them. */
export const CA_ENV = 'SHARDMIND_NATS_CA';

/** How long a TLS handshake may take, in seconds (nats-server's default of 0.5 s is tight for a busy Mini). */
const HANDSHAKE_TIMEOUT_S = 2;

export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** The three files in `dir`, as absolute paths; throws naming the first one that is missing. */
export function tlsFilesIn(dir: string): TlsFiles {
  const files = {
    ca: resolve(dir, TLS_FILES.ca),
    cert: resolve(dir, TLS_FILES.cert),
    key: resolve(dir, TLS_FILES.key),
  };
  for (const path of Object.values(files)) {
    if (!existsSync(path)) throw new Error(`${path} does not exist (make one with: shardmind nats-tls --dir ${dir} --host <this Mini's host>)`);
  }
  return files;
}

/** The `tls { … }` block for the client port: clients verify the server; they need no certificate of their own. */
export function clientTlsBlock(f: TlsFiles): string {
  return [
    'tls {',
    `  cert_file: ${JSON.stringify(f.cert)}`,
    `  key_file: ${JSON.stringify(f.key)}`,
    `  ca_file: ${JSON.stringify(f.ca)}`,
    `  timeout: ${HANDSHAKE_TIMEOUT_S}`,
    '}',
  ].join('\n');
}

/** The `tls { … }` block inside `cluster { … }`: both ends of a route present a certificate the CA signed. */
export function routeTlsBlock(f: TlsFiles): string {
  return [
    '  tls {',
    `    cert_file: ${JSON.stringify(f.cert)}`,
    `    key_file: ${JSON.stringify(f.key)}`,
    `    ca_file: ${JSON.stringify(f.ca)}`,
    '    verify: true',
    `    timeout: ${HANDSHAKE_TIMEOUT_S}`,
    '  }',
  ].join('\n');
}

/** `{ tls: { caFile } }` when `SHARDMIND_NATS_CA` is set, else undefined. */
export function natsTlsFromEnv(env: NodeJS.ProcessEnv = process.env): { tls: { caFile: string } } | undefined {
  const caFile = env[CA_ENV];
  if (!caFile) return undefined;
  if (!existsSync(caFile)) throw new Error(`$${CA_ENV} names ${caFile}, which does not exist`);
  return { tls: { caFile } };
}

/** Everything a shardmind process adds to its NATS connection options from the environment: login and TLS. */
export function natsConnectOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): { user?: string; pass?: string; tls?: { caFile: string } } {
  return { ...(natsCredentialsFromEnv(env) ?? {}), ...(natsTlsFromEnv(env) ?? {}) };
}

/**
 * Makes `dir/ca.pem` (+ `ca-key.pem`) unless they exist, then `server-cert.pem` / `server-key.pem` for `hosts`
 * (DNS names or IP addresses), signed by that CA, valid for `days`. Uses the openssl command (macOS and Debian
 * have it). For a desk cluster: copy `ca.pem` to every Mini and run this once per Mini with its own host.
 */
export function makeCertificates(dir: string, hosts: readonly string[], days = 825): TlsFiles {
  if (hosts.length === 0) throw new Error('name at least one host the certificate is for (--host)');
  mkdirSync(dir, { recursive: true });
  const at = (name: string): string => resolve(dir, name);
  const openssl = (args: readonly string[]): void => {
    try {
      execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
      throw new Error(`openssl ${args[0]} failed: ${stderr || (err as Error).message}`);
    }
  };
  if (!existsSync(at('ca.pem')) || !existsSync(at('ca-key.pem'))) {
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', at('ca-key.pem'), '-out', at('ca.pem'), '-days', String(days), '-subj', '/CN=shardmind cluster CA']);
  }
  const san = hosts.map((h) => (/^[\d.]+$/.test(h) || h.includes(':') ? `IP:${h}` : `DNS:${h}`)).join(',');
  const ext = join(dir, 'server-ext.cnf');
  // Server and client use: routes between Minis present this certificate as clients of each other.
  const extText = `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n`;
  writeFileSync(ext, extText);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', at('server-key.pem'), '-out', at('server.csr'), '-subj', `/CN=${hosts[0]}`]);
  openssl(['x509', '-req', '-in', at('server.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca-key.pem'), '-CAcreateserial', '-out', at('server-cert.pem'), '-days', String(days), '-extfile', ext]);
  rmSync(at('server.csr'), { force: true });
  rmSync(ext, { force: true });
  // Private keys readable by their owner only.
  chmodSync(at('ca-key.pem'), 0o600);
  chmodSync(at('server-key.pem'), 0o600);
  return tlsFilesIn(dir);
}

const USAGE = `usage: shardmind nats-tls --dir DIR --host NAME [--host NAME …] [--days N]

Makes DIR/ca.pem and DIR/ca-key.pem (the cluster's CA) unless they exist, then DIR/server-cert.pem and
DIR/server-key.pem for the hosts named (DNS names or IP addresses of this Mini), signed by that CA. For each other
Mini: copy ca.pem and ca-key.pem into its DIR and run this there with its own --host. Keep ca-key.pem private.
Then: shardmind nats-config --node NAME --tls DIR, and export ${CA_ENV}=DIR/ca.pem for shardmind processes.`;

/** The dispatcher row (`cli/main.ts`). */
export const natsTlsCommand: Command = {
  summary: "make a cluster CA and a Mini's TLS certificate with openssl (for nats-config --tls)",
  usage: USAGE,
  async run(args) {
    const { values } = parseFlags(args, { dir: { type: 'string' }, host: { type: 'string', multiple: true }, days: { type: 'string' } });
    if (!values.dir) throw new UsageError('--dir is required');
    const hosts = values.host ?? [];
    if (hosts.length === 0) throw new UsageError('--host is required (the name or address clients and other Minis use for this Mini)');
    const days = intFlag('days', values.days, 825, 1, 36_500);
    const files = makeCertificates(values.dir, hosts, days);
    process.stdout.write(`wrote ${files.cert} and ${files.key} for ${hosts.join(', ')}, signed by ${files.ca}\n`);
    return 0;
  },
};
