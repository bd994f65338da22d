/**
 * Text normalization shared by indexing and querying: the same tokenizer on both sides, or recall misses.
 */

/** Longer tokens are cut to this many characters (after stemming). */
export const MAX_TOKEN = 48;

/** Words too common to say anything about relevance; dropping them also keeps the index small. */
export const STOPWORDS: ReadonlySet<string> = new Set(
  (
    'a an and are as at be but by for from has have he her his i if in into is it its me my no not of on or our ' +
    'she so that the their them then there these they this to was we were what when which who will with you your'
  ).split(' '),
);

const WORD = /[\p{L}\p{N}]+/gu;

/** Per ASCII code: 1 for the characters `[\p{L}\p{N}]` matches (letters and digits), else 0. */
const ASCII_WORD = new Uint8Array(128);
for (let c = 48; c <= 57; c++) ASCII_WORD[c] = 1;
for (let c = 65; c <= 90; c++) ASCII_WORD[c] = 1;
for (let c = 97; c <= 122; c++) ASCII_WORD[c] = 1;
/** The longest stopword: longer words skip the set lookup. */
const MAX_STOPWORD = Math.max(...[...STOPWORDS].map((w) => w.length));

/** Lower-cased word tokens without stopwords, in text order (repeats kept: they are term frequency). */
export function tokenize(text: string): string[] {
  const lower = text.toLowerCase();
  const out: string[] = [];
  // ASCII text (nearly all of it) is scanned by hand: the Unicode regex and its match array were a tenth of the
  // load's tokenizing cost. Anything else takes the regex, which defines the tokens; both give the same answer.
  let start = -1;
  for (let i = 0; i < lower.length; i++) {
    const c = lower.charCodeAt(i);
    if (c >= 128) return tokenizeUnicode(lower);
    if (ASCII_WORD[c] === 1) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      addToken(out, lower, start, i);
      start = -1;
    }
  }
  if (start >= 0) addToken(out, lower, start, lower.length);
  return out;
}

function addToken(out: string[], lower: string, start: number, end: number): void {
  // A single character counts only when it is a digit.
  if (end - start < 2) {
    const c = lower.charCodeAt(start);
    if (c < 48 || c > 57) return;
  }
  const w = lower.slice(start, end);
  if (end - start <= MAX_STOPWORD && STOPWORDS.has(w)) return;
  const stem = pluralStem(w);
  out.push(stem.length > MAX_TOKEN ? stem.slice(0, MAX_TOKEN) : stem);
}

function tokenizeUnicode(lower: string): string[] {
  const out: string[] = [];
  // `match` with /g returns the strings alone; `matchAll` built a match object per word (load profile).
  const matches = lower.match(WORD);
  if (matches === null) return out;
  for (const w of matches) {
    if (w.length < 2 && !/\d/.test(w)) continue;
    if (STOPWORDS.has(w)) continue;
    const stem = pluralStem(w);
    out.push(stem.length > MAX_TOKEN ? stem.slice(0, MAX_TOKEN) : stem);
  }
  return out;
}

/**
 * "attachments" must find "attachment": a light plural stemmer (no full Porter stemming — it is cheap, predictable,
 * and wrong stems of rarer forms cost little when both sides use the same function).
 */
function pluralStem(w: string): string {
  if (w.length <= 3 || !w.endsWith('s') || w.endsWith('ss') || w.endsWith('us') || w.endsWith('is')) return w;
  if (w.endsWith('ies') && w.length > 4) return w.slice(0, -3) + 'y';
  return w.slice(0, -1);
}

/** Term → count. */
export function termFrequencies(tokens: readonly string[]): Map<string, number> {
  const tf = new Map<string, number>();
  for (const t of tokens) tf.set(t, (tf.get(t) ?? 0) + 1);
  return tf;
}

/** Text compared for "the same fact again" when a fact has no object: case and spacing do not matter. */
export function normalizeText(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim();
}
