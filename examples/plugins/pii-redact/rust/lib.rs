//! pii-redact in Rust: redacts personal data and secrets from finished spans before any exporter
//! sees them. Behaves exactly as the Go version (../redact.go, ../main.go); see ../README.md.
//! The default detectors are hand-written scanners with the semantics of the Go version's
//! regular expressions; patterns from the config run on the SDK's RE2-compatible engine.

use std::borrow::Cow;

use sidetrace::json::{self, Json};
use sidetrace::regex::Regex;
use sidetrace::{Plugin, Span, Value};

/// Attribute keys whose values are header values, always redacted.
const SECRET_HEADERS: [&str; 6] = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"];

/// Attributes holding a URL or a query string, whose secret-like query parameters are redacted.
const URL_KEYS: [&str; 5] = ["url.query", "url.full", "url.original", "http.url", "http.target"];

const DEFAULT_MAX_VALUE_BYTES: i64 = 16384;
const TRUNCATED: &str = "[TRUNCATED]";

struct Redactor {
    keys: Vec<(String, &'static str)>, // attribute key -> marker kind ("" for URL attributes), in key_order
    patterns: Vec<(String, Regex)>,
    typed: bool,
    max_bytes: i64, // < 0: no limit
}

const PREFIX: &str = "pii-redact: config: ";

fn bad(msg: &str) -> String {
    String::from(PREFIX) + msg
}

fn parse(raw: &[u8]) -> Result<Redactor, String> {
    let mut keys: Vec<String> = Vec::new();
    let mut patterns: Vec<(String, String)> = Vec::new();
    let mut typed = true;
    let mut max_bytes: i64 = 0;
    if raw.iter().any(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r')) {
        match json::parse(raw).map_err(|e| bad(&e))? {
            Json::Null => {}
            Json::Object(members) => {
                for (k, v) in members {
                    let field = k.to_ascii_lowercase();
                    if !matches!(field.as_str(), "keys" | "patterns" | "typed" | "max_value_bytes") {
                        return Err(bad(&(String::from("json: unknown field \"") + &k + "\"")));
                    }
                    let mismatch = |v: &Json| bad(&(String::from("json: cannot unmarshal ") + v.type_name() + " into field " + &k));
                    match (field.as_str(), v) {
                        (_, Json::Null) => {}
                        ("keys", Json::Array(items)) => {
                            keys.clear();
                            for it in items {
                                match it {
                                    Json::String(s) => keys.push(s),
                                    Json::Null => keys.push(String::new()),
                                    other => return Err(mismatch(&other)),
                                }
                            }
                        }
                        ("patterns", Json::Object(ps)) => {
                            for (name, p) in ps {
                                let p = match p {
                                    Json::String(s) => s,
                                    Json::Null => String::new(),
                                    other => return Err(mismatch(&other)),
                                };
                                match patterns.iter_mut().find(|(n, _)| *n == name) {
                                    Some(e) => e.1 = p,
                                    None => patterns.push((name, p)),
                                }
                            }
                        }
                        ("typed", Json::Bool(b)) => typed = b,
                        ("max_value_bytes", Json::Number(_, text)) => {
                            max_bytes = text.parse::<i64>().map_err(|_| bad(&(String::from("json: cannot unmarshal number ") + &text + " into field max_value_bytes of type int")))?;
                        }
                        (_, other) => return Err(mismatch(&other)),
                    }
                }
            }
            other => return Err(bad(&(String::from("json: cannot unmarshal ") + other.type_name() + " into config"))),
        }
    }
    if max_bytes == 0 {
        max_bytes = DEFAULT_MAX_VALUE_BYTES;
    }
    if max_bytes < -1 {
        return Err(bad(&(String::from("max_value_bytes: got ") + &max_bytes.to_string() + "; want -1 (no limit) or more than 0")));
    }
    let mut r = Redactor { keys: Vec::new(), patterns: Vec::new(), typed, max_bytes };
    for h in SECRET_HEADERS {
        r.set_key(String::from("http.request.header.") + h, "header");
        r.set_key(String::from("http.response.header.") + h, "header");
    }
    for k in URL_KEYS {
        r.set_key(String::from(k), "");
    }
    for k in keys {
        if k.is_empty() {
            return Err(bad("keys: empty key"));
        }
        r.set_key(k, "key");
    }
    r.keys.sort_by(|a, b| key_order(&a.0, &b.0));
    patterns.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, p) in patterns {
        let re = Regex::new(&p).map_err(|e| bad(&(String::from("patterns.") + &name + ": " + &e)))?;
        r.patterns.push((name, re));
    }
    Ok(r)
}

impl Redactor {
    fn set_key(&mut self, key: String, kind: &'static str) {
        match self.keys.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = kind,
            None => self.keys.push((key, kind)),
        }
    }

    fn marker(&self, kind: &str) -> String {
        if self.typed {
            String::from("[REDACTED:") + kind + "]"
        } else {
            String::from("[REDACTED]")
        }
    }

    /// The redacted value of attribute key, if it changed.
    fn value(&self, key: &str, v: &Value) -> Option<Value> {
        let kind = self.keys.binary_search_by(|(k, _)| key_order(k, key)).ok().map(|i| self.keys[i].1);
        if let Some(kind) = kind.filter(|k| !k.is_empty()) {
            return Some(match v {
                Value::StringSlice(ss) => Value::StringSlice(ss.iter().map(|_| self.marker(kind)).collect()),
                _ => Value::String(self.marker(kind)),
            });
        }
        let is_url = kind.is_some();
        match v {
            Value::String(s) | Value::Other(s) => self.text(is_url, s).map(Value::String),
            Value::StringSlice(ss) => {
                let mut out: Option<Vec<String>> = None;
                for (i, e) in ss.iter().enumerate() {
                    let changed = self.text(is_url, e);
                    if changed.is_some() && out.is_none() {
                        out = Some(ss.clone());
                    }
                    if let (Some(o), Some(c)) = (out.as_mut(), changed) {
                        o[i] = c;
                    }
                }
                out.map(Value::StringSlice)
            }
            _ => None,
        }
    }

    /// Redacts one string value; is_url: the value is a URL or query string. The value is copied only
    /// once a detector changes it: most values have nothing to redact.
    fn text(&self, is_url: bool, orig: &str) -> Option<String> {
        let mut s = Cow::Borrowed(orig);
        if self.max_bytes > 0 && s.len() as i64 > self.max_bytes {
            let mut cut = self.max_bytes as usize;
            while cut > 0 && !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s = Cow::Owned(String::from(&orig[..cut]) + TRUNCATED);
        }
        if is_url && s.contains('=') {
            if let Some(q) = self.query(&s) {
                s = Cow::Owned(q);
            }
        }
        // One pass decides which detectors can match at all.
        let (mut digits, mut at, mut dash, mut dot, mut space, mut b, mut j) = (0, false, false, false, false, false, false);
        for c in s.bytes() {
            match c {
                b'0'..=b'9' => digits += 1,
                b'@' => at = true,
                b'-' => dash = true,
                b'.' => dot = true,
                b' ' | b'\t' => space = true,
                b'b' | b'B' => b = true,
                b'J' => j = true,
                _ => {}
            }
        }
        if dot && j && s.contains("eyJ") {
            if let Some(c) = self.jwts(&s) {
                s = Cow::Owned(c);
            }
        }
        if b && space && contains_fold(&s, "bearer") {
            if let Some(c) = self.bearers(&s) {
                s = Cow::Owned(c);
            }
        }
        if at {
            if let Some(c) = self.emails(&s) {
                s = Cow::Owned(c);
            }
        }
        if digits >= 13 {
            if let Some(c) = self.cards(&s) {
                s = Cow::Owned(c);
            }
        }
        if dash && digits >= 9 {
            if let Some(c) = self.ssns(&s) {
                s = Cow::Owned(c);
            }
        }
        for (name, re) in &self.patterns {
            s = Cow::Owned(re.replace_all(&s, &self.marker(name)));
        }
        match s {
            Cow::Owned(s) if s != orig => Some(s),
            _ => None,
        }
    }

    /// JSON Web Tokens: \beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*
    fn jwts(&self, s: &str) -> Option<String> {
        let b = s.as_bytes();
        let run = |mut i: usize| {
            while i < b.len() && is_jwt(b[i]) {
                i += 1;
            }
            i
        };
        replace_scan(s, &self.marker("jwt"), |i| {
            if !b[i..].starts_with(b"eyJ") || (i > 0 && is_word(b[i - 1])) {
                return None;
            }
            let e1 = run(i + 3);
            if e1 - (i + 3) < 4 || b.get(e1) != Some(&b'.') {
                return None;
            }
            let e2 = run(e1 + 1);
            if e2 - (e1 + 1) < 4 || b.get(e2) != Some(&b'.') {
                return None;
            }
            Some((run(e2 + 1), true))
        })
    }

    /// Bearer tokens: (?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=* becomes "$1 [REDACTED:bearer]".
    fn bearers(&self, s: &str) -> Option<String> {
        let b = s.as_bytes();
        let marker = self.marker("bearer");
        let mut out = String::new();
        let mut last = 0;
        let mut i = 0;
        while i < b.len() {
            if let Some(end) = bearer_at(b, i) {
                out.push_str(&s[last..i]);
                out.push_str(&s[i..i + 6]);
                out.push(' ');
                out.push_str(&marker);
                last = end;
                i = end;
                continue;
            }
            i += 1;
        }
        if last == 0 {
            return None;
        }
        out.push_str(&s[last..]);
        Some(out)
    }

    /// US social security numbers: \b(\d{3})-(\d{2})-(\d{4})\b, unless never issued.
    fn ssns(&self, s: &str) -> Option<String> {
        let b = s.as_bytes();
        replace_scan(s, &self.marker("ssn"), |i| {
            if i > 0 && is_word(b[i - 1]) {
                return None;
            }
            let shape = b"ddd-dd-dddd";
            if b.len() - i < shape.len() {
                return None;
            }
            for (k, c) in shape.iter().enumerate() {
                let x = b[i + k];
                if (*c == b'd' && !x.is_ascii_digit()) || (*c == b'-' && x != b'-') {
                    return None;
                }
            }
            let end = i + shape.len();
            if end < b.len() && is_word(b[end]) {
                return None;
            }
            Some((end, valid_ssn(&b[i..end])))
        })
    }

    /// Email addresses, as the Go version's scanner.
    fn emails(&self, s: &str) -> Option<String> {
        let b = s.as_bytes();
        let mut out = String::new();
        let mut last = 0;
        let mut at = s.find('@');
        while let Some(i) = at {
            let mut start = i;
            while start > last && is_local(b[start - 1]) {
                start -= 1;
            }
            let mut end = i + 1;
            while end < b.len() && is_domain(b[end]) {
                end += 1;
            }
            while end > i + 1 && (b[end - 1] == b'.' || b[end - 1] == b'-') {
                end -= 1;
            }
            if start < i && valid_domain(&b[i + 1..end]) {
                out.push_str(&s[last..start]);
                out.push_str(&self.marker("email"));
                last = end;
            }
            at = s[i + 1..].find('@').map(|n| i + 1 + n);
        }
        if last == 0 {
            return None;
        }
        out.push_str(&s[last..]);
        Some(out)
    }

    /// Runs of 13 to 19 digits, optionally grouped by single spaces or dashes, passing Luhn.
    fn cards(&self, s: &str) -> Option<String> {
        let b = s.as_bytes();
        let mut out = String::new();
        let mut last = 0;
        let mut i = 0;
        while i < b.len() {
            if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
                i += 1;
                continue;
            }
            let (mut j, mut n, mut end) = (i, 0, i);
            while j < b.len() {
                if b[j].is_ascii_digit() {
                    n += 1;
                    j += 1;
                    end = j;
                    continue;
                }
                if (b[j] == b' ' || b[j] == b'-') && j + 1 < b.len() && b[j + 1].is_ascii_digit() && n < 19 {
                    j += 1;
                    continue;
                }
                break;
            }
            if (13..=19).contains(&n) && (end == b.len() || !b[end].is_ascii_alphanumeric()) && luhn(&b[i..end]) {
                out.push_str(&s[last..i]);
                out.push_str(&self.marker("card"));
                last = end;
            }
            i = end.max(i + 1);
        }
        if last == 0 {
            return None;
        }
        out.push_str(&s[last..]);
        Some(out)
    }

    /// Values of secret-like query parameters in a URL or query string; None if there are none.
    fn query(&self, s: &str) -> Option<String> {
        let (prefix, mut q) = match s.find('?') {
            Some(i) => (&s[..i + 1], &s[i + 1..]),
            None if s.contains("://") || s.starts_with('/') => return None,
            None => ("", s),
        };
        let mut suffix = "";
        if let Some(i) = q.find('#') {
            suffix = &q[i..];
            q = &q[..i];
        }
        let secret = |p: &str| matches!(p.split_once('='), Some((name, _)) if secret_param(name));
        if !q.split('&').any(secret) {
            return None;
        }
        let parts: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((name, _)) if secret_param(name) => String::from(name) + "=" + &self.marker("param"),
                _ => String::from(p),
            })
            .collect();
        Some(String::from(prefix) + &parts.join("&") + suffix)
    }
}

/// The order of Redactor.keys: by length, then bytes, so that a lookup compares the bytes of keys
/// of the same length only.
fn key_order(a: &str, b: &str) -> core::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// replace_scan replaces non-overlapping matches found left to right: at(i) says whether a
/// match starts at byte i, where it ends and whether to replace it with marker. None: nothing replaced.
fn replace_scan(s: &str, marker: &str, mut at: impl FnMut(usize) -> Option<(usize, bool)>) -> Option<String> {
    let mut out = String::new();
    let mut last = 0;
    let mut i = 0;
    let mut any = false;
    while i < s.len() {
        if let Some((end, replace)) = at(i) {
            if replace {
                out.push_str(&s[last..i]);
                out.push_str(marker);
                last = end;
                any = true;
            }
            i = end;
            continue;
        }
        i += 1;
    }
    if !any {
        return None;
    }
    out.push_str(&s[last..]);
    Some(out)
}

fn bearer_at(b: &[u8], i: usize) -> Option<usize> {
    if b.len() - i < 6 || !b[i..i + 6].eq_ignore_ascii_case(b"bearer") || (i > 0 && is_word(b[i - 1])) {
        return None;
    }
    let mut j = i + 6;
    let ws = j;
    while j < b.len() && matches!(b[j], b'\t' | b'\n' | b'\x0c' | b'\r' | b' ') {
        j += 1;
    }
    if j == ws {
        return None;
    }
    let tok = j;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'-' | b'.' | b'_' | b'~' | b'+' | b'/')) {
        j += 1;
    }
    if j == tok {
        return None;
    }
    while j < b.len() && b[j] == b'=' {
        j += 1;
    }
    Some(j)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_jwt(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

/// At least two non-empty labels, the last of two letters or more.
fn valid_domain(d: &[u8]) -> bool {
    let dot = match d.iter().rposition(|c| *c == b'.') {
        Some(i) if i > 0 => i,
        _ => return false,
    };
    if d.len() - dot - 1 < 2 || d.windows(2).any(|w| w == b"..") || d[0] == b'.' || d[0] == b'-' {
        return false;
    }
    d[dot + 1..].iter().all(|c| c.is_ascii_alphabetic())
}

/// Rejects numbers the SSA never issues (area 000, 666, 9xx; group 00; serial 0000).
fn valid_ssn(m: &[u8]) -> bool {
    let (area, group, serial) = (&m[0..3], &m[4..6], &m[7..11]);
    area != b"000" && area != b"666" && area[0] != b'9' && group != b"00" && serial != b"0000"
}

fn luhn(s: &[u8]) -> bool {
    let (mut sum, mut double) = (0, false);
    for c in s.iter().rev().filter(|c| c.is_ascii_digit()) {
        let mut d = (c - b'0') as u32;
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum % 10 == 0
}

/// Whether a query parameter name looks like a secret's, compared in lower case. An ASCII name is
/// compared without lowering a copy; any other goes through to_lowercase, where for instance the
/// Kelvin sign becomes a 'k', as in Go's strings.ToLower.
fn secret_param(name: &str) -> bool {
    const WORDS: [&str; 5] = ["password", "passwd", "pwd", "secret", "token"];
    if name.is_ascii() {
        let b = name.as_bytes();
        return WORDS.iter().any(|w| contains_fold(name, w)) || (b.len() >= 3 && b[b.len() - 3..].eq_ignore_ascii_case(b"key"));
    }
    let n = name.to_lowercase();
    WORDS.iter().any(|w| n.contains(w)) || n.ends_with("key")
}

/// Whether s contains the lower-case ASCII word w in any case.
fn contains_fold(s: &str, w: &str) -> bool {
    s.as_bytes().windows(w.len()).any(|x| x.eq_ignore_ascii_case(w.as_bytes()))
}

fn redact(r: &Redactor, s: &mut Span) {
    let edits: Vec<(String, Value)> = s.attributes().iter().filter_map(|a| r.value(&a.key, &a.value).map(|v| (a.key.clone(), v))).collect();
    for (k, v) in edits {
        s.set_attribute(&k, v);
    }
    let mut edits: Vec<(usize, String, Value)> = Vec::new();
    for (i, ev) in s.events().iter().enumerate() {
        for a in &ev.attributes {
            if let Some(v) = r.value(&a.key, &a.value) {
                edits.push((i, a.key.clone(), v));
            }
        }
    }
    for (i, k, v) in edits {
        s.set_event_attribute(i, &k, v);
    }
}

fn init(p: &mut Plugin) -> Result<(), String> {
    let r = parse(p.config())?;
    p.on_span_end(move |s| redact(&r, s));
    Ok(())
}

sidetrace::plugin!(init);
