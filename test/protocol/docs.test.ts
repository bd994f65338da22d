/**
 * `docs/protocol.md` cannot drift from the validators: every request example in it (the first JSON block under each
 * op's heading, and the bodies in the `nats` CLI lines) parses with that op's parser.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseClassifyRequest,
  parseForgetRequest,
  parseGetRequest,
  parseHistoryRequest,
  parseRecallRequest,
  parseRememberRequest,
  parseRetractRequest,
} from '../../protocol/index.ts';

const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'protocol.md'), 'utf8');

const PARSERS: Record<string, (body: unknown) => unknown> = {
  remember: parseRememberRequest,
  recall: parseRecallRequest,
  forget: parseForgetRequest,
  retract: parseRetractRequest,
  history: parseHistoryRequest,
  get: parseGetRequest,
  classify: parseClassifyRequest,
};

/** The first ```json block after the heading "### `<op>`". */
function requestExample(op: string): string {
  const at = doc.indexOf(`### \`${op}\``);
  assert.ok(at >= 0, `docs/protocol.md has a section for ${op}`);
  const start = doc.indexOf('```json\n', at);
  const end = doc.indexOf('```', start + 8);
  return doc.slice(start + 8, end);
}

for (const [op, parse] of Object.entries(PARSERS)) {
  test(`docs - the ${op} request example is valid`, () => {
    const body = JSON.parse(requestExample(op)) as unknown;
    parse(body);
  });
}

test('docs - the nats CLI examples send valid requests', () => {
  const lines = [...doc.matchAll(/nats req (sm\.[a-z.]+)[^']*'([^']+)'/g)];
  assert.ok(lines.length >= 3, `found ${lines.length} nats req lines`);
  for (const [, subject, body] of lines) {
    const op = subject!.split('.').at(-1)!;
    assert.ok(PARSERS[op], `an op with a parser: ${subject}`);
    PARSERS[op]!(JSON.parse(body!));
    assert.ok(doc.includes(`nats req ${subject} -H content-type:application/json`), 'sends the JSON header');
  }
});

test.run();
