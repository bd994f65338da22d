/**
 * "The same fact again" ignores case and spacing of the text (no object) or of a literal object: the write path
 * hashes the normalized form in place for ASCII and through `normalizeText` otherwise, and both must file the same
 * fact under the same identity, or a repeat would create a second fact instead of reinforcing the first.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore } from '../../shards/index.ts';
import { assertEntry, tempDir } from './helpers.ts';

test('texts and literal objects that differ only in case and spacing reinforce one fact', async () => {
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'd', durability: 'none' });
  try {
    const texts = ['Hello  World', ' hello world ', 'HELLO\tworld\n', 'hello\u00a0world', 'Hello\r\n World'];
    const first = await store.apply(assertEntry({ text: texts[0]! }), 1);
    assert.is(first.status, 'created');
    for (let i = 1; i < texts.length; i++) {
      const r = await store.apply(assertEntry({ text: texts[i]! }), 1 + i);
      assert.is(r.status, 'reinforced', JSON.stringify(texts[i]));
      assert.is(r.factId, first.factId);
    }
    const objects = ['Dark  Mode', 'dark mode', ' DARK\u2003mode '];
    const base = await store.apply(assertEntry({ text: 'prefers dark mode', subject: 'u', predicate: 'likes', object: objects[0]! }), 10);
    for (let i = 1; i < objects.length; i++) {
      const r = await store.apply(assertEntry({ text: 'prefers dark mode', subject: 'u', predicate: 'likes', object: objects[i]! }), 10 + i);
      assert.is(r.status, 'reinforced', JSON.stringify(objects[i]));
      assert.is(r.factId, base.factId);
    }
    assert.is((await store.apply(assertEntry({ text: 'hello worlds' }), 20)).status, 'created');
  } finally {
    await store.close();
    dir.remove();
  }
});

test.run();
