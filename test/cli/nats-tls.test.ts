/**
 * A cluster over TLS (`shardmind nats-tls`, `nats-config --tls`): certificates made with openssl, three real
 * nats-servers whose routes verify each other (JetStream replicates the R3 logs over them), three real host processes
 * that verify their servers against `SHARDMIND_NATS_CA`, and an agent that remembers and recalls through the
 * TypeScript client, on a standby Mini's replica too.
 * A client without the CA is refused by its own verification; `shardmind status` works with the CA in its env.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as natsConnect } from 'nats';
import { connect } from '../../client/index.ts';
import {
  CA_ENV,
  clientTlsBlock,
  makeCertificates,
  natsConfigFor,
  routeTlsBlock,
  runNatsConfig,
  runStatus,
  startNatsCluster,
  waitForJetStream,
  type NatsCluster,
} from '../../cli/index.ts';
import { resolveConfig, type ClusterConfigInput } from '../../config/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

function config(urls: readonly string[]): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'tls-test' },
    nodes: urls.map((url, i) => ({ name: `mini-${i + 1}`, nats: [url] })),
    placement: Object.fromEntries(shipped.domains.map((d) => [d.name, { leader: 'mini-1', standbys: ['mini-2', 'mini-3'] }])),
    replication: { replicas: 3, leaseMs: 1500, heartbeatMs: 250 },
  };
}

function output(): { out: string[]; err: string[]; io: { out: (s: string) => void; err: (s: string) => void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s) => void out.push(s), err: (s) => void err.push(s) } };
}

test('a TLS cluster: routes and clients verify certificates from the cluster CA; agents and operators work; no CA, no connection', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-tls-'));
  let nats: NatsCluster | undefined;
  let hosts: HostCluster | undefined;
  try {
    const files = makeCertificates(dir, ['127.0.0.1', 'localhost']);
    assert.match(readFileSync(files.cert, 'utf8'), /BEGIN CERTIFICATE/);
    nats = await startNatsCluster(3, { tls: { client: clientTlsBlock(files), route: routeTlsBlock(files) } });

    // Without the CA, the client's own verification refuses the self-signed chain.
    const refused = await natsConnect({ servers: nats.urls[0]!, maxReconnectAttempts: 0, timeout: 3_000 }).then(
      async (nc) => (await nc.close(), 'connected'),
      (e: Error) => e.message,
    );
    assert.is.not(refused, 'connected', 'a client without the CA does not connect');

    // With it, JetStream is up: the three servers found each other over verified TLS routes.
    const nc = await natsConnect({ servers: nats.urls, tls: { caFile: files.ca } });
    try {
      await waitForJetStream(nc);
      assert.ok(nc.info?.tls_required, 'the server requires TLS');
    } finally {
      await nc.close();
    }

    hosts = await startHosts({ config: config(nats.urls), env: { [CA_ENV]: files.ca } });
    const memory = await connect({ servers: nats.urls, agent: 'tls-agent', tls: { caFile: files.ca } });
    try {
      const r = await memory.remember({ text: 'The user never takes meetings before 10am' }, { domain: 'calendar' });
      assert.is(r.status, 'created');
      const found = await memory.recall({ query: 'meetings before 10am', domain: 'calendar' });
      assert.is(found.facts[0]?.text, 'The user never takes meetings before 10am');
      // The standby on mini-3 got the entry over the TLS routes and serves it to an agent on its Mini.
      const onMini3 = await connect({ servers: [nats.urls[2]!], agent: 'tls-agent-3', node: 'mini-3', tls: { caFile: files.ca } });
      try {
        const deadline = Date.now() + 10_000;
        let replica = await onMini3.recall({ query: 'meetings before 10am', domain: 'calendar', maxStaleMs: 60_000 });
        while ((replica.servedBy !== 'mini-3' || replica.facts.length === 0) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          replica = await onMini3.recall({ query: 'meetings before 10am', domain: 'calendar', maxStaleMs: 60_000 });
        }
        assert.is(replica.servedBy, 'mini-3');
        assert.is(replica.facts[0]?.text, 'The user never takes meetings before 10am');
      } finally {
        await onMini3.close();
      }
    } finally {
      await memory.close();
    }

    process.env[CA_ENV] = files.ca;
    try {
      const status = output();
      const code = await runStatus(['--servers', nats.urls.join(','), '--nodes', 'mini-1', '--json'], status.io);
      assert.is(code, 0, status.err.join(''));
      const rows = (JSON.parse(status.out.join('')) as { rows: { domain: string; state: string }[] }).rows;
      assert.ok(rows.some((row) => row.domain === 'calendar' && row.state === 'leading'), JSON.stringify(rows));
    } finally {
      delete process.env[CA_ENV];
    }
  } finally {
    await hosts?.stop();
    await nats?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nats-config --tls writes the client and route TLS blocks; a directory without the files is a clear error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-tls-config-'));
  try {
    const input: ClusterConfigInput = {
      ...shipped,
      dataDir: join(dir, 'data'),
      nodes: [
        { name: 'mini-1', nats: ['nats://mini-1.local:4222'], natsServer: { host: 'mini-1.local' } },
        { name: 'mini-2', nats: ['nats://mini-2.local:4222'], natsServer: { host: 'mini-2.local' } },
      ],
      placement: Object.fromEntries(shipped.domains.map((d) => [d.name, { leader: 'mini-1', standbys: ['mini-2'] }])),
      replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
    };
    const cfg = resolveConfig(input);
    const missing = join(dir, 'nowhere');
    assert.throws(() => natsConfigFor(cfg, 'mini-1', { tlsDir: missing }), /ca\.pem does not exist/);

    const files = makeCertificates(join(dir, 'tls'), ['mini-1.local']);
    const text = natsConfigFor(cfg, 'mini-1', { tlsDir: join(dir, 'tls') });
    const clientBlock = text.slice(0, text.indexOf('cluster {'));
    assert.ok(clientBlock.includes(`cert_file: ${JSON.stringify(files.cert)}`), text);
    const clusterBlock = text.slice(text.indexOf('cluster {'));
    assert.match(clusterBlock, /tls \{[^}]*verify: true/);
    assert.ok(clusterBlock.includes(`ca_file: ${JSON.stringify(files.ca)}`), text);

    const run = output();
    const configFile = join(dir, 'cluster.config.ts');
    writeFileSync(configFile, `export default ${JSON.stringify(input, null, 2)};\n`);
    const code = await runNatsConfig(['--node', 'mini-1', '--config', configFile, '--tls', missing], run.io);
    assert.is(code, 1);
    assert.match(run.err.join(''), /ca\.pem does not exist.*shardmind nats-tls/);
    assert.equal(run.out, [], 'nothing written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
