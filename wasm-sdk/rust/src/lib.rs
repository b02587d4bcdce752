//! sidetrace plugin SDK for Rust: write a plugin for the sidetrace ABI v1 (`wasm-sdk/ABI.md`)
//! without touching its buffers, views or op lists.
//!
//! ```ignore
//! use sidetrace::{Decision, Plugin};
//!
//! fn init(p: &mut Plugin) -> Result<(), String> {
//!     p.request_headers(&["x-tenant-id"]);
//!     p.on_request(|r| {
//!         if let Some(t) = r.header("x-tenant-id") {
//!             r.set_tenant(&t);
//!             r.set_attribute("tenant.id", &*t);
//!         }
//!         Decision::RecordAndSample
//!     });
//!     Ok(())
//! }
//!
//! sidetrace::plugin!(init);
//! ```
//!
//! Build for `wasm32-unknown-unknown` (see README.md). The crate depends on nothing but the
//! standard library, which on that target has no I/O: the SDK brings its own allocator
//! ([`alloc`]) and a panic hook that logs the panic to the host before the instance traps.
#![warn(missing_docs)]

use std::borrow::Cow;
use std::string::String;
use std::vec::Vec;

pub mod alloc;
pub mod json;
pub mod regex;

/// The ABI's numbers (wasm-sdk/go/abi/abi.go is the reference copy).
pub mod abi {
    #![allow(missing_docs)]
    pub const HOOK_REQUEST: u32 = 1;
    pub const HOOK_RESPONSE: u32 = 2;
    pub const HOOK_SPAN_END: u32 = 4;

    pub const VALUE_OTHER: u8 = 0;
    pub const VALUE_STRING: u8 = 1;
    pub const VALUE_BOOL: u8 = 2;
    pub const VALUE_INT64: u8 = 3;
    pub const VALUE_FLOAT64: u8 = 4;
    pub const VALUE_STRING_SLICE: u8 = 5;
    pub const VALUE_BOOL_SLICE: u8 = 6;
    pub const VALUE_INT64_SLICE: u8 = 7;
    pub const VALUE_FLOAT64_SLICE: u8 = 8;

    pub const OP_SET_ATTR: u8 = 0x01;
    pub const OP_DELETE_ATTR: u8 = 0x02;
    pub const OP_SET_EVENT_ATTR: u8 = 0x03;
    pub const OP_DELETE_EVENT_ATTR: u8 = 0x04;
    pub const OP_SET_TENANT: u8 = 0x05;
    pub const OP_DECISION: u8 = 0x06;
    pub const OP_MARK_ERROR: u8 = 0x07;
    pub const OP_KEEP: u8 = 0x08;
    pub const OP_FAIL: u8 = 0x09;
    pub const OP_HOOKS: u8 = 0x10;
    pub const OP_REQUEST_HEADER: u8 = 0x11;
    pub const OP_RESPONSE_HEADER: u8 = 0x12;

    pub const HEADER_REQUEST: i32 = 0;
    pub const HEADER_RESPONSE: i32 = 1;
}

/// A request hook's sampling decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Decision {
    /// Leave sampling to the sampler.
    NoOpinion = 0,
    /// Neither record nor sample.
    Drop = 1,
    /// Record the span, do not sample it.
    RecordOnly = 2,
    /// Record and sample.
    RecordAndSample = 3,
}

/// The kind of the span a hook sees (OTLP numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum SpanKind {
    Unspecified,
    Internal,
    /// The proxy received the request.
    Server,
    /// The proxy sent the request.
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    fn from_u8(k: u8) -> SpanKind {
        match k {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

/// A W3C trace id.
pub type TraceId = [u8; 16];
/// A W3C span id.
pub type SpanId = [u8; 8];

/// A log level, as in Go's log/slog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
#[allow(missing_docs)]
pub enum Level {
    Debug = -4,
    Info = 0,
    Warn = 4,
    Error = 8,
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Value {
    /// The text of a type the ABI does not carry (bytes, maps); comes back as a string if set.
    Other(String),
    String(String),
    Bool(bool),
    Int64(i64),
    Float64(f64),
    StringSlice(Vec<String>),
    BoolSlice(Vec<bool>),
    Int64Slice(Vec<i64>),
    Float64Slice(Vec<f64>),
}

impl Value {
    /// The text of a String or Other value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::Other(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.into())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::String(s.clone())
    }
}
impl From<Cow<'_, str>> for Value {
    fn from(s: Cow<'_, str>) -> Value {
        Value::String(s.into_owned())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int64(n)
    }
}
impl From<i32> for Value {
    fn from(n: i32) -> Value {
        Value::Int64(n as i64)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float64(f)
    }
}
impl From<Vec<String>> for Value {
    fn from(s: Vec<String>) -> Value {
        Value::StringSlice(s)
    }
}
impl From<&[&str]> for Value {
    fn from(s: &[&str]) -> Value {
        Value::StringSlice(s.iter().map(|e| String::from(*e)).collect())
    }
}
impl From<Vec<bool>> for Value {
    fn from(s: Vec<bool>) -> Value {
        Value::BoolSlice(s)
    }
}
impl From<Vec<i64>> for Value {
    fn from(s: Vec<i64>) -> Value {
        Value::Int64Slice(s)
    }
}
impl From<Vec<f64>> for Value {
    fn from(s: Vec<f64>) -> Value {
        Value::Float64Slice(s)
    }
}

/// A key and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// The attribute's key.
    pub key: String,
    /// The attribute's value.
    pub value: Value,
}

/// A span event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The event's name.
    pub name: String,
    /// Unix nanoseconds.
    pub time_unix_nano: u64,
    /// The event's attributes.
    pub attributes: Vec<Attribute>,
}

/// Writes `msg` to the host's log, attributed to the plugin.
pub fn log(level: Level, msg: &str) {
    host::log(level as i32, msg.as_bytes());
}

// ---------------------------------------------------------------------------
// Registration

type RequestHook = Box<dyn FnMut(&mut Request) -> Decision>;
type ResponseHook = Box<dyn FnMut(&mut Response)>;
type SpanHook = Box<dyn FnMut(&mut Span)>;

/// What `init` registers: hooks and the headers their views carry. It is handed to the
/// plugin's init function once per instance, with the plugin's config.
pub struct Plugin {
    config: Vec<u8>,
    req_hdr: Vec<String>,
    resp_hdr: Vec<String>,
    on_request: Option<RequestHook>,
    on_response: Option<ResponseHook>,
    on_span_end: Option<SpanHook>,
}

impl Plugin {
    /// The plugin's config: the JSON value of "config" in SIDETRACE_PLUGINS, or empty.
    pub fn config(&self) -> &[u8] {
        &self.config
    }

    /// Declares request headers the request hook reads: the host sends their values with every
    /// request view. Others can still be read with [`Request::header`], at the cost of a host call.
    pub fn request_headers(&mut self, names: &[&str]) {
        append_names(&mut self.req_hdr, names)
    }

    /// Declares response headers the response hook reads.
    pub fn response_headers(&mut self, names: &[&str]) {
        append_names(&mut self.resp_hdr, names)
    }

    /// Registers the request hook: it sees the request, may add span attributes and set the
    /// tenant, and returns a sampling decision.
    pub fn on_request(&mut self, f: impl FnMut(&mut Request) -> Decision + 'static) {
        self.on_request = Some(Box::new(f))
    }

    /// Registers the response hook: it may add span attributes, mark the span as an error or
    /// ask to keep it.
    pub fn on_response(&mut self, f: impl FnMut(&mut Response) + 'static) {
        self.on_response = Some(Box::new(f))
    }

    /// Registers the span-end hook: it sees each finished span before any exporter and may
    /// set, delete or redact attribute values.
    pub fn on_span_end(&mut self, f: impl FnMut(&mut Span) + 'static) {
        self.on_span_end = Some(Box::new(f))
    }
}

fn append_names(list: &mut Vec<String>, names: &[&str]) {
    for n in names {
        let n = n.trim().to_ascii_lowercase();
        if !n.is_empty() && !list.contains(&n) {
            list.push(n);
        }
    }
}

// ---------------------------------------------------------------------------
// Views

/// A string in the view: offset and length.
#[derive(Clone, Copy, Default)]
struct Str(u32, u32);

/// The declared headers of a view: for each, the offset of its value count.
struct Headers<'a> {
    view: &'a [u8],
    offs: Vec<u32>,
    declared: &'a [String],
    which: i32,
}

impl<'a> Headers<'a> {
    fn index(&self, name: &str) -> Option<usize> {
        let i = self.declared.iter().position(|d| d.eq_ignore_ascii_case(name))?;
        if i < self.offs.len() {
            Some(i)
        } else {
            None
        }
    }

    fn values(&self, i: usize) -> Vec<&'a str> {
        let mut r = Reader { b: self.view, off: self.offs[i] as usize, ok: true };
        let n = r.u32() as usize;
        (0..n).map(|_| r.str()).collect()
    }

    fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        match self.index(name) {
            Some(i) => {
                let vs = self.values(i);
                match vs.len() {
                    0 => None,
                    1 => Some(Cow::Borrowed(vs[0])),
                    _ => Some(Cow::Owned(vs.join(", "))),
                }
            }
            None => host::get_header(self.which, name).map(Cow::Owned),
        }
    }

    fn get_values(&self, name: &str) -> Vec<Cow<'a, str>> {
        match self.index(name) {
            Some(i) => self.values(i).into_iter().map(Cow::Borrowed).collect(),
            None => host::get_header(self.which, name).map(Cow::Owned).into_iter().collect(),
        }
    }
}

/// The request hook's view of a request, valid during the hook.
pub struct Request<'a> {
    view: &'a [u8],
    kind: u8,
    trace_id: TraceId,
    method: Str,
    scheme: Str,
    host: Str,
    path: Str,
    query: Str,
    peer: Str,
    tenant: Str,
    new_tenant: Option<String>,
    headers: Headers<'a>,
}

impl<'a> Request<'a> {
    fn s(&self, s: Str) -> &'a str {
        str_at(self.view, s)
    }
    /// Server (the proxy received the request) or Client (the proxy sent it).
    pub fn kind(&self) -> SpanKind {
        SpanKind::from_u8(self.kind)
    }
    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }
    /// "GET".
    pub fn method(&self) -> &'a str {
        self.s(self.method)
    }
    /// "http" or "https".
    pub fn scheme(&self) -> &'a str {
        self.s(self.scheme)
    }
    /// The Host header or upstream authority.
    pub fn host(&self) -> &'a str {
        self.s(self.host)
    }
    /// The raw path.
    pub fn path(&self) -> &'a str {
        self.s(self.path)
    }
    /// The raw query, without '?'.
    pub fn query(&self) -> &'a str {
        self.s(self.query)
    }
    /// The peer's "ip:port": the client (server spans) or the upstream (client spans).
    pub fn peer_addr(&self) -> &'a str {
        self.s(self.peer)
    }
    /// The request's tenant: set by an earlier plugin, or by this hook; "" if none.
    pub fn tenant(&self) -> &str {
        match &self.new_tenant {
            Some(t) => t,
            None => self.s(self.tenant),
        }
    }
    /// The header's values joined with ", ", or None if absent. Declared headers come with the
    /// view; others are read from the host.
    pub fn header(&self, name: &str) -> Option<Cow<'a, str>> {
        self.headers.get(name)
    }
    /// The header's values (one joined value for undeclared headers).
    pub fn header_values(&self, name: &str) -> Vec<Cow<'a, str>> {
        self.headers.get_values(name)
    }
    /// Adds a span attribute.
    pub fn set_attribute(&mut self, key: &str, v: impl Into<Value>) {
        out::set_attr(key, &v.into())
    }
    /// Sets the request's tenant, seen by later plugins and the proxy.
    pub fn set_tenant(&mut self, tenant: &str) {
        out::op(abi::OP_SET_TENANT);
        out::str(tenant);
        self.new_tenant = Some(tenant.into());
    }
    /// Reports that the hook failed: the host discards its edits and applies the failure policy.
    pub fn fail(&mut self, msg: &str) {
        out::fail(msg)
    }
}

/// The response hook's view of a response, valid during the hook.
pub struct Response<'a> {
    view: &'a [u8],
    kind: u8,
    trace_id: TraceId,
    tenant: Str,
    status: u32,
    duration: u64,
    headers: Headers<'a>,
}

impl<'a> Response<'a> {
    /// The span's kind.
    pub fn kind(&self) -> SpanKind {
        SpanKind::from_u8(self.kind)
    }
    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }
    /// The tenant set during the request hooks, or "".
    pub fn tenant(&self) -> &'a str {
        str_at(self.view, self.tenant)
    }
    /// The HTTP status code.
    pub fn status(&self) -> u32 {
        self.status
    }
    /// From request start to response headers.
    pub fn duration(&self) -> core::time::Duration {
        core::time::Duration::from_nanos(self.duration)
    }
    /// The response header's values joined with ", ", or None.
    pub fn header(&self, name: &str) -> Option<Cow<'a, str>> {
        self.headers.get(name)
    }
    /// The response header's values.
    pub fn header_values(&self, name: &str) -> Vec<Cow<'a, str>> {
        self.headers.get_values(name)
    }
    /// Adds a span attribute.
    pub fn set_attribute(&mut self, key: &str, v: impl Into<Value>) {
        out::set_attr(key, &v.into())
    }
    /// Marks the span as an error, with an optional description ("" for none).
    pub fn mark_error(&mut self, description: &str) {
        out::op(abi::OP_MARK_ERROR);
        out::str(description);
    }
    /// Asks to export the span whatever the sampler decided.
    pub fn keep(&mut self) {
        out::op(abi::OP_KEEP)
    }
    /// Reports that the hook failed.
    pub fn fail(&mut self, msg: &str) {
        out::fail(msg)
    }
}

/// The span-end hook's view of a finished span. Edits go to the host and show in the view at once.
pub struct Span {
    name: String,
    kind: u8,
    trace_id: TraceId,
    span_id: SpanId,
    attrs: Vec<Attribute>,
    events: Vec<Event>,
}

impl Span {
    /// The span's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The span's kind.
    pub fn kind(&self) -> SpanKind {
        SpanKind::from_u8(self.kind)
    }
    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }
    /// The span id.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }
    /// The span's attributes, as edited so far.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attrs
    }
    /// The value of attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attrs.iter().find(|a| a.key == key).map(|a| &a.value)
    }
    /// The span's events.
    pub fn events(&self) -> &[Event] {
        &self.events
    }
    /// Sets (replaces or adds) a span attribute.
    pub fn set_attribute(&mut self, key: &str, v: impl Into<Value>) {
        let v = v.into();
        out::set_attr(key, &v);
        set_attr(&mut self.attrs, key, v);
    }
    /// Deletes a span attribute.
    pub fn delete_attribute(&mut self, key: &str) {
        out::op(abi::OP_DELETE_ATTR);
        out::str(key);
        self.attrs.retain(|a| a.key != key);
    }
    /// Sets an attribute of event `i` (an index into [`Span::events`]). Panics if out of range.
    pub fn set_event_attribute(&mut self, i: usize, key: &str, v: impl Into<Value>) {
        assert!(i < self.events.len(), "sidetrace: event index out of range");
        let v = v.into();
        out::op(abi::OP_SET_EVENT_ATTR);
        out::u32(i as u32);
        out::str(key);
        out::value(&v);
        set_attr(&mut self.events[i].attributes, key, v);
    }
    /// Deletes an attribute of event `i`. Panics if out of range.
    pub fn delete_event_attribute(&mut self, i: usize, key: &str) {
        assert!(i < self.events.len(), "sidetrace: event index out of range");
        out::op(abi::OP_DELETE_EVENT_ATTR);
        out::u32(i as u32);
        out::str(key);
        self.events[i].attributes.retain(|a| a.key != key);
    }
    /// Reports that the hook failed: the host discards its edits and, for a fail-closed plugin,
    /// drops the span.
    pub fn fail(&mut self, msg: &str) {
        out::fail(msg)
    }
}

fn set_attr(attrs: &mut Vec<Attribute>, key: &str, v: Value) {
    match attrs.iter_mut().find(|a| a.key == key) {
        Some(a) => a.value = v,
        None => attrs.push(Attribute { key: key.into(), value: v }),
    }
}

fn str_at(view: &[u8], s: Str) -> &str {
    bytes_str(&view[s.0 as usize..(s.0 + s.1) as usize])
}

/// The ABI promises UTF-8; invalid bytes, should a host send them, read as "".
fn bytes_str(b: &[u8]) -> &str {
    core::str::from_utf8(b).unwrap_or("")
}

// ---------------------------------------------------------------------------
// Decoding

struct Reader<'a> {
    b: &'a [u8],
    off: usize,
    ok: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        if !self.ok || self.b.len() - self.off < n {
            self.ok = false;
            return &[];
        }
        self.off += n;
        &self.b[self.off - n..self.off]
    }
    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    fn u32(&mut self) -> u32 {
        let b = self.take(4);
        if b.len() < 4 {
            return 0;
        }
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    fn u64(&mut self) -> u64 {
        let b = self.take(8);
        if b.len() < 8 {
            return 0;
        }
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    }
    fn span(&mut self) -> Str {
        let n = self.u32() as usize;
        let off = self.off;
        self.take(n);
        if !self.ok {
            return Str(0, 0);
        }
        Str(off as u32, n as u32)
    }
    fn str(&mut self) -> &'a str {
        let n = self.u32() as usize;
        bytes_str(self.take(n))
    }
    fn string(&mut self) -> String {
        self.str().into()
    }
    /// A count of elements of at least `min` bytes each, bounded by what is left.
    fn count(&mut self, min: usize) -> usize {
        let n = self.u32() as usize;
        if self.ok && n.saturating_mul(min) > self.b.len() - self.off {
            self.ok = false;
            return 0;
        }
        n
    }
    fn value(&mut self) -> Value {
        match self.u8() {
            abi::VALUE_OTHER => Value::Other(self.string()),
            abi::VALUE_STRING => Value::String(self.string()),
            abi::VALUE_BOOL => Value::Bool(self.u8() != 0),
            abi::VALUE_INT64 => Value::Int64(self.u64() as i64),
            abi::VALUE_FLOAT64 => Value::Float64(f64::from_bits(self.u64())),
            abi::VALUE_STRING_SLICE => {
                let n = self.count(4);
                Value::StringSlice((0..n).map(|_| self.string()).collect())
            }
            abi::VALUE_BOOL_SLICE => {
                let n = self.count(1);
                Value::BoolSlice((0..n).map(|_| self.u8() != 0).collect())
            }
            abi::VALUE_INT64_SLICE => {
                let n = self.count(8);
                Value::Int64Slice((0..n).map(|_| self.u64() as i64).collect())
            }
            abi::VALUE_FLOAT64_SLICE => {
                let n = self.count(8);
                Value::Float64Slice((0..n).map(|_| f64::from_bits(self.u64())).collect())
            }
            _ => {
                self.ok = false;
                Value::Bool(false)
            }
        }
    }
    fn attrs(&mut self) -> Vec<Attribute> {
        let n = self.count(5);
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            if !self.ok {
                break;
            }
            let key = self.string();
            let value = self.value();
            v.push(Attribute { key, value });
        }
        v
    }
    fn headers(&mut self, n: usize) -> Vec<u32> {
        let mut offs = Vec::with_capacity(n);
        for _ in 0..n {
            if !self.ok {
                break;
            }
            offs.push(self.off as u32);
            let c = self.count(4);
            for _ in 0..c {
                self.span();
            }
        }
        offs
    }
}

// ---------------------------------------------------------------------------
// Output

mod out {
    use super::{abi, Value};

    static mut OUT: Vec<u8> = Vec::new();

    #[allow(clippy::mut_from_ref)]
    fn b() -> &'static mut Vec<u8> {
        // SAFETY: a wasm instance is single-threaded and no reference outlives one call.
        unsafe { &mut *core::ptr::addr_of_mut!(OUT) }
    }
    pub fn reset() {
        b().clear()
    }
    pub fn packed() -> u64 {
        let b = b();
        if b.is_empty() {
            return 0;
        }
        ((b.as_ptr() as u64) << 32) | b.len() as u64
    }
    pub fn op(op: u8) {
        b().push(op)
    }
    pub fn u32(v: u32) {
        b().extend_from_slice(&v.to_le_bytes())
    }
    fn u64(v: u64) {
        b().extend_from_slice(&v.to_le_bytes())
    }
    pub fn str(s: &str) {
        u32(s.len() as u32);
        b().extend_from_slice(s.as_bytes())
    }
    pub fn fail(msg: &str) {
        op(abi::OP_FAIL);
        str(msg)
    }
    pub fn set_attr(key: &str, v: &Value) {
        op(abi::OP_SET_ATTR);
        str(key);
        value(v)
    }
    pub fn value(v: &Value) {
        match v {
            Value::Other(s) => {
                op(abi::VALUE_OTHER);
                str(s)
            }
            Value::String(s) => {
                op(abi::VALUE_STRING);
                str(s)
            }
            Value::Bool(x) => {
                op(abi::VALUE_BOOL);
                op(*x as u8)
            }
            Value::Int64(n) => {
                op(abi::VALUE_INT64);
                u64(*n as u64)
            }
            Value::Float64(f) => {
                op(abi::VALUE_FLOAT64);
                u64(f.to_bits())
            }
            Value::StringSlice(s) => {
                op(abi::VALUE_STRING_SLICE);
                u32(s.len() as u32);
                s.iter().for_each(|e| str(e))
            }
            Value::BoolSlice(s) => {
                op(abi::VALUE_BOOL_SLICE);
                u32(s.len() as u32);
                s.iter().for_each(|e| op(*e as u8))
            }
            Value::Int64Slice(s) => {
                op(abi::VALUE_INT64_SLICE);
                u32(s.len() as u32);
                s.iter().for_each(|e| u64(*e as u64))
            }
            Value::Float64Slice(s) => {
                op(abi::VALUE_FLOAT64_SLICE);
                u32(s.len() as u32);
                s.iter().for_each(|e| u64(e.to_bits()))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Host imports

mod host {
    #[cfg(target_arch = "wasm32")]
    #[link(wasm_import_module = "sidetrace")]
    extern "C" {
        #[link_name = "log"]
        fn host_log(level: i32, ptr: *const u8, len: usize);
        #[link_name = "get_header"]
        fn host_get_header(which: i32, np: *const u8, nl: usize, bp: *mut u8, bl: usize) -> i32;
    }

    #[cfg(target_arch = "wasm32")]
    pub fn log(level: i32, msg: &[u8]) {
        unsafe { host_log(level, msg.as_ptr(), msg.len()) }
    }

    #[cfg(target_arch = "wasm32")]
    pub fn get_header(which: i32, name: &str) -> Option<String> {
        let mut buf: Vec<u8> = Vec::with_capacity(128);
        loop {
            let n = unsafe { host_get_header(which, name.as_ptr(), name.len(), buf.as_mut_ptr(), buf.capacity()) };
            if n < 0 {
                return None;
            }
            let n = n as usize;
            if n <= buf.capacity() {
                unsafe { buf.set_len(n) };
                return Some(String::from_utf8(buf).unwrap_or_default());
            }
            buf.reserve(n);
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn log(_level: i32, _msg: &[u8]) {}

    #[cfg(not(target_arch = "wasm32"))]
    pub fn get_header(_which: i32, _name: &str) -> Option<String> {
        None
    }
}

// ---------------------------------------------------------------------------
// The exports' bodies, called by the functions `plugin!` generates.

#[doc(hidden)]
pub mod __rt {
    use super::*;

    static mut INPUT: Vec<u8> = Vec::new();
    static mut PLUGIN: Option<Plugin> = None;

    fn input() -> &'static mut Vec<u8> {
        // SAFETY: single-threaded; the host writes the buffer only between calls.
        unsafe { &mut *core::ptr::addr_of_mut!(INPUT) }
    }

    fn plugin() -> &'static mut Option<Plugin> {
        // SAFETY: as above; hooks are taken out of it while they run.
        unsafe { &mut *core::ptr::addr_of_mut!(PLUGIN) }
    }

    fn view(len: u32) -> &'static [u8] {
        let b = input();
        &b[..(len as usize).min(b.len())]
    }

    /// sidetrace_alloc: the input buffer, grown to at least `size` bytes.
    pub fn alloc(size: u32) -> u32 {
        let b = input();
        if b.len() < size as usize {
            *b = vec![0u8; size as usize];
        }
        b.as_ptr() as u32
    }

    /// sidetrace_init: runs the plugin's init function on the config and declares what it registered.
    pub fn init(len: u32, f: fn(&mut Plugin) -> Result<(), String>) -> u64 {
        install_panic_hook();
        out::reset();
        let mut p = Plugin {
            config: view(len).to_vec(),
            req_hdr: Vec::new(),
            resp_hdr: Vec::new(),
            on_request: None,
            on_response: None,
            on_span_end: None,
        };
        if let Err(msg) = f(&mut p) {
            out::reset();
            out::fail(&msg);
            return out::packed();
        }
        let mut hooks = 0;
        if p.on_request.is_some() {
            hooks |= abi::HOOK_REQUEST;
        }
        if p.on_response.is_some() {
            hooks |= abi::HOOK_RESPONSE;
        }
        if p.on_span_end.is_some() {
            hooks |= abi::HOOK_SPAN_END;
        }
        out::op(abi::OP_HOOKS);
        out::u32(hooks);
        for h in &p.req_hdr {
            out::op(abi::OP_REQUEST_HEADER);
            out::str(h);
        }
        for h in &p.resp_hdr {
            out::op(abi::OP_RESPONSE_HEADER);
            out::str(h);
        }
        *plugin() = Some(p);
        out::packed()
    }

    const TRUNCATED: &str = "sdk: truncated view";

    /// sidetrace_on_request.
    pub fn on_request(len: u32) -> u64 {
        out::reset();
        let p = match plugin() {
            Some(p) => p,
            None => return 0,
        };
        let mut f = match p.on_request.take() {
            Some(f) => f,
            None => return 0,
        };
        let v = view(len);
        let mut r = Reader { b: v, off: 0, ok: true };
        let kind = r.u8();
        let trace_id: [u8; 16] = fixed(r.take(16));
        let (method, scheme, host, path) = (r.span(), r.span(), r.span(), r.span());
        let (query, peer, tenant) = (r.span(), r.span(), r.span());
        let declared: &'static [String] = &p.req_hdr;
        let offs = r.headers(declared.len());
        if !r.ok {
            p.on_request = Some(f);
            out::fail(TRUNCATED);
            return out::packed();
        }
        let mut req = Request {
            view: v,
            kind,
            trace_id,
            method,
            scheme,
            host,
            path,
            query,
            peer,
            tenant,
            new_tenant: None,
            headers: Headers { view: v, offs, declared, which: abi::HEADER_REQUEST },
        };
        let d = f(&mut req);
        if d != Decision::NoOpinion {
            out::op(abi::OP_DECISION);
            out::op(d as u8);
        }
        if let Some(p) = plugin() {
            p.on_request = Some(f);
        }
        out::packed()
    }

    /// sidetrace_on_response.
    pub fn on_response(len: u32) -> u64 {
        out::reset();
        let p = match plugin() {
            Some(p) => p,
            None => return 0,
        };
        let mut f = match p.on_response.take() {
            Some(f) => f,
            None => return 0,
        };
        let v = view(len);
        let mut r = Reader { b: v, off: 0, ok: true };
        let kind = r.u8();
        let trace_id: [u8; 16] = fixed(r.take(16));
        let tenant = r.span();
        let status = r.u32();
        let duration = r.u64();
        let declared: &'static [String] = &p.resp_hdr;
        let offs = r.headers(declared.len());
        if !r.ok {
            p.on_response = Some(f);
            out::fail(TRUNCATED);
            return out::packed();
        }
        let mut resp = Response {
            view: v,
            kind,
            trace_id,
            tenant,
            status,
            duration,
            headers: Headers { view: v, offs, declared, which: abi::HEADER_RESPONSE },
        };
        f(&mut resp);
        if let Some(p) = plugin() {
            p.on_response = Some(f);
        }
        out::packed()
    }

    /// sidetrace_on_span_end.
    pub fn on_span_end(len: u32) -> u64 {
        out::reset();
        let p = match plugin() {
            Some(p) => p,
            None => return 0,
        };
        let mut f = match p.on_span_end.take() {
            Some(f) => f,
            None => return 0,
        };
        let mut r = Reader { b: view(len), off: 0, ok: true };
        let kind = r.u8();
        let trace_id: [u8; 16] = fixed(r.take(16));
        let span_id: [u8; 8] = fixed(r.take(8));
        let name = r.string();
        let attrs = r.attrs();
        let n = r.count(16);
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            if !r.ok {
                break;
            }
            let name = r.string();
            let time_unix_nano = r.u64();
            let attributes = r.attrs();
            events.push(Event { name, time_unix_nano, attributes });
        }
        if !r.ok {
            p.on_span_end = Some(f);
            out::fail(TRUNCATED);
            return out::packed();
        }
        let mut s = Span { name, kind, trace_id, span_id, attrs, events };
        f(&mut s);
        if let Some(p) = plugin() {
            p.on_span_end = Some(f);
        }
        out::packed()
    }

    /// b as an array, zero-padded when the view was cut short (the reader has then failed already).
    fn fixed<const N: usize>(b: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        let n = b.len().min(N);
        a[..n].copy_from_slice(&b[..n]);
        a
    }

    /// Logs a panic's message to the host (level error) before the instance traps.
    fn install_panic_hook() {
        static mut DONE: bool = false;
        // SAFETY: single-threaded.
        unsafe {
            if DONE {
                return;
            }
            DONE = true;
        }
        std::panic::set_hook(Box::new(|info| {
            let msg = match info.payload().downcast_ref::<&str>() {
                Some(s) => *s,
                None => match info.payload().downcast_ref::<String>() {
                    Some(s) => s.as_str(),
                    None => "panic",
                },
            };
            let mut line = String::from("panic: ");
            line.push_str(msg);
            if let Some(l) = info.location() {
                line.push_str(" at ");
                line.push_str(l.file());
            }
            super::log(Level::Error, &line);
        }));
    }
}

/// Generates the plugin's exports around `init`, a `fn(&mut Plugin) -> Result<(), String>` that
/// runs once per instance, reads [`Plugin::config`] and registers the hooks.
#[macro_export]
macro_rules! plugin {
    ($init:expr) => {
        #[no_mangle]
        pub extern "C" fn sidetrace_abi_v1() {}
        #[no_mangle]
        pub extern "C" fn sidetrace_alloc(size: u32) -> u32 {
            $crate::__rt::alloc(size)
        }
        #[no_mangle]
        pub extern "C" fn sidetrace_init(len: u32) -> u64 {
            $crate::__rt::init(len, $init)
        }
        #[no_mangle]
        pub extern "C" fn sidetrace_on_request(len: u32) -> u64 {
            $crate::__rt::on_request(len)
        }
        #[no_mangle]
        pub extern "C" fn sidetrace_on_response(len: u32) -> u64 {
            $crate::__rt::on_response(len)
        }
        #[no_mangle]
        pub extern "C" fn sidetrace_on_span_end(len: u32) -> u64 {
            $crate::__rt::on_span_end(len)
        }
    };
}
