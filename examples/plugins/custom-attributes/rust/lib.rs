//! custom-attributes in Rust: copies request headers into span attributes and adds static
//! attributes to every request span. Behaves exactly as the Go version (../main.go); see
//! ../README.md.

use sidetrace::json::{self, Json};
use sidetrace::{Decision, Plugin, Value};

/// Go reads the config with `json.Decoder` (UseNumber, DisallowUnknownFields) into
///
///     struct { Headers map[string]string; Static map[string]any }
///
/// This reproduces its results and messages over the tree `sidetrace::json` reads.
struct Config {
    headers: Vec<(String, String)>, // header name -> attribute key, sorted by name
    statics: Vec<(String, Value)>,  // sorted by key
}

const BAD: &str = "custom-attributes: config: ";

/// Go keeps a static number beyond f64's range (1e999) as text and then sends an empty value
/// (its zero Value); sidetrace::json refuses such numbers. `mark_huge` replaces each of them,
/// outside strings, by this number, which the static map reads as that empty value.
const HUGE: &str = "-0.0e-000000000000000000000000000000000000000000000000000000000000000000000";

fn is_json_number(t: &[u8]) -> bool {
    let mut i = 0;
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < t.len() && t[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s
    };
    if t.first() == Some(&b'-') {
        i += 1;
    }
    if t.get(i) == Some(&b'0') {
        i += 1;
    } else if !digits(&mut i) {
        return false;
    }
    if t.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(t.get(i), Some(b'e') | Some(b'E')) {
        i += 1;
        if matches!(t.get(i), Some(b'+') | Some(b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == t.len()
}

fn mark_huge(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c == b'"' {
            let s = i;
            i += 1;
            while i < raw.len() && raw[i] != b'"' {
                i += if raw[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(raw.len());
            out.extend_from_slice(&raw[s..i]);
        } else if c == b'-' || c.is_ascii_digit() {
            let s = i;
            while i < raw.len() && matches!(raw[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                i += 1;
            }
            let t = &raw[s..i];
            let huge = is_json_number(t)
                && core::str::from_utf8(t)
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                    .map_or(false, |f| f.is_infinite());
            out.extend_from_slice(if huge { HUGE.as_bytes() } else { t });
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The message of Go's `json.Decoder` for a syntax error in the first value of `b` ("invalid
/// character 'x' after object key", "unexpected EOF"), or None if there is none (the SDK's
/// parser also refuses nesting deeper than 1000, Go's deeper than 10000).
fn syntax_error(b: &[u8]) -> Option<String> {
    let mut s = Scan { b, i: 0 };
    s.value().err()
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    /// The next byte, or "unexpected EOF".
    fn peek(&self) -> Result<u8, String> {
        self.b.get(self.i).copied().ok_or_else(|| String::from("unexpected EOF"))
    }

    fn ws(&mut self) -> Result<u8, String> {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
        self.peek()
    }

    fn err(&self, c: u8, context: &str) -> String {
        let q = match c {
            b'\'' => String::from("\\'"),
            b'"' => String::from("\""),
            c => {
                let q = quote(char::from(c).encode_utf8(&mut [0; 4]));
                String::from(&q[1..q.len() - 1])
            }
        };
        String::from("invalid character '") + &q + "' " + context
    }

    /// Reads a byte that `ok` accepts, else fails with context.
    fn want(&mut self, ok: impl Fn(u8) -> bool, context: &str) -> Result<u8, String> {
        let c = self.peek()?;
        if !ok(c) {
            return Err(self.err(c, context));
        }
        self.i += 1;
        Ok(c)
    }

    fn digits(&mut self) {
        while matches!(self.b.get(self.i), Some(b'0'..=b'9')) {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Result<(), String> {
        let c = self.ws()?;
        self.i += 1;
        match c {
            b'{' => {
                if self.ws()? == b'}' {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws()?;
                    self.want(|c| c == b'"', "looking for beginning of object key string")?;
                    self.string()?;
                    self.ws()?;
                    self.want(|c| c == b':', "after object key")?;
                    self.value()?;
                    self.ws()?;
                    if self.want(|c| c == b',' || c == b'}', "after object key:value pair")? == b'}' {
                        return Ok(());
                    }
                }
            }
            b'[' => {
                if self.ws()? == b']' {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.value()?;
                    self.ws()?;
                    if self.want(|c| c == b',' || c == b']', "after array element")? == b']' {
                        return Ok(());
                    }
                }
            }
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => {
                if c == b'-' {
                    if self.want(|c| c.is_ascii_digit(), "in numeric literal")? != b'0' {
                        self.digits();
                    }
                } else if c != b'0' {
                    self.digits();
                }
                // A number may end at the end of the input.
                if self.b.get(self.i) == Some(&b'.') {
                    self.i += 1;
                    self.want(|c| c.is_ascii_digit(), "after decimal point in numeric literal")?;
                    self.digits();
                }
                if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
                    self.i += 1;
                    if matches!(self.peek()?, b'+' | b'-') {
                        self.i += 1;
                    }
                    self.want(|c| c.is_ascii_digit(), "in exponent of numeric literal")?;
                    self.digits();
                }
                Ok(())
            }
            b't' | b'f' | b'n' => {
                let word: &str = match c {
                    b't' => "true",
                    b'f' => "false",
                    _ => "null",
                };
                for w in word.bytes().skip(1) {
                    let context = String::from("in literal ") + word + " (expecting '" + char::from(w).encode_utf8(&mut [0; 4]) + "')";
                    self.want(|c| c == w, &context)?;
                }
                Ok(())
            }
            c => Err(self.err(c, "looking for beginning of value")),
        }
    }

    /// A string after its opening quote.
    fn string(&mut self) -> Result<(), String> {
        loop {
            match self.want(|c| c >= 0x20, "in string literal")? {
                b'"' => return Ok(()),
                b'\\' => {
                    let e = self.want(|c| b"\"\\/bfnrtu".contains(&c), "in string escape code")?;
                    if e == b'u' {
                        for _ in 0..4 {
                            self.want(|c| c.is_ascii_hexdigit(), "in \\u hexadecimal character escape")?;
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Go matches a key to a field name exactly or, failing that, under Unicode simple case
/// folding: for "headers" and "static", ASCII case, and ſ (U+017F) for s.
fn field(k: &str) -> String {
    k.chars()
        .map(|c| match c {
            'ſ' => 'S',
            '\u{212a}' => 'K',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

fn cannot(v: &Json, into: &str) -> String {
    String::from(BAD) + "json: cannot unmarshal " + v.type_name() + " into " + into
}

fn put<T>(list: &mut Vec<(String, T)>, k: String, v: T) {
    match list.iter_mut().find(|(n, _)| *n == k) {
        Some(e) => e.1 = v,
        None => list.push((k, v)),
    }
}

fn parse(raw: &[u8]) -> Result<Config, String> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut statics: Vec<(String, Option<Value>)> = Vec::new(); // None: not a string, number or boolean
    if !raw.is_empty() {
        if raw.iter().all(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')) {
            return Err(String::from(BAD) + "EOF");
        }
        let v = json::parse(&mark_huge(raw)).map_err(|e| String::from(BAD) + &syntax_error(raw).unwrap_or(e))?;
        match v {
            Json::Null => {}
            Json::Object(members) => {
                for (k, v) in members {
                    match (field(&k).as_str(), v) {
                        ("HEADERS", Json::Null) => headers.clear(),
                        ("HEADERS", Json::Object(hs)) => {
                            for (h, v) in hs {
                                match v {
                                    Json::String(s) => put(&mut headers, h, s),
                                    Json::Null => put(&mut headers, h, String::new()),
                                    v => return Err(cannot(&v, "Go struct field config.headers of type string")),
                                }
                            }
                        }
                        ("HEADERS", v) => return Err(cannot(&v, "Go struct field config.headers of type map[string]string")),
                        ("STATIC", Json::Null) => statics.clear(),
                        ("STATIC", Json::Object(st)) => {
                            for (k, v) in st {
                                let v = match v {
                                    Json::String(s) => Some(Value::String(s)),
                                    Json::Bool(b) => Some(Value::Bool(b)),
                                    Json::Number(_, t) if t == HUGE => Some(Value::Other(String::new())),
                                    Json::Number(f, t) => Some(match t.parse::<i64>() {
                                        Ok(n) => Value::Int64(n),
                                        Err(_) => Value::Float64(f),
                                    }),
                                    _ => None,
                                };
                                put(&mut statics, k, v);
                            }
                        }
                        ("STATIC", v) => return Err(cannot(&v, "Go struct field config.static of type map[string]interface {}")),
                        _ => return Err(String::from(BAD) + "json: unknown field \"" + &k + "\""),
                    }
                }
            }
            v => return Err(cannot(&v, "Go value of type main.config")),
        }
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    for (h, k) in &headers {
        if h.is_empty() || k.is_empty() {
            return Err(String::from(BAD) + "headers: empty header or key in " + &quote(h) + ": " + &quote(k));
        }
    }
    if statics.iter().any(|(k, _)| k.is_empty()) {
        return Err(String::from(BAD) + "static: empty key");
    }
    statics.sort_by(|a, b| a.0.cmp(&b.0));
    let mut st = Vec::new();
    for (k, v) in statics {
        match v {
            Some(v) => st.push((k, v)),
            None => return Err(String::from(BAD) + "static." + &k + ": want a string, number or boolean"),
        }
    }
    Ok(Config { headers, statics: st })
}

/// Go's %q (strconv.Quote): `"` and `\` escaped, control characters as \n, \t... or \xNN, the
/// C1 controls and the usual invisible format characters as \uNNNN, other text as is.
fn quote(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hex = |q: &mut String, c: char, n: u32| {
        for i in (0..n).rev() {
            q.push(HEX[((c as usize) >> (4 * i)) & 15] as char);
        }
    };
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\u{7}' => q.push_str("\\a"),
            '\u{8}' => q.push_str("\\b"),
            '\u{c}' => q.push_str("\\f"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            '\u{b}' => q.push_str("\\v"),
            '\0'..='\u{1f}' | '\u{7f}' => {
                q.push_str("\\x");
                hex(&mut q, c, 2);
            }
            '\u{80}'..='\u{a0}' | '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}' => {
                q.push_str("\\u");
                hex(&mut q, c, 4);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn init(p: &mut Plugin) -> Result<(), String> {
    let c = parse(p.config())?;
    let names: Vec<&str> = c.headers.iter().map(|(h, _)| h.as_str()).collect();
    p.request_headers(&names);
    p.on_request(move |r| {
        for (h, k) in &c.headers {
            if let Some(v) = r.header(h).filter(|v| !v.is_empty()) {
                r.set_attribute(k, v);
            }
        }
        for (k, v) in &c.statics {
            r.set_attribute(k, v.clone());
        }
        Decision::NoOpinion
    });
    Ok(())
}

sidetrace::plugin!(init);
