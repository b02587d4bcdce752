// Views in, op lists out (ABI.md, "Encoding"). Strings in views are UTF-8; AssemblyScript's are
// UTF-16, so each string read or written is transcoded.

import { Value, ValueType } from "./index";

/** Reads a view in guest memory; the first overrun clears ok. */
export class Reader {
  off: u32 = 0;
  ok: bool = true;
  constructor(public base: usize, public len: u32) {}

  need(n: u32): bool {
    if (!this.ok || this.len - this.off < n) this.ok = false;
    return this.ok;
  }
  skip(n: u32): void {
    if (this.need(n)) this.off += n;
  }
  u8(): u8 {
    if (!this.need(1)) return 0;
    const v = load<u8>(this.base + this.off);
    this.off += 1;
    return v;
  }
  u32(): u32 {
    if (!this.need(4)) return 0;
    const v = load<u32>(this.base + this.off);
    this.off += 4;
    return v;
  }
  u64(): u64 {
    if (!this.need(8)) return 0;
    const v = load<u64>(this.base + this.off);
    this.off += 8;
    return v;
  }
  str(): string {
    const n = this.u32();
    if (!this.need(n)) return "";
    const s = String.UTF8.decodeUnsafe(this.base + this.off, n);
    this.off += n;
    return s;
  }
  skipStr(): void {
    this.skip(this.u32());
  }
  /** An element count, bounded by the bytes left (min bytes each). */
  count(min: u32): u32 {
    const n = this.u32();
    if (this.ok && <u64>n * min > <u64>(this.len - this.off)) {
      this.ok = false;
      return 0;
    }
    return n;
  }
}

/** The op list a call returns, in a buffer reused between calls. */
class Output {
  buf: usize = 0;
  cap: u32 = 0;
  len: u32 = 0;

  reset(): void {
    this.len = 0;
  }
  packed(): u64 {
    if (this.len == 0) return 0;
    return (<u64>this.buf << 32) | <u64>this.len;
  }
  grow(n: u32): void {
    if (this.len + n <= this.cap) return;
    let c = this.cap ? this.cap : 256;
    while (c < this.len + n) c *= 2;
    this.buf = this.buf ? heap.realloc(this.buf, c) : heap.alloc(c);
    this.cap = c;
  }
  op(v: u8): void {
    this.grow(1);
    store<u8>(this.buf + this.len, v);
    this.len += 1;
  }
  u32(v: u32): void {
    this.grow(4);
    store<u32>(this.buf + this.len, v);
    this.len += 4;
  }
  u64(v: u64): void {
    this.grow(8);
    store<u64>(this.buf + this.len, v);
    this.len += 8;
  }
  str(s: string): void {
    const n = <u32>String.UTF8.byteLength(s);
    this.u32(n);
    this.grow(n);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.buf + this.len);
    this.len += n;
  }
  fail(msg: string): void {
    this.op(0x09);
    this.str(msg);
  }
  setAttr(key: string, v: Value): void {
    this.op(0x01);
    this.str(key);
    this.value(v);
  }
  value(v: Value): void {
    this.op(<u8>v.type);
    switch (v.type) {
      case ValueType.Other:
      case ValueType.String:
        this.str(v.str);
        break;
      case ValueType.Bool:
        this.op(v.bool ? 1 : 0);
        break;
      case ValueType.Int64:
        this.u64(<u64>v.int64);
        break;
      case ValueType.Float64:
        this.u64(reinterpret<u64>(v.float64));
        break;
      case ValueType.StringSlice:
        this.u32(v.strings.length);
        for (let i = 0; i < v.strings.length; i++) this.str(v.strings[i]);
        break;
      case ValueType.BoolSlice:
        this.u32(v.bools.length);
        for (let i = 0; i < v.bools.length; i++) this.op(v.bools[i] ? 1 : 0);
        break;
      case ValueType.Int64Slice:
        this.u32(v.int64s.length);
        for (let i = 0; i < v.int64s.length; i++) this.u64(<u64>v.int64s[i]);
        break;
      case ValueType.Float64Slice:
        this.u32(v.float64s.length);
        for (let i = 0; i < v.float64s.length; i++) this.u64(reinterpret<u64>(v.float64s[i]));
        break;
    }
  }
}

export const out = new Output();
