// A small JSON reader for plugin configs (RFC 8259). Like Go's json.Decoder.Decode, parseJson
// reads the first value and ignores what follows. AssemblyScript has no exceptions: on error
// parseJson returns null and jsonError() says why.

export enum JsonKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

/** A JSON value; objects keep their members in order (keys[i] names items[i]), duplicates included. */
export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  items: JsonValue[] = [];
  keys: string[] = [];

  /** "null", "bool", "number", "string", "array" or "object". */
  typeName(): string {
    switch (this.kind) {
      case JsonKind.Bool:
        return "bool";
      case JsonKind.Number:
        return "number";
      case JsonKind.String:
        return "string";
      case JsonKind.Array:
        return "array";
      case JsonKind.Object:
        return "object";
    }
    return "null";
  }
}

let error: string = "";

/** Why the last parseJson returned null. */
export function jsonError(): string {
  return error;
}

/** Parses the first JSON value in s, or returns null (see jsonError). */
export function parseJson(s: string): JsonValue | null {
  const p = new Parser(s);
  const v = p.value();
  if (!p.ok) return null;
  return v;
}

function isDigit(c: i32): bool {
  return c >= 48 && c <= 57;
}

class Parser {
  i: i32 = 0;
  ok: bool = true;
  depth: i32 = 0;
  constructor(public s: string) {}

  fail(): JsonValue {
    if (this.ok) {
      this.ok = false;
      error = this.i >= this.s.length ? "unexpected end of JSON input" : "invalid character '" + this.s.charAt(this.i) + "' at offset " + this.i.toString();
    }
    return new JsonValue();
  }

  ws(): void {
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c != 32 && c != 9 && c != 10 && c != 13) break;
      this.i++;
    }
  }

  lit(word: string, v: JsonValue): JsonValue {
    if (this.s.substr(this.i, word.length) != word) return this.fail();
    this.i += word.length;
    return v;
  }

  value(): JsonValue {
    this.ws();
    if (this.i >= this.s.length) return this.fail();
    const c = this.s.charCodeAt(this.i);
    const v = new JsonValue();
    if (c == 110) return this.lit("null", v);
    if (c == 116) {
      v.kind = JsonKind.Bool;
      v.bool = true;
      return this.lit("true", v);
    }
    if (c == 102) {
      v.kind = JsonKind.Bool;
      return this.lit("false", v);
    }
    if (c == 34) {
      v.kind = JsonKind.String;
      v.str = this.string();
      return v;
    }
    if (c == 45 || isDigit(c)) return this.number();
    if (c == 91 || c == 123) {
      if (++this.depth > 1000) return this.fail();
      this.i++;
      const r = c == 91 ? this.array() : this.object();
      this.depth--;
      return r;
    }
    return this.fail();
  }

  array(): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Array;
    this.ws();
    if (this.i < this.s.length && this.s.charCodeAt(this.i) == 93) {
      this.i++;
      return v;
    }
    while (this.ok) {
      v.items.push(this.value());
      this.ws();
      if (this.i >= this.s.length) return this.fail();
      const c = this.s.charCodeAt(this.i);
      this.i++;
      if (c == 93) return v;
      if (c != 44) {
        this.i--;
        return this.fail();
      }
    }
    return v;
  }

  object(): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Object;
    this.ws();
    if (this.i < this.s.length && this.s.charCodeAt(this.i) == 125) {
      this.i++;
      return v;
    }
    while (this.ok) {
      this.ws();
      if (this.i >= this.s.length || this.s.charCodeAt(this.i) != 34) return this.fail();
      const k = this.string();
      this.ws();
      if (this.i >= this.s.length || this.s.charCodeAt(this.i) != 58) return this.fail();
      this.i++;
      v.keys.push(k);
      v.items.push(this.value());
      this.ws();
      if (this.i >= this.s.length) return this.fail();
      const c = this.s.charCodeAt(this.i);
      this.i++;
      if (c == 125) return v;
      if (c != 44) {
        this.i--;
        return this.fail();
      }
    }
    return v;
  }

  hex4(): i32 {
    let n = 0;
    for (let k = 0; k < 4; k++) {
      if (this.i >= this.s.length) {
        this.fail();
        return 0;
      }
      const c = this.s.charCodeAt(this.i);
      let d = -1;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else if (c >= 65 && c <= 70) d = c - 55;
      if (d < 0) {
        this.fail();
        return 0;
      }
      n = n * 16 + d;
      this.i++;
    }
    return n;
  }

  string(): string {
    this.i++; // the opening quote
    let out = "";
    let start = this.i;
    while (this.ok) {
      if (this.i >= this.s.length) {
        this.fail();
        break;
      }
      const c = this.s.charCodeAt(this.i);
      if (c == 34) {
        out += this.s.substring(start, this.i);
        this.i++;
        return out;
      }
      if (c < 32) {
        this.fail();
        break;
      }
      if (c != 92) {
        this.i++;
        continue;
      }
      out += this.s.substring(start, this.i);
      this.i++;
      if (this.i >= this.s.length) {
        this.fail();
        break;
      }
      const e = this.s.charCodeAt(this.i);
      this.i++;
      if (e == 34) out += '"';
      else if (e == 92) out += "\\";
      else if (e == 47) out += "/";
      else if (e == 98) out += "\b";
      else if (e == 102) out += "\f";
      else if (e == 110) out += "\n";
      else if (e == 114) out += "\r";
      else if (e == 116) out += "\t";
      else if (e == 117) {
        let u = this.hex4();
        if (u >= 0xd800 && u < 0xdc00 && this.s.substr(this.i, 2) == "\\u") {
          const save = this.i;
          this.i += 2;
          const lo = this.hex4();
          if (this.ok && lo >= 0xdc00 && lo < 0xe000) u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
          else this.i = save;
        }
        if (u >= 0xd800 && u < 0xe000) u = 0xfffd;
        out += String.fromCodePoint(u);
      } else {
        this.i--;
        this.fail();
        break;
      }
      start = this.i;
    }
    return out;
  }

  digits(): bool {
    const start = this.i;
    while (this.i < this.s.length && isDigit(this.s.charCodeAt(this.i))) this.i++;
    return this.i > start;
  }

  number(): JsonValue {
    const start = this.i;
    if (this.s.charCodeAt(this.i) == 45) this.i++;
    if (this.i < this.s.length && this.s.charCodeAt(this.i) == 48) this.i++;
    else if (!this.digits()) return this.fail();
    if (this.i < this.s.length && this.s.charCodeAt(this.i) == 46) {
      this.i++;
      if (!this.digits()) return this.fail();
    }
    if (this.i < this.s.length && (this.s.charCodeAt(this.i) | 32) == 101) {
      this.i++;
      if (this.i < this.s.length && (this.s.charCodeAt(this.i) == 43 || this.s.charCodeAt(this.i) == 45)) this.i++;
      if (!this.digits()) return this.fail();
    }
    const text = this.s.substring(start, this.i);
    const v = new JsonValue();
    v.kind = JsonKind.Number;
    v.num = parseFloat(text);
    if (!isFinite(v.num)) {
      this.ok = false;
      error = "number " + text + " out of range";
    }
    return v;
  }
}
