// sidetrace plugin SDK for AssemblyScript (ABI v1, wasm-sdk/ABI.md): hooks, views and values,
// with the ABI's buffers, views and op lists hidden. See ../README.md.
//
// A plugin's entry file re-exports the ABI's exports and registers an init function:
//
//   export * from "<sdk>/assembly/exports";
//   import { Plugin, Request, Decision, sidetrace } from "<sdk>/assembly";
//   function init(p: Plugin): void { p.requestHeaders(["x-tenant-id"]); p.onRequest(onRequest); }
//   sidetrace(init);

import { out, Reader } from "./codec";
import { hostGetHeader, hostLog } from "./host";

export { JsonValue, JsonKind, parseJson, jsonError } from "./json";

/** A request hook's sampling decision. */
export enum Decision {
  NoOpinion = 0, // leave sampling to the sampler
  Drop = 1, // neither record nor sample
  RecordOnly = 2, // record the span, do not sample it
  RecordAndSample = 3, // record and sample
}

/** Span kinds (OTLP numbering). */
export enum SpanKind {
  Unspecified = 0,
  Internal = 1,
  Server = 2, // the proxy received the request
  Client = 3, // the proxy sent the request
  Producer = 4,
  Consumer = 5,
}

/** Log levels, as in Go's log/slog. */
export enum Level {
  Debug = -4,
  Info = 0,
  Warn = 4,
  Error = 8,
}

/** Writes msg to the host's log, attributed to the plugin. */
export function log(level: Level, msg: string): void {
  const b = String.UTF8.encode(msg);
  hostLog(level, changetype<usize>(b), b.byteLength);
}

/** Attribute value types (ABI.md, "Values"). */
export enum ValueType {
  Other = 0,
  String = 1,
  Bool = 2,
  Int64 = 3,
  Float64 = 4,
  StringSlice = 5,
  BoolSlice = 6,
  Int64Slice = 7,
  Float64Slice = 8,
}

// Shared empty slices: a Value holds fresh arrays only for its own slice type.
const NO_STRINGS: string[] = [];
const NO_BOOLS: bool[] = [];
const NO_INT64S: i64[] = [];
const NO_FLOAT64S: f64[] = [];

/** An attribute value. The slice fields other than its type's are shared empty arrays. */
export class Value {
  type: ValueType = ValueType.String;
  str: string = "";
  bool: bool = false;
  int64: i64 = 0;
  float64: f64 = 0;
  strings: string[] = NO_STRINGS;
  bools: bool[] = NO_BOOLS;
  int64s: i64[] = NO_INT64S;
  float64s: f64[] = NO_FLOAT64S;

  static string(s: string): Value {
    const v = new Value();
    v.str = s;
    return v;
  }
  static bool(b: bool): Value {
    const v = new Value();
    v.type = ValueType.Bool;
    v.bool = b;
    return v;
  }
  static int64(n: i64): Value {
    const v = new Value();
    v.type = ValueType.Int64;
    v.int64 = n;
    return v;
  }
  static float64(f: f64): Value {
    const v = new Value();
    v.type = ValueType.Float64;
    v.float64 = f;
    return v;
  }
  static strings(s: string[]): Value {
    const v = new Value();
    v.type = ValueType.StringSlice;
    v.strings = s;
    return v;
  }
  /** A string or Other value's text. */
  isString(): bool {
    return this.type == ValueType.String || this.type == ValueType.Other;
  }
}

/** A key and its value. */
export class Attribute {
  constructor(public key: string, public value: Value) {}
}

/** A span event. */
export class Event {
  name: string = "";
  timeUnixNano: u64 = 0;
  attributes: Attribute[] = [];
}

// ---------------------------------------------------------------------------
// Registration

/** Registers hooks and declares headers; handed to the init function once per instance. */
export class Plugin {
  /** The config: the JSON value of "config" in SIDETRACE_PLUGINS, or "". */
  config: string = "";
  reqHdr: string[] = [];
  respHdr: string[] = [];
  request: ((r: Request) => Decision) | null = null;
  response: ((r: Response) => void) | null = null;
  spanEnd: ((s: Span) => void) | null = null;
  refused: string | null = null;

  /** Declares request headers the request hook reads: their values come with every view. */
  requestHeaders(names: string[]): void {
    appendNames(this.reqHdr, names);
  }
  /** Declares response headers the response hook reads. */
  responseHeaders(names: string[]): void {
    appendNames(this.respHdr, names);
  }
  /** Registers the request hook (a top-level function: AssemblyScript has no closures). */
  onRequest(f: (r: Request) => Decision): void {
    this.request = f;
  }
  /** Registers the response hook. */
  onResponse(f: (r: Response) => void): void {
    this.response = f;
  }
  /** Registers the span-end hook. */
  onSpanEnd(f: (s: Span) => void): void {
    this.spanEnd = f;
  }
  /** Refuses the plugin (bad config): the host reports "plugins: NAME: init: MESSAGE". */
  refuse(message: string): void {
    this.refused = message;
  }
}

/** s with ASCII letters in lower case (String#toLowerCase would add 8 KB of Unicode tables). */
export function asciiLower(s: string): string {
  let out = s;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) {
      let b = "";
      for (let k = 0; k < s.length; k++) {
        const d = s.charCodeAt(k);
        b += String.fromCharCode(d >= 65 && d <= 90 ? d + 32 : d);
      }
      return b;
    }
  }
  return out;
}

function appendNames(list: string[], names: string[]): void {
  for (let i = 0; i < names.length; i++) {
    const n = asciiLower(names[i].trim());
    if (n.length > 0 && !list.includes(n)) list.push(n);
  }
}

let initFn: ((p: Plugin) => void) | null = null;
let plugin: Plugin = new Plugin();

/** Registers the plugin's init function; call it once at the top level of the entry file. */
export function sidetrace(init: (p: Plugin) => void): void {
  initFn = init;
}

// ---------------------------------------------------------------------------
// Views

function eqFold(a: string, b: string): bool {
  if (a.length != b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a.charCodeAt(i),
      y = b.charCodeAt(i);
    if (x >= 65 && x <= 90) x += 32;
    if (y >= 65 && y <= 90) y += 32;
    if (x != y) return false;
  }
  return true;
}

class Headers {
  offs: u32[] = [];
  declared: string[] = [];
  which: i32 = 0;
  view: usize = 0;
  len: u32 = 0;

  get(name: string): string | null {
    for (let i = 0; i < this.offs.length; i++) {
      if (!eqFold(this.declared[i], name)) continue;
      const r = new Reader(this.view, this.len);
      r.off = this.offs[i];
      const n = r.u32();
      if (n == 0) return null;
      let s = r.str();
      for (let k: u32 = 1; k < n; k++) s += ", " + r.str();
      return s;
    }
    return hostHeader(this.which, name);
  }

  values(name: string): string[] {
    for (let i = 0; i < this.offs.length; i++) {
      if (!eqFold(this.declared[i], name)) continue;
      const r = new Reader(this.view, this.len);
      r.off = this.offs[i];
      const n = r.u32();
      const vs = new Array<string>(0);
      for (let k: u32 = 0; k < n; k++) vs.push(r.str());
      return vs;
    }
    const v = hostHeader(this.which, name);
    return v == null ? [] : [v];
  }
}

let headerBuf: usize = 0;
let headerCap: usize = 0;

function hostHeader(which: i32, name: string): string | null {
  const nb = String.UTF8.encode(name);
  if (headerCap == 0) {
    headerCap = 128;
    headerBuf = heap.alloc(headerCap);
  }
  for (;;) {
    const n = hostGetHeader(which, changetype<usize>(nb), nb.byteLength, headerBuf, headerCap);
    if (n < 0) return null;
    if (<usize>n <= headerCap) return String.UTF8.decodeUnsafe(headerBuf, n);
    headerCap = <usize>n;
    headerBuf = heap.realloc(headerBuf, headerCap);
  }
  return null;
}

function traceBytes(view: usize, off: u32, n: i32): Uint8Array {
  const a = new Uint8Array(n);
  memory.copy(a.dataStart, view + off, n);
  return a;
}

/** The request hook's view of a request, valid during the hook. Fields are decoded on use. */
export class Request {
  view: usize = 0;
  len: u32 = 0;
  kindByte: u8 = 0;
  fields: StaticArray<u32> = new StaticArray<u32>(14); // offset and length of method...tenant
  newTenant: string | null = null;
  headers: Headers = new Headers();

  field(i: i32): string {
    return String.UTF8.decodeUnsafe(this.view + unchecked(this.fields[2 * i]), unchecked(this.fields[2 * i + 1]));
  }
  kind(): SpanKind {
    return <SpanKind>this.kindByte;
  }
  /** The 16 bytes of the trace id. */
  traceId(): Uint8Array {
    return traceBytes(this.view, 1, 16);
  }
  /** Byte i (0 to 15) of the trace id, without allocating. */
  traceIdByte(i: i32): u8 {
    return load<u8>(this.view + 1 + <usize>(i & 15));
  }
  method(): string {
    return this.field(0);
  }
  scheme(): string {
    return this.field(1);
  }
  host(): string {
    return this.field(2);
  }
  path(): string {
    return this.field(3);
  }
  /** The raw query, without '?'. */
  query(): string {
    return this.field(4);
  }
  /** "ip:port" of the client (server spans) or the upstream (client spans). */
  peerAddr(): string {
    return this.field(5);
  }
  /** The tenant set by earlier plugins or this hook, or "". */
  tenant(): string {
    const t = this.newTenant;
    if (t !== null) return t;
    return this.field(6);
  }
  /** The header's values joined with ", ", or null if absent; undeclared ones cost a host call. */
  header(name: string): string | null {
    return this.headers.get(name);
  }
  headerValues(name: string): string[] {
    return this.headers.values(name);
  }
  /** Adds a span attribute. */
  setAttribute(key: string, v: Value): void {
    out.setAttr(key, v);
  }
  /** Sets the request's tenant, seen by later plugins and the proxy. */
  setTenant(tenant: string): void {
    out.op(0x05);
    out.str(tenant);
    this.newTenant = tenant;
  }
  /** Reports that the hook failed: the host discards its edits and applies the failure policy. */
  fail(msg: string): void {
    out.fail(msg);
  }
}

/** The response hook's view of a response, valid during the hook. */
export class Response {
  view: usize = 0;
  kindByte: u8 = 0;
  tenant_: string = "";
  status_: u32 = 0;
  duration_: u64 = 0;
  headers: Headers = new Headers();

  kind(): SpanKind {
    return <SpanKind>this.kindByte;
  }
  traceId(): Uint8Array {
    return traceBytes(this.view, 1, 16);
  }
  tenant(): string {
    return this.tenant_;
  }
  status(): u32 {
    return this.status_;
  }
  /** Nanoseconds from request start to response headers. */
  durationNanos(): u64 {
    return this.duration_;
  }
  header(name: string): string | null {
    return this.headers.get(name);
  }
  headerValues(name: string): string[] {
    return this.headers.values(name);
  }
  setAttribute(key: string, v: Value): void {
    out.setAttr(key, v);
  }
  /** Marks the span as an error ("" for no description). */
  markError(description: string): void {
    out.op(0x07);
    out.str(description);
  }
  /** Asks to export the span whatever the sampler decided. */
  keep(): void {
    out.op(0x08);
  }
  fail(msg: string): void {
    out.fail(msg);
  }
}

/** The span-end hook's view of a finished span; edits show in it at once. */
export class Span {
  name: string = "";
  kindByte: u8 = 0;
  view: usize = 0;
  attributes: Attribute[] = [];
  events: Event[] = [];

  kind(): SpanKind {
    return <SpanKind>this.kindByte;
  }
  traceId(): Uint8Array {
    return traceBytes(this.view, 1, 16);
  }
  spanId(): Uint8Array {
    return traceBytes(this.view, 17, 8);
  }
  /** The value of attribute key, or null. */
  attribute(key: string): Value | null {
    for (let i = 0; i < this.attributes.length; i++) if (this.attributes[i].key == key) return this.attributes[i].value;
    return null;
  }
  /** Sets (replaces or adds) a span attribute. */
  setAttribute(key: string, v: Value): void {
    out.setAttr(key, v);
    setAttr(this.attributes, key, v);
  }
  deleteAttribute(key: string): void {
    out.op(0x02);
    out.str(key);
    const kept = new Array<Attribute>(0);
    for (let i = 0; i < this.attributes.length; i++) if (this.attributes[i].key != key) kept.push(this.attributes[i]);
    this.attributes = kept;
  }
  /** Sets an attribute of event i (an index into events). */
  setEventAttribute(i: i32, key: string, v: Value): void {
    assert(i >= 0 && i < this.events.length, "sidetrace: event index out of range");
    out.op(0x03);
    out.u32(<u32>i);
    out.str(key);
    out.value(v);
    setAttr(this.events[i].attributes, key, v);
  }
  fail(msg: string): void {
    out.fail(msg);
  }
}

function setAttr(attrs: Attribute[], key: string, v: Value): void {
  for (let i = 0; i < attrs.length; i++) {
    if (attrs[i].key == key) {
      attrs[i].value = v;
      return;
    }
  }
  attrs.push(new Attribute(key, v));
}

// ---------------------------------------------------------------------------
// The ABI exports' bodies (exports.ts holds the exports).

let input: usize = 0;
let inputCap: u32 = 0;

export function __alloc_input(size: u32): u32 {
  if (size > inputCap) {
    if (input) heap.free(input);
    input = heap.alloc(size);
    inputCap = size;
  }
  return <u32>input;
}

export function __init(len: u32): u64 {
  out.reset();
  plugin = new Plugin();
  plugin.config = String.UTF8.decodeUnsafe(input, len);
  const f = initFn;
  if (f != null) f(plugin);
  if (plugin.refused != null) {
    out.reset();
    out.fail(plugin.refused!);
    return out.packed();
  }
  let hooks: u32 = 0;
  if (plugin.request != null) hooks |= 1;
  if (plugin.response != null) hooks |= 2;
  if (plugin.spanEnd != null) hooks |= 4;
  out.op(0x10);
  out.u32(hooks);
  for (let i = 0; i < plugin.reqHdr.length; i++) {
    out.op(0x11);
    out.str(plugin.reqHdr[i]);
  }
  for (let i = 0; i < plugin.respHdr.length; i++) {
    out.op(0x12);
    out.str(plugin.respHdr[i]);
  }
  return out.packed();
}

const TRUNCATED = "sdk: truncated view";

function readHeaders(r: Reader, h: Headers, declared: string[], which: i32): void {
  h.declared = declared;
  h.which = which;
  h.view = r.base;
  h.len = r.len;
  h.offs = [];
  for (let i = 0; i < declared.length && r.ok; i++) {
    h.offs.push(r.off);
    const c = r.count(4);
    for (let k: u32 = 0; k < c && r.ok; k++) r.skipStr();
  }
}

export function __on_request(len: u32): u64 {
  out.reset();
  const f = plugin.request;
  if (f == null) return 0;
  const r = new Reader(input, len);
  const q = new Request();
  q.view = input;
  q.len = len;
  q.kindByte = r.u8();
  r.skip(16);
  for (let i = 0; i < 7; i++) {
    const n = r.u32();
    unchecked((q.fields[2 * i] = r.off));
    unchecked((q.fields[2 * i + 1] = n));
    r.skip(n);
  }
  readHeaders(r, q.headers, plugin.reqHdr, 0);
  if (!r.ok) {
    out.fail(TRUNCATED);
    return out.packed();
  }
  const d = f(q);
  if (d != Decision.NoOpinion) {
    out.op(0x06);
    out.op(<u8>d);
  }
  return out.packed();
}

export function __on_response(len: u32): u64 {
  out.reset();
  const f = plugin.response;
  if (f == null) return 0;
  const r = new Reader(input, len);
  const q = new Response();
  q.view = input;
  q.kindByte = r.u8();
  r.skip(16);
  q.tenant_ = r.str();
  q.status_ = r.u32();
  q.duration_ = r.u64();
  readHeaders(r, q.headers, plugin.respHdr, 1);
  if (!r.ok) {
    out.fail(TRUNCATED);
    return out.packed();
  }
  f(q);
  return out.packed();
}

export function __on_span_end(len: u32): u64 {
  out.reset();
  const f = plugin.spanEnd;
  if (f == null) return 0;
  const r = new Reader(input, len);
  const s = new Span();
  s.view = input;
  s.kindByte = r.u8();
  r.skip(24);
  s.name = r.str();
  s.attributes = readAttrs(r);
  const n = r.count(16);
  for (let i: u32 = 0; i < n && r.ok; i++) {
    const e = new Event();
    e.name = r.str();
    e.timeUnixNano = r.u64();
    e.attributes = readAttrs(r);
    s.events.push(e);
  }
  if (!r.ok) {
    out.fail(TRUNCATED);
    return out.packed();
  }
  f(s);
  return out.packed();
}

function readAttrs(r: Reader): Attribute[] {
  const n = r.count(5);
  const a = new Array<Attribute>(0);
  for (let i: u32 = 0; i < n && r.ok; i++) {
    const k = r.str();
    a.push(new Attribute(k, readValue(r)));
  }
  return a;
}

function readValue(r: Reader): Value {
  const v = new Value();
  v.type = <ValueType>r.u8();
  switch (v.type) {
    case ValueType.Other:
    case ValueType.String:
      v.str = r.str();
      break;
    case ValueType.Bool:
      v.bool = r.u8() != 0;
      break;
    case ValueType.Int64:
      v.int64 = <i64>r.u64();
      break;
    case ValueType.Float64:
      v.float64 = reinterpret<f64>(r.u64());
      break;
    case ValueType.StringSlice: {
      const n = r.count(4);
      v.strings = new Array<string>(0);
      for (let i: u32 = 0; i < n && r.ok; i++) v.strings.push(r.str());
      break;
    }
    case ValueType.BoolSlice: {
      const n = r.count(1);
      v.bools = new Array<bool>(0);
      for (let i: u32 = 0; i < n && r.ok; i++) v.bools.push(r.u8() != 0);
      break;
    }
    case ValueType.Int64Slice: {
      const n = r.count(8);
      v.int64s = new Array<i64>(0);
      for (let i: u32 = 0; i < n && r.ok; i++) v.int64s.push(<i64>r.u64());
      break;
    }
    case ValueType.Float64Slice: {
      const n = r.count(8);
      v.float64s = new Array<f64>(0);
      for (let i: u32 = 0; i < n && r.ok; i++) v.float64s.push(reinterpret<f64>(r.u64()));
      break;
    }
    default:
      r.ok = false;
  }
  return v;
}

/** Routed from AssemblyScript's abort (asc --use abort=...): logs, then traps. */
export function __sidetrace_abort(msg: string | null, file: string | null, line: u32, col: u32): void {
  let m = "abort: ";
  if (msg !== null) m += msg;
  if (file !== null) m += " at " + file + ":" + line.toString();
  log(Level.Error, m);
  unreachable();
}
