//! A small JSON reader for plugin configs (RFC 8259). Like Go's `json.Decoder.Decode`, [`parse`]
//! reads the first value and ignores what follows it.

use std::string::String;
use std::vec::Vec;

/// A JSON value. Objects keep their members in order, duplicates included.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Json {
    Null,
    Bool(bool),
    /// A number and its text (for integers beyond f64's precision, or to refuse fractions).
    Number(f64, String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// A short name of the value's type, for error messages: "string", "number", "object"...
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "bool",
            Json::Number(..) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }
}

/// Parses the first JSON value in `b`. Errors read "invalid character 'x' at byte N" or
/// "unexpected end of JSON input".
pub fn parse(b: &[u8]) -> Result<Json, String> {
    let mut p = Parser { b, i: 0, depth: 0 };
    p.value()
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    depth: u32,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn err(&self) -> String {
        match self.b.get(self.i) {
            None => "unexpected end of JSON input".into(),
            Some(c) => {
                let mut s = String::from("invalid character '");
                s.push(*c as char);
                s.push_str("' at byte ");
                s.push_str(&self.i.to_string());
                s
            }
        }
    }

    fn lit(&mut self, word: &[u8], v: Json) -> Result<Json, String> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            while self.i < self.b.len() && self.b[self.i] == word[0] {
                self.i += 1;
            }
            Err(self.err())
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        let c = match self.b.get(self.i) {
            Some(c) => *c,
            None => return Err(self.err()),
        };
        match c {
            b'n' => self.lit(b"null", Json::Null),
            b't' => self.lit(b"true", Json::Bool(true)),
            b'f' => self.lit(b"false", Json::Bool(false)),
            b'"' => Ok(Json::String(self.string()?)),
            b'-' | b'0'..=b'9' => self.number(),
            b'[' | b'{' => {
                self.depth += 1;
                if self.depth > 1000 {
                    return Err("exceeded max depth".into());
                }
                self.i += 1;
                let v = if c == b'[' { self.array() } else { self.object() };
                self.depth -= 1;
                v
            }
            _ => Err(self.err()),
        }
    }

    fn array(&mut self) -> Result<Json, String> {
        let mut v = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Json::Array(v));
        }
        loop {
            v.push(self.value()?);
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Json::Array(v));
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        let mut v = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Json::Object(v));
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return Err(self.err());
            }
            let k = self.string()?;
            self.ws();
            if self.b.get(self.i) != Some(&b':') {
                return Err(self.err());
            }
            self.i += 1;
            v.push((k, self.value()?));
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Json::Object(v));
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut n = 0;
        for _ in 0..4 {
            let d = match self.b.get(self.i) {
                Some(c) => (*c as char).to_digit(16),
                None => None,
            };
            match d {
                Some(d) => n = n * 16 + d,
                None => return Err(self.err()),
            }
            self.i += 1;
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // the opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = match self.b.get(self.i) {
                Some(c) => *c,
                None => return Err(self.err()),
            };
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                b'\\' => {
                    self.i += 1;
                    let e = match self.b.get(self.i) {
                        Some(e) => *e,
                        None => return Err(self.err()),
                    };
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut u = self.hex4()?;
                            if (0xd800..0xdc00).contains(&u) && self.b[self.i..].starts_with(b"\\u") {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                                } else {
                                    self.i = save;
                                }
                            }
                            char::from_u32(u).unwrap_or('\u{fffd}')
                        }
                        _ => {
                            self.i -= 1;
                            return Err(self.err());
                        }
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(self.err()),
                _ => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        let digits = |p: &mut Parser| {
            let s = p.i;
            while p.i < p.b.len() && p.b[p.i].is_ascii_digit() {
                p.i += 1;
            }
            p.i > s
        };
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        if self.b.get(self.i) == Some(&b'0') {
            self.i += 1;
        } else if !digits(self) {
            return Err(self.err());
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(self.err());
            }
        }
        if matches!(self.b.get(self.i), Some(b'e') | Some(b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+') | Some(b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return Err(self.err());
            }
        }
        let text = core::str::from_utf8(&self.b[start..self.i]).unwrap_or("");
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Json::Number(f, String::from(text))),
            _ => Err(String::from("number ") + text + " out of range"),
        }
    }
}

/// Formats a number as Go's `%v` does for the usual config values: integers without a
/// fraction ("2", "-1"), others with up to 9 decimals, trailing zeros trimmed ("0.25").
/// It avoids core's float formatting, which would add 20 KB to a module.
pub fn format_number(f: f64) -> String {
    let mut s = String::new();
    if f.is_nan() {
        return "NaN".into();
    }
    let mut x = f;
    if x < 0.0 {
        s.push('-');
        x = -x;
    }
    if x >= 1e18 {
        return s + "+Inf";
    }
    let int = x as u64;
    s.push_str(&int.to_string());
    let mut frac = ((x - int as f64) * 1e9 + 0.5) as u64;
    if frac >= 1_000_000_000 {
        frac = 999_999_999;
    }
    if frac > 0 {
        let mut d = frac.to_string();
        while d.len() < 9 {
            d.insert(0, '0');
        }
        s.push('.');
        s.push_str(d.trim_end_matches('0'));
    }
    s
}
