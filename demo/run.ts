/**
 * `npm run demo` / `shardmind demo`: three Minis on this machine (a 3-server NATS cluster and three host
 * processes), three agents, one story, narrated — and checked. Exits 0 when the story came out as told, 1 when it
 * did not (with what went wrong and the hosts' last output), 130 on Ctrl-C. Everything it started is stopped and
 * its temp dir removed, on every path out.
 */
import { findNatsServer, natsServerInstallHint } from '../cli/nats-server.ts';
import type { Command } from '../cli/command.ts';
import { MINIS, Minis } from './minis.ts';
import { StoryError, tellStory, type Narrator } from './story.ts';

const color = process.stdout.isTTY && !process.env['NO_COLOR'];
const paint = (code: string, s: string): string => (color ? `\x1b[${code}m${s}\x1b[0m` : s);

const narrator: Narrator = {
  chapter: (title) => console.log(`\n${paint('1', title)}`),
  say: (who, line) => console.log(`  ${paint('36', `[${who}]`)} ${line}`),
  detail: (line) => console.log(`      ${paint('2', line)}`),
  ok: (claim) => console.log(`  ${paint('32', '✓')} ${claim}`),
};

/** Runs the demo; resolves with the exit code. */
export async function runDemo(): Promise<number> {
  if (!findNatsServer()) {
    console.error(`the demo needs nats-server on PATH. Install it with:\n\n  ${natsServerInstallHint()}\n`);
    return 1;
  }
  const minis = new Minis();
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    void minis.stop().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    console.log(paint('1', 'shardmind demo — three Minis, three agents, one memory'));
    const started = Date.now();
    await minis.start();
    narrator.ok(
      `${MINIS.join(', ')} up in ${((Date.now() - started) / 1000).toFixed(1)} s: one nats-server each (clustered), ` +
        'calendar led by mini-1, email by mini-2, files by mini-3, each replicated to the other two',
    );
    await tellStory(minis, narrator);
    console.log(`\n${paint('32', 'The story came out as told.')}`);
    return 0;
  } catch (err) {
    if (interrupted) return 130;
    if (err instanceof StoryError) console.error(`\n${paint('31', '✗ the story went wrong:')} ${err.message}`);
    else console.error(`\n${paint('31', '✗ the demo failed:')} ${(err as Error).stack ?? err}`);
    for (const m of MINIS) {
      const log = minis.log(m).trim();
      if (log) console.error(`\n--- ${m} (last output) ---\n${log.split('\n').slice(-15).join('\n')}`);
    }
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await minis.stop();
  }
}

export const demoCommand: Command = {
  summary: 'tell the three-Minis story end to end on this machine (checked: exits 1 if it goes wrong)',
  usage: 'usage: shardmind demo\n\nStarts three NATS servers and three hosts on loopback, runs agents A, B and C through\nthe story, checks every step, and cleans up.',
  async run(args) {
    if (args.length > 0) {
      process.stderr.write(`shardmind demo takes no arguments\n\n${this.usage}\n`);
      return 2;
    }
    return runDemo();
  },
};
