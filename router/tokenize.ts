/**
 * Text → features for the lexical classifier: normalized words (lower case, light stemming, stop words dropped,
 * times / dates / addresses / paths folded into class tokens) plus the bigrams of adjacent words.
 *
 * Folding matters more than it looks: the seeds say "Tuesday at 3pm" and an agent says "Thursday at noon"; both
 * become `#weekday #time`, so one seed teaches the whole family.
 */

const STOP_WORDS = new Set(
  `a an the and or but if of to in on at by for with from as is are was were be been being am do does did doing
  have has had having i me my mine we us our you your he him his she her it its they them their this that these
  those there here what which who whom whose when where why how all any both each few more most other some such
  no nor not only own same so than too very can will just should would could may might must shall also please
  let lets into over up down out about again then once s t don now get got make made want wants need needs
  one im ill ive id youre its thats`.split(/\s+/),
);

const WEEKDAYS = /^(mon|tues?|wed|thu|thurs|fri|sat|sun)(day|nesday|rsday|urday)?s?$/;
/** The letters a weekday spelling starts with: most words skip the regex. */
const WEEKDAY_INITIALS = new Set(['m', 't', 'w', 'f', 's']);
/** Month names and abbreviations ("may" is not folded: it is far more often the verb). */
const MONTHS = new Set(
  'jan january feb february mar march apr april jun june jul july aug august sep sept september oct october nov november dec december'.split(' '),
);

/** Spellings of one word that the stemmer would not join. */
const CANONICAL: Readonly<Record<string, string>> = {
  mail: 'email',
  mails: 'email',
  emails: 'email',
  msg: 'message',
  doc: 'document',
  docs: 'document',
  pic: 'photo',
  pics: 'photo',
  appt: 'appointment',
  mtg: 'meeting',
};

/**
 * Patterns replaced by a class token before splitting into words. Order matters: addresses before paths. Each
 * names a test no match can fail (a character or word every match contains), so a text without it skips the
 * regex: the folds were most of a classification's CPU, and most texts have no digits, paths or addresses.
 */
const hasDigit = (t: string): boolean => /\d/.test(t);
const FOLDS: readonly (readonly [RegExp, string, (t: string) => boolean])[] = [
  [/\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b/g, ' #address ', (t) => t.includes('@')],
  [/\bhttps?:\/\/\S+/g, ' #url ', (t) => t.includes('http')],
  [/\b\d{1,2}(:\d{2})?\s?(am|pm)\b/g, ' #time ', hasDigit],
  [/\b\d{1,2}:\d{2}\b/g, ' #time ', (t) => t.includes(':')],
  [/\b(noon|midnight|o'clock|oclock)\b/g, ' #time ', (t) => t.includes('noon') || t.includes('midnight') || t.includes('clock')],
  [/\b\d{4}-\d{2}-\d{2}\b/g, ' #date ', (t) => t.includes('-')],
  [/\b\d{1,2}(st|nd|rd|th)\b/g, ' #date ', hasDigit],
  [/\b\d+[-\s]?(minutes?|mins?|hours?|hrs?)\b/g, ' #duration ', hasDigit],
  // A path (`Documents/Finance`, `~/code`) keeps its parts and says it was a path.
  [/(~?\/?[\w.-]+\/[\w./-]+)/g, ' #path $1 ', (t) => t.includes('/')],
  // A file name with an extension (`inbox.md`, `report.pdf`) keeps its extension as a word.
  [/\b[\w-]+\.(pdf|docx?|xlsx?|csv|pptx?|key|md|txt|zip|png|jpe?g|mp3|mp4|mov)\b/g, ' #filename $1 ', (t) => t.includes('.')],
];

/** A light suffix stripper: joins plural / -ing / -ed / -ation forms of a word (meeting ~ meet, shared ~ share). */
export function stem(word: string): string {
  let w = word;
  if (w.length <= 3 || w.startsWith('#')) return w;
  if (w.endsWith("'s")) w = w.slice(0, -2);
  if (w.endsWith('ies') && w.length > 4) w = w.slice(0, -3) + 'y';
  else if (w.endsWith('sses')) w = w.slice(0, -2);
  else if (w.endsWith('s') && !/(ss|us|is)$/.test(w) && w.length > 3) w = w.slice(0, -1);
  if (w.endsWith('ation') && w.length > 7) w = w.slice(0, -5);
  else if (w.endsWith('ing') && w.length > 5) w = w.slice(0, -3);
  else if (w.endsWith('ed') && w.length > 4) w = w.slice(0, -2);
  // A doubled final consonant left by -ing / -ed (scheduled → schedul, planning → plann → plan).
  if (/([b-df-hj-np-tv-z])\1$/.test(w) && !/(ll|ss)$/.test(w)) w = w.slice(0, -1);
  if (w.endsWith('e') && w.length > 3) w = w.slice(0, -1);
  return w;
}

/** The normalized words of a text, in order. */
export function words(text: string): string[] {
  let t = text.toLowerCase().replace(/[’‘]/g, "'").replace(/\be-mail/g, 'email');
  for (const [pattern, replacement, mayMatch] of FOLDS) if (mayMatch(t)) t = t.replace(pattern, replacement);
  const out: string[] = [];
  // Hyphens split: "reply-all" and "auto-reply" are the seeds' "reply all" and "auto reply".
  for (const raw of t.split(/[^a-z0-9#']+/)) {
    const quoted = raw.includes("'");
    let w = quoted ? raw.replace(/^'+|'+$/g, '') : raw;
    if (w === '') continue;
    w = CANONICAL[w] ?? w;
    if (/^\d+$/.test(w)) w = '#number';
    else if (WEEKDAY_INITIALS.has(w[0]!) && WEEKDAYS.test(w)) w = '#weekday';
    else if (MONTHS.has(w)) w = '#month';
    if (quoted) w = w.replace(/'/g, '');
    if (STOP_WORDS.has(w) || w.length < 2) continue;
    out.push(stem(w));
  }
  return out;
}

/** Unigrams and adjacent bigrams: the classifier's features. */
export function features(text: string): string[] {
  const ws = words(text);
  const out = [...ws];
  for (let i = 1; i < ws.length; i++) out.push(`${ws[i - 1]} ${ws[i]}`);
  return out;
}
