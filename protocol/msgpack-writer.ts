/**
 * A small msgpack writer for the replies written straight from the store's values (`fact-pack.ts`, `fact-table.ts`)
 * rather than through msgpackr walking objects built for it. It writes what msgpackr writes under `codec.ts`'s
 * options (maps as map16, minimal ints, other numbers as float64, minimal string headers), plus `uint64` for
 * integers past 32 bits (`int64` below −2^31), which msgpackr writes as float64. Plain msgpack: any language's
 * library reads it.
 *
 * A class, and one instance per module that writes (`new MsgpackWriter()` in a module-level const): under tsx a
 * function imported from another module is called through a getter, which cost a third more per reply in this hot
 * loop than methods of an object the module holds itself.
 */

/** Fresh room is taken in chunks; a reply's bytes are a view into one and never written again. */
const CHUNK = 64 * 1024;

/** `Buffer#utf8Write`, which `@types/node` leaves out: `write(s, offset, 'utf8')` without its argument checks. */
interface Utf8Writer {
  utf8Write(s: string, offset: number): number;
}

/** A number's float64 bytes, in the machine's order. */
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const LITTLE_ENDIAN = new Uint8Array(Float64Array.of(1).buffer)[7] === 0x3f;

/** A short ASCII string's msgpack bytes (fixstr header + text), for `raw`. */
export function fixstrBytes(text: string): Uint8Array {
  if (text.length >= 0x20 || /[^\x00-\x7f]/.test(text)) throw new RangeError(`not a short ASCII string: ${text}`);
  return Uint8Array.of(0xa0 | text.length, ...Array.from(text, (c) => c.charCodeAt(0)));
}

export class MsgpackWriter {
  private buf = Buffer.allocUnsafe(CHUNK);
  private pos = 0;

  /**
   * The bytes `write` produces with the functions below. A retry after running out of room (a reply larger than
   * what was left of the chunk) starts in a fresh one, so `write` must only write (no other side effects).
   */
  written(write: () => void): Uint8Array {
    for (let size = CHUNK; ; size *= 2) {
      const start = this.pos;
      try {
        write();
        return this.buf.subarray(start, this.pos);
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        this.buf = Buffer.allocUnsafe(Math.max(size, CHUNK));
        this.pos = 0;
      }
    }
  }

  /** Bytes encoded once (a field name, a cached timestamp string) copied in as they are. */
  raw(bytes: Uint8Array): void {
    const n = bytes.length;
    this.need(n);
    // A field name byte by byte; longer runs (a table's column names, ~190 bytes) in one copy.
    if (n < 32) for (let i = 0; i < n; i++) this.buf[this.pos + i] = bytes[i]!;
    else this.buf.set(bytes, this.pos);
    this.pos += n;
  }

  nil(): void {
    this.need(1);
    this.buf[this.pos++] = 0xc0;
  }

  mapHeader(n: number): void {
    this.need(3);
    this.buf[this.pos++] = 0xde;
    this.buf[this.pos++] = n >> 8;
    this.buf[this.pos++] = n & 0xff;
  }

  arrayHeader(n: number): void {
    this.need(5);
    if (n < 0x10) this.buf[this.pos++] = 0x90 | n;
    else if (n < 0x10000) {
      this.buf[this.pos++] = 0xdc;
      this.buf[this.pos++] = n >> 8;
      this.buf[this.pos++] = n & 0xff;
    } else {
      this.buf[this.pos++] = 0xdd;
      this.buf.writeUInt32BE(n, this.pos);
      this.pos += 4;
    }
  }

  /** msgpackr's choice: a 32-bit integer as the smallest int, anything else as float64. */
  num(n: number): void {
    this.need(9);
    if (n >>> 0 === n) {
      if (n < 0x80) this.buf[this.pos++] = n;
      else if (n < 0x100) {
        this.buf[this.pos++] = 0xcc;
        this.buf[this.pos++] = n;
      } else if (n < 0x10000) {
        this.buf[this.pos++] = 0xcd;
        this.buf[this.pos++] = n >> 8;
        this.buf[this.pos++] = n & 0xff;
      } else {
        this.buf[this.pos++] = 0xce;
        this.buf.writeUInt32BE(n, this.pos);
        this.pos += 4;
      }
    } else if (n >> 0 === n) {
      if (n >= -0x20) this.buf[this.pos++] = 0x100 + n;
      else if (n >= -0x80) {
        this.buf[this.pos++] = 0xd0;
        this.buf[this.pos++] = n + 0x100;
      } else if (n >= -0x8000) {
        this.buf[this.pos++] = 0xd1;
        this.buf.writeInt16BE(n, this.pos);
        this.pos += 2;
      } else {
        this.buf[this.pos++] = 0xd2;
        this.buf.writeInt32BE(n, this.pos);
        this.pos += 4;
      }
    } else this.float64(n);
  }

  /**
   * float64, big-endian, from the number's own bytes (`writeDoubleBE` checks its arguments on every call); `num`
   * has made room for it.
   */
  private float64(n: number): void {
    const buf = this.buf;
    const p = this.pos;
    f64[0] = n;
    buf[p] = 0xcb;
    if (LITTLE_ENDIAN) {
      buf[p + 1] = f64Bytes[7]!;
      buf[p + 2] = f64Bytes[6]!;
      buf[p + 3] = f64Bytes[5]!;
      buf[p + 4] = f64Bytes[4]!;
      buf[p + 5] = f64Bytes[3]!;
      buf[p + 6] = f64Bytes[2]!;
      buf[p + 7] = f64Bytes[1]!;
      buf[p + 8] = f64Bytes[0]!;
    } else buf.set(f64Bytes, p + 1);
    this.pos = p + 9;
  }

  /**
   * A whole number of any size as an integer (epoch milliseconds pass 2^32): uint64 past 32 bits, so readers in
   * any language get an integer, not a float. Other numbers go through `num`.
   */
  int(n: number): void {
    if ((n <= 0xffffffff && n >= -0x80000000) || !Number.isSafeInteger(n)) return this.num(n);
    this.need(9);
    const buf = this.buf;
    let p = this.pos;
    const high = Math.floor(n / 0x100000000) | 0;
    const low = n - high * 0x100000000;
    buf[p++] = n > 0 ? 0xcf : 0xd3;
    buf[p++] = high >>> 24;
    buf[p++] = (high >>> 16) & 0xff;
    buf[p++] = (high >>> 8) & 0xff;
    buf[p++] = high & 0xff;
    buf[p++] = low >>> 24;
    buf[p++] = (low >>> 16) & 0xff;
    buf[p++] = (low >>> 8) & 0xff;
    buf[p++] = low & 0xff;
    this.pos = p;
  }

  /**
   * A string with the smallest header for its UTF-8 length; ASCII strings under 32 characters byte by byte (cheaper
   * than a call into `Buffer.write` at the lengths of ids, names and statuses; from ~30 characters, as in a fact's
   * text, the call is the cheaper).
   */
  str(s: string): void {
    const length = s.length;
    if (length < 0x20) {
      this.need(1 + length);
      const buf = this.buf;
      const at = this.pos + 1;
      let ascii = true;
      for (let i = 0; i < length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          ascii = false;
          break;
        }
        buf[at + i] = c;
      }
      if (ascii) {
        buf[this.pos] = 0xa0 | length;
        this.pos = at + length;
        return;
      }
    }
    // Written once, after a header sized for the most bytes it can take (3 per UTF-16 unit); moved back when the
    // actual length needs a smaller header, as msgpackr does.
    const most = length * 3;
    const reserved = most < 0x20 ? 1 : most < 0x100 ? 2 : most < 0x10000 ? 3 : 5;
    this.need(reserved + most);
    const bytes = (this.buf as unknown as Utf8Writer).utf8Write(s, this.pos + reserved);
    const header = bytes < 0x20 ? 1 : bytes < 0x100 ? 2 : bytes < 0x10000 ? 3 : 5;
    if (header !== reserved) this.buf.copyWithin(this.pos + header, this.pos + reserved, this.pos + reserved + bytes);
    if (header === 1) this.buf[this.pos] = 0xa0 | bytes;
    else if (header === 2) {
      this.buf[this.pos] = 0xd9;
      this.buf[this.pos + 1] = bytes;
    } else if (header === 3) {
      this.buf[this.pos] = 0xda;
      this.buf[this.pos + 1] = bytes >> 8;
      this.buf[this.pos + 2] = bytes & 0xff;
    } else {
      this.buf[this.pos] = 0xdb;
      this.buf.writeUInt32BE(bytes, this.pos + 1);
    }
    this.pos += header + bytes;
  }

  /** Throws RangeError when the chunk has no room for `n` more bytes; `written` then starts a fresh one. */
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new RangeError('reply chunk full');
  }
}
