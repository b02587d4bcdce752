//! A small regular-expression engine with Go's (RE2) syntax and semantics, for plugins that take
//! patterns from their config: leftmost-first matching by a Pike VM, linear in the input (no
//! backtracking blow-up), on UTF-8 text.
//!
//! Supported: literals and escapes (`\.` `\t` `\n` `\x41` `\x{263a}`), `.`, classes `[a-z]`
//! `[^...]` with `\d \w \s` and `[:alpha:]`-style names, `\d \D \w \W \s \S`, anchors `^ $ \A \z`,
//! `\b \B`, groups `(...)` `(?:...)` `(?P<n>...)` `(?<n>...)`, flags `(?i) (?m) (?s) (?U)` and
//! `(?flags:...)`, alternation, and `* + ? {n} {n,} {n,m}` (lazy with `?`; counts up to 1000).
//! Not supported (refused with an error): Unicode classes `\p{..}`, `\Q..\E`, octal escapes.
//! Case folding covers ASCII and the simple Unicode case mappings.

use std::string::String;
use std::vec::Vec;

/// A compiled regular expression.
#[derive(Clone, Debug)]
pub struct Regex {
    prog: Vec<Inst>,
    classes: Vec<Vec<(char, char)>>,
}

#[derive(Clone, Copy, Debug)]
enum Inst {
    Class(u32), // index into classes
    Split(u32, u32),
    Jmp(u32),
    Assert(Look),
    Match,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Look {
    BeginText,
    EndText,
    BeginLine,
    EndLine,
    WordBoundary,
    NotWordBoundary,
}

#[derive(Clone, Debug)]
enum Node {
    Class(Vec<(char, char)>),
    Look(Look),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat { node: Box<Node>, min: u32, max: Option<u32>, greedy: bool },
}

#[derive(Clone, Copy)]
struct Flags {
    i: bool,
    m: bool,
    s: bool,
    u: bool,
}

const MAX_REPEAT: u32 = 1000;
const MAX_PROG: usize = 100_000;

impl Regex {
    /// Compiles `pattern`; errors read like Go's: "missing closing ): `(`".
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let mut p = Parser { s: pattern, chars: pattern.char_indices().collect(), i: 0, last_was_repeat: false };
        let node = p.alt(Flags { i: false, m: false, s: false, u: false }, 0)?;
        if p.i < p.chars.len() {
            return Err(p.error("unexpected )", pattern));
        }
        let mut c = Compiler { prog: Vec::new(), classes: Vec::new() };
        c.node(&node)?;
        c.prog.push(Inst::Match);
        Ok(Regex { prog: c.prog, classes: c.classes })
    }

    /// The leftmost-first match in `s` starting the search at byte `from` (assertions see the
    /// text before it): its start and end.
    pub fn find_at(&self, s: &str, from: usize) -> Option<(usize, usize)> {
        let n = self.prog.len();
        let mut clist = Threads::new(n);
        let mut nlist = Threads::new(n);
        let mut matched: Option<(usize, usize)> = None;
        let mut pos = from;
        loop {
            let prev = prev_char(s, pos);
            let cur = next_char(s, pos);
            if matched.is_none() {
                self.add(&mut clist, 0, pos, pos, prev, cur.map(|c| c.0));
            }
            if clist.len == 0 && (matched.is_some() || cur.is_none()) {
                break;
            }
            let (c, w) = match cur {
                Some(x) => (Some(x.0), x.1),
                None => (None, 0),
            };
            let next_pos = pos + w;
            let after = if c.is_some() { next_char(s, next_pos).map(|x| x.0) } else { None };
            let mut k = 0;
            while k < clist.len {
                let (pc, start) = clist.dense[k];
                k += 1;
                match self.prog[pc as usize] {
                    Inst::Match => {
                        matched = Some((start, pos));
                        break; // lower-priority threads lose
                    }
                    Inst::Class(ci) => {
                        if let Some(ch) = c {
                            if in_class(&self.classes[ci as usize], ch) {
                                self.add(&mut nlist, pc + 1, start, next_pos, c, after);
                            }
                        }
                    }
                    _ => {}
                }
            }
            core::mem::swap(&mut clist, &mut nlist);
            nlist.clear();
            if c.is_none() {
                break;
            }
            pos = next_pos;
        }
        matched
    }

    /// Whether `s` contains a match.
    pub fn is_match(&self, s: &str) -> bool {
        self.find_at(s, 0).is_some()
    }

    /// Replaces every match with `f(match)`, as Go's ReplaceAllStringFunc (an empty match right
    /// after a match is not replaced; the search always advances at least one character).
    pub fn replace_all_with(&self, s: &str, mut f: impl FnMut(&str) -> String) -> String {
        let mut out = String::new();
        let mut last = 0;
        let mut search = 0;
        let mut any = false;
        while search <= s.len() {
            let (a0, a1) = match self.find_at(s, search) {
                Some(m) => m,
                None => break,
            };
            out.push_str(&s[last..a0]);
            if a1 > last || a0 == 0 {
                out.push_str(&f(&s[a0..a1]));
                any = true;
            }
            last = a1;
            let width = next_char(s, search).map(|c| c.1).unwrap_or(0);
            if search + width > a1 {
                search += width;
            } else if search + 1 > a1 {
                search += 1;
            } else {
                search = a1;
            }
        }
        if !any && last == 0 {
            return String::from(s);
        }
        out.push_str(&s[last..]);
        out
    }

    /// Replaces every match with `with`, literally (Go's ReplaceAllLiteralString).
    pub fn replace_all(&self, s: &str, with: &str) -> String {
        self.replace_all_with(s, |_| String::from(with))
    }

    fn add(&self, l: &mut Threads, pc: u32, start: usize, pos: usize, prev: Option<char>, cur: Option<char>) {
        // An explicit stack keeps priority order without recursion.
        let mut stack = core::mem::take(&mut l.stack);
        stack.push(pc);
        while let Some(pc) = stack.pop() {
            if l.contains(pc) {
                continue;
            }
            l.mark(pc);
            match self.prog[pc as usize] {
                Inst::Jmp(x) => stack.push(x),
                Inst::Split(x, y) => {
                    stack.push(y);
                    stack.push(x);
                }
                Inst::Assert(look) => {
                    if holds(look, prev, cur, pos) {
                        stack.push(pc + 1);
                    }
                }
                _ => l.push(pc, start),
            }
        }
        l.stack = stack;
    }
}

fn holds(look: Look, prev: Option<char>, cur: Option<char>, _pos: usize) -> bool {
    match look {
        Look::BeginText => prev.is_none(),
        Look::EndText => cur.is_none(),
        Look::BeginLine => prev.is_none() || prev == Some('\n'),
        Look::EndLine => cur.is_none() || cur == Some('\n'),
        Look::WordBoundary => is_word(prev) != is_word(cur),
        Look::NotWordBoundary => is_word(prev) == is_word(cur),
    }
}

fn is_word(c: Option<char>) -> bool {
    matches!(c, Some(c) if c.is_ascii_alphanumeric() || c == '_')
}

/// The character at byte `pos` and its width; invalid UTF-8 cannot occur in a &str.
fn next_char(s: &str, pos: usize) -> Option<(char, usize)> {
    s.get(pos..)?.chars().next().map(|c| (c, c.len_utf8()))
}

fn prev_char(s: &str, pos: usize) -> Option<char> {
    s.get(..pos)?.chars().next_back()
}

fn in_class(ranges: &[(char, char)], c: char) -> bool {
    // ranges are sorted and disjoint
    let (mut lo, mut hi) = (0, ranges.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        let (a, b) = ranges[mid];
        if c < a {
            hi = mid;
        } else if c > b {
            lo = mid + 1;
        } else {
            return true;
        }
    }
    false
}

/// A sparse set of threads (program counter, match start), in priority order.
struct Threads {
    sparse: Vec<u32>,
    dense: Vec<(u32, usize)>,
    marks: Vec<u32>, // pcs visited in this step, including non-thread instructions
    len: usize,
    stack: Vec<u32>,
}

impl Threads {
    fn new(n: usize) -> Threads {
        Threads { sparse: vec![u32::MAX; n], dense: Vec::with_capacity(n), marks: Vec::with_capacity(n), len: 0, stack: Vec::new() }
    }
    fn contains(&self, pc: u32) -> bool {
        let i = self.sparse[pc as usize];
        (i as usize) < self.marks.len() && self.marks[i as usize] == pc
    }
    fn mark(&mut self, pc: u32) {
        self.sparse[pc as usize] = self.marks.len() as u32;
        self.marks.push(pc);
    }
    fn push(&mut self, pc: u32, start: usize) {
        self.dense.push((pc, start));
        self.len += 1;
    }
    fn clear(&mut self) {
        self.dense.clear();
        self.marks.clear();
        self.len = 0;
    }
}

// ---------------------------------------------------------------------------
// Parsing

struct Parser<'a> {
    s: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
    last_was_repeat: bool,
}

fn norm(mut r: Vec<(char, char)>) -> Vec<(char, char)> {
    r.sort();
    let mut out: Vec<(char, char)> = Vec::new();
    for (a, b) in r {
        if let Some(last) = out.last_mut() {
            if (a as u32) <= (last.1 as u32).saturating_add(1) {
                if b > last.1 {
                    last.1 = b;
                }
                continue;
            }
        }
        out.push((a, b));
    }
    out
}

fn negate(r: &[(char, char)]) -> Vec<(char, char)> {
    let mut out = Vec::new();
    let mut next: u32 = 0;
    for &(a, b) in r {
        if (a as u32) > next {
            push_range(&mut out, next, a as u32 - 1);
        }
        next = b as u32 + 1;
    }
    if next <= 0x10ffff {
        push_range(&mut out, next, 0x10ffff);
    }
    out
}

/// Pushes [a, b] without the surrogates, which are not chars.
fn push_range(out: &mut Vec<(char, char)>, a: u32, b: u32) {
    let (lo, hi) = (0xd800, 0xdfff);
    if b < lo || a > hi {
        out.push((char::from_u32(a).unwrap(), char::from_u32(b).unwrap()));
        return;
    }
    if a < lo {
        out.push((char::from_u32(a).unwrap(), char::from_u32(lo - 1).unwrap()));
    }
    if b > hi {
        out.push((char::from_u32(hi + 1).unwrap(), char::from_u32(b).unwrap()));
    }
}

/// The simple case variants of c (c itself included).
fn fold(c: char) -> Vec<char> {
    let mut v = vec![c];
    let mut add = |x: char| {
        if !v.contains(&x) {
            v.push(x)
        }
    };
    let mut l = c.to_lowercase();
    if let (Some(x), None) = (l.next(), l.next()) {
        add(x);
        let mut u = x.to_uppercase();
        if let (Some(y), None) = (u.next(), u.next()) {
            add(y);
        }
    }
    let mut u = c.to_uppercase();
    if let (Some(x), None) = (u.next(), u.next()) {
        add(x);
        let mut l = x.to_lowercase();
        if let (Some(y), None) = (l.next(), l.next()) {
            add(y);
        }
    }
    match c {
        'k' | 'K' | '\u{212a}' => {
            add('k');
            add('K');
            add('\u{212a}')
        }
        's' | 'S' | '\u{17f}' => {
            add('s');
            add('S');
            add('\u{17f}')
        }
        _ => {}
    }
    v
}

fn fold_ranges(r: &[(char, char)]) -> Vec<(char, char)> {
    let mut out: Vec<(char, char)> = r.to_vec();
    for &(a, b) in r {
        // Letters with case live below U+1F000; cap the walk for wide ranges.
        let (a, b) = (a as u32, (b as u32).min(0x1ffff));
        if b.saturating_sub(a) > 0x3000 {
            continue; // a range this wide already holds both cases of what it covers, in practice
        }
        for u in a..=b {
            if let Some(c) = char::from_u32(u) {
                for f in fold(c) {
                    out.push((f, f));
                }
            }
        }
    }
    norm(out)
}

fn class_of(name: char) -> Option<Vec<(char, char)>> {
    Some(match name {
        'd' => vec![('0', '9')],
        'D' => negate(&[('0', '9')]),
        'w' => norm(vec![('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')]),
        'W' => negate(&norm(vec![('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')])),
        's' => norm(vec![('\t', '\n'), ('\u{c}', '\r'), (' ', ' ')]),
        'S' => negate(&norm(vec![('\t', '\n'), ('\u{c}', '\r'), (' ', ' ')])),
        _ => return None,
    })
}

fn posix(name: &str) -> Option<Vec<(char, char)>> {
    Some(norm(match name {
        "alnum" => vec![('0', '9'), ('A', 'Z'), ('a', 'z')],
        "alpha" => vec![('A', 'Z'), ('a', 'z')],
        "ascii" => vec![('\0', '\u{7f}')],
        "blank" => vec![('\t', '\t'), (' ', ' ')],
        "cntrl" => vec![('\0', '\u{1f}'), ('\u{7f}', '\u{7f}')],
        "digit" => vec![('0', '9')],
        "graph" => vec![('!', '~')],
        "lower" => vec![('a', 'z')],
        "print" => vec![(' ', '~')],
        "punct" => vec![('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        "space" => vec![('\t', '\r'), (' ', ' ')],
        "upper" => vec![('A', 'Z')],
        "word" => vec![('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')],
        "xdigit" => vec![('0', '9'), ('A', 'F'), ('a', 'f')],
        _ => return None,
    }))
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).map(|c| c.1)
    }

    fn rest(&self) -> &'a str {
        match self.chars.get(self.i) {
            Some((off, _)) => &self.s[*off..],
            None => "",
        }
    }

    fn error(&self, what: &str, arg: &str) -> String {
        String::from("error parsing regexp: ") + what + ": `" + arg + "`"
    }

    fn alt(&mut self, mut flags: Flags, depth: u32) -> Result<Node, String> {
        if depth > 1000 {
            return Err(self.error("expression nests too deeply", self.s));
        }
        let mut branches = Vec::new();
        let mut items: Vec<Node> = Vec::new();
        loop {
            let c = match self.peek() {
                None => break,
                Some(c) => c,
            };
            let was_repeat = self.last_was_repeat;
            self.last_was_repeat = false;
            match c {
                '|' => {
                    self.i += 1;
                    branches.push(Node::Concat(core::mem::take(&mut items)));
                }
                ')' => break,
                '*' | '+' | '?' => {
                    let op_start = self.rest();
                    self.i += 1;
                    let (min, max) = match c {
                        '*' => (0, None),
                        '+' => (1, None),
                        _ => (0, Some(1)),
                    };
                    self.repeat(&mut items, min, max, flags, op_start, was_repeat)?;
                }
                '{' => {
                    let op_start = self.rest();
                    if let Some((min, max, len)) = parse_count(op_start) {
                        self.i += op_start[..len].chars().count();
                        if min > MAX_REPEAT || max.map_or(false, |m| m > MAX_REPEAT || m < min) {
                            return Err(self.error("invalid repeat count", &op_start[..len]));
                        }
                        self.repeat(&mut items, min, max, flags, op_start, was_repeat)?;
                    } else {
                        self.i += 1;
                        items.push(lit('{', flags));
                    }
                }
                '(' => {
                    let start = self.rest();
                    self.i += 1;
                    let mut inner = flags;
                    if self.peek() == Some('?') {
                        let r = self.rest();
                        if r.starts_with("?P<") || r.starts_with("?<") {
                            let skip = if r.starts_with("?P<") { 3 } else { 2 };
                            let end = match r.find('>') {
                                Some(e) => e,
                                None => return Err(self.error("invalid named capture", start)),
                            };
                            let name = &r[skip..end];
                            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                                return Err(self.error("invalid named capture", &start[..end + 2]));
                            }
                            self.i += r[..end + 1].chars().count();
                        } else {
                            // flags: (?ims-U) or (?ims-U:re)
                            self.i += 1;
                            let mut set = flags;
                            let (mut neg, mut saw) = (false, false);
                            loop {
                                let c = match self.peek() {
                                    Some(c) => c,
                                    None => return Err(self.error("missing closing )", start)),
                                };
                                self.i += 1;
                                match c {
                                    'i' | 'm' | 's' | 'U' => {
                                        let on = !neg;
                                        match c {
                                            'i' => set.i = on,
                                            'm' => set.m = on,
                                            's' => set.s = on,
                                            _ => set.u = on,
                                        }
                                        saw = true;
                                    }
                                    '-' if !neg => {
                                        neg = true;
                                        saw = false;
                                    }
                                    ')' | ':' if saw || (!neg && c == ':') => {
                                        if c == ')' {
                                            flags = set;
                                        } else {
                                            inner = set;
                                            let node = self.alt(inner, depth + 1)?;
                                            if self.peek() != Some(')') {
                                                return Err(self.error("missing closing )", start));
                                            }
                                            self.i += 1;
                                            self.last_was_repeat = false;
                                            items.push(node);
                                        }
                                        break;
                                    }
                                    _ => {
                                        let upto = self.rest().len();
                                        return Err(self.error("invalid or unsupported Perl syntax", &start[..start.len() - upto]));
                                    }
                                }
                            }
                            continue;
                        }
                    }
                    let node = self.alt(inner, depth + 1)?;
                    if self.peek() != Some(')') {
                        return Err(self.error("missing closing )", start));
                    }
                    self.i += 1;
                    self.last_was_repeat = false;
                    items.push(node);
                }
                '[' => {
                    let node = self.class(flags)?;
                    items.push(node);
                }
                '.' => {
                    self.i += 1;
                    items.push(Node::Class(if flags.s { negate(&[]) } else { negate(&[('\n', '\n')]) }));
                }
                '^' => {
                    self.i += 1;
                    items.push(Node::Look(if flags.m { Look::BeginLine } else { Look::BeginText }));
                }
                '$' => {
                    self.i += 1;
                    items.push(Node::Look(if flags.m { Look::EndLine } else { Look::EndText }));
                }
                '\\' => {
                    let start = self.rest();
                    self.i += 1;
                    let e = match self.peek() {
                        Some(e) => e,
                        None => return Err(self.error("trailing backslash at end of expression", "")),
                    };
                    match e {
                        'b' => {
                            self.i += 1;
                            items.push(Node::Look(Look::WordBoundary))
                        }
                        'B' => {
                            self.i += 1;
                            items.push(Node::Look(Look::NotWordBoundary))
                        }
                        'A' => {
                            self.i += 1;
                            items.push(Node::Look(Look::BeginText))
                        }
                        'z' => {
                            self.i += 1;
                            items.push(Node::Look(Look::EndText))
                        }
                        _ => {
                            let r = self.escape(start)?;
                            items.push(Node::Class(if flags.i { fold_ranges(&r) } else { r }));
                        }
                    }
                }
                _ => {
                    self.i += 1;
                    items.push(lit(c, flags));
                }
            }
        }
        if branches.is_empty() {
            return Ok(Node::Concat(items));
        }
        branches.push(Node::Concat(items));
        Ok(Node::Alt(branches))
    }

    fn repeat(&mut self, items: &mut Vec<Node>, min: u32, max: Option<u32>, flags: Flags, op: &str, was_repeat: bool) -> Result<(), String> {
        let mut greedy = true;
        let mut op_len = op.len() - self.rest().len();
        if self.peek() == Some('?') {
            self.i += 1;
            greedy = false;
            op_len += 1;
        }
        if flags.u {
            greedy = !greedy;
        }
        let node = match items.pop() {
            Some(n) => n,
            None => return Err(self.error("missing argument to repetition operator", &op[..op_len])),
        };
        if was_repeat {
            return Err(self.error("invalid nested repetition operator", &op[..op_len]));
        }
        items.push(Node::Repeat { node: Box::new(node), min, max, greedy });
        self.last_was_repeat = true;
        Ok(())
    }

    /// An escape after '\' (not \b \B \A \z): a class or one character.
    fn escape(&mut self, start: &str) -> Result<Vec<(char, char)>, String> {
        let e = self.peek().unwrap();
        self.i += 1;
        if let Some(c) = class_of(e) {
            return Ok(c);
        }
        let ch = match e {
            'a' => '\u{7}',
            'f' => '\u{c}',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'v' => '\u{b}',
            'x' => {
                let r = self.rest();
                let (v, len) = if let Some(body) = r.strip_prefix('{') {
                    let end = match body.find('}') {
                        Some(e) => e,
                        None => return Err(self.error("invalid escape sequence", start)),
                    };
                    match u32::from_str_radix(&body[..end], 16) {
                        Ok(v) if end > 0 => (v, end + 2),
                        _ => return Err(self.error("invalid escape sequence", start)),
                    }
                } else {
                    match r.get(..2).and_then(|h| u32::from_str_radix(h, 16).ok()) {
                        Some(v) if r.as_bytes()[0].is_ascii_hexdigit() => (v, 2),
                        _ => return Err(self.error("invalid escape sequence", start)),
                    }
                };
                self.i += r[..len].chars().count();
                match char::from_u32(v) {
                    Some(c) => c,
                    None => return Err(self.error("invalid escape sequence", start)),
                }
            }
            c if c.is_ascii_punctuation() => c,
            _ => {
                let n = start.chars().take(2).map(|c| c.len_utf8()).sum();
                return Err(self.error("invalid escape sequence", &start[..n]));
            }
        };
        Ok(vec![(ch, ch)])
    }

    fn class(&mut self, flags: Flags) -> Result<Node, String> {
        let start = self.rest();
        self.i += 1; // '['
        let mut neg = false;
        if self.peek() == Some('^') {
            neg = true;
            self.i += 1;
        }
        let mut ranges: Vec<(char, char)> = Vec::new();
        let mut first = true;
        loop {
            let c = match self.peek() {
                Some(c) => c,
                None => return Err(self.error("missing closing ]", start)),
            };
            if c == ']' && !first {
                self.i += 1;
                break;
            }
            first = false;
            if c == '[' && self.rest().starts_with("[:") {
                let r = self.rest();
                if let Some(end) = r[2..].find(":]") {
                    let mut name = &r[2..2 + end];
                    let neg_posix = name.starts_with('^');
                    if neg_posix {
                        name = &name[1..];
                    }
                    let set = match posix(name) {
                        Some(s) => s,
                        None => return Err(self.error("invalid character class range", &r[..end + 4])),
                    };
                    ranges.extend(if neg_posix { negate(&set) } else { set });
                    self.i += r[..end + 4].chars().count();
                    continue;
                }
            }
            let lo = self.class_char(start)?;
            let lo = match lo {
                Err(set) => {
                    ranges.extend(set);
                    continue;
                }
                Ok(c) => c,
            };
            if self.peek() == Some('-') && self.chars.get(self.i + 1).map(|c| c.1) != Some(']') && self.chars.get(self.i + 1).is_some() {
                let range_start = self.rest();
                self.i += 1;
                let hi = match self.class_char(start)? {
                    Ok(c) => c,
                    Err(_) => return Err(self.error("invalid character class range", range_start)),
                };
                if hi < lo {
                    return Err(self.error("invalid character class range", &range_start[..range_start.len() - self.rest().len()]));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        let mut r = norm(ranges);
        if flags.i {
            r = fold_ranges(&r);
        }
        if neg {
            r = negate(&r);
        }
        Ok(Node::Class(r))
    }

    /// One class member: Ok(char) or Err(set) for \d-style escapes.
    fn class_char(&mut self, start: &str) -> Result<Result<char, Vec<(char, char)>>, String> {
        let c = self.peek().unwrap();
        if c != '\\' {
            self.i += 1;
            return Ok(Ok(c));
        }
        let esc = self.rest();
        self.i += 1;
        if self.peek().is_none() {
            return Err(self.error("missing closing ]", start));
        }
        let r = self.escape(esc)?;
        if r.len() == 1 && r[0].0 == r[0].1 && !matches!(esc.as_bytes().get(1), Some(b'd' | b'D' | b'w' | b'W' | b's' | b'S')) {
            return Ok(Ok(r[0].0));
        }
        Ok(Err(r))
    }
}

fn lit(c: char, flags: Flags) -> Node {
    if flags.i {
        Node::Class(norm(fold(c).into_iter().map(|x| (x, x)).collect()))
    } else {
        Node::Class(vec![(c, c)])
    }
}

/// Parses "{n}", "{n,}" or "{n,m}" at the start of s: (min, max, byte length).
fn parse_count(s: &str) -> Option<(u32, Option<u32>, usize)> {
    let b = s.as_bytes();
    let mut i = 1;
    let num = |i: &mut usize| -> Option<u32> {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == st || *i - st > 8 {
            return None;
        }
        s[st..*i].parse().ok()
    };
    let min = num(&mut i)?;
    let max;
    if b.get(i) == Some(&b',') {
        i += 1;
        if b.get(i) == Some(&b'}') {
            max = None;
        } else {
            max = Some(num(&mut i)?);
        }
    } else {
        max = Some(min);
    }
    if b.get(i) != Some(&b'}') {
        return None;
    }
    Some((min, max, i + 1))
}

// ---------------------------------------------------------------------------
// Compiling

struct Compiler {
    prog: Vec<Inst>,
    classes: Vec<Vec<(char, char)>>,
}

fn split(greedy: bool, body: u32, out: u32) -> Inst {
    if greedy {
        Inst::Split(body, out)
    } else {
        Inst::Split(out, body)
    }
}

/// Whether n can match the empty string.
fn nullable(n: &Node) -> bool {
    match n {
        Node::Class(_) => false,
        Node::Look(_) => true,
        Node::Concat(items) => items.iter().all(nullable),
        Node::Alt(branches) => branches.iter().any(nullable),
        Node::Repeat { node, min, .. } => *min == 0 || nullable(node),
    }
}

impl Compiler {
    /// x+: L: x; split L, out.
    fn plus(&mut self, node: &Node, greedy: bool) -> Result<(), String> {
        let l = self.prog.len() as u32;
        self.node(node)?;
        let q = self.emit(Inst::Split(0, 0))?;
        self.prog[q as usize] = split(greedy, l, q + 1);
        Ok(())
    }

    fn emit(&mut self, i: Inst) -> Result<u32, String> {
        if self.prog.len() >= MAX_PROG {
            return Err(String::from("error parsing regexp: expression too large"));
        }
        self.prog.push(i);
        Ok(self.prog.len() as u32 - 1)
    }

    fn node(&mut self, n: &Node) -> Result<(), String> {
        match n {
            Node::Class(r) => {
                let idx = match self.classes.iter().position(|c| c == r) {
                    Some(i) => i,
                    None => {
                        self.classes.push(r.clone());
                        self.classes.len() - 1
                    }
                };
                self.emit(Inst::Class(idx as u32))?;
            }
            Node::Look(l) => {
                self.emit(Inst::Assert(*l))?;
            }
            Node::Concat(items) => {
                for it in items {
                    self.node(it)?;
                }
            }
            Node::Alt(branches) => {
                let mut jumps = Vec::new();
                for (k, b) in branches.iter().enumerate() {
                    if k + 1 < branches.len() {
                        let split = self.emit(Inst::Split(0, 0))?;
                        self.node(b)?;
                        jumps.push(self.emit(Inst::Jmp(0))?);
                        let next = self.prog.len() as u32;
                        self.prog[split as usize] = Inst::Split(split + 1, next);
                    } else {
                        self.node(b)?;
                    }
                }
                let end = self.prog.len() as u32;
                for j in jumps {
                    self.prog[j as usize] = Inst::Jmp(end);
                }
            }
            Node::Repeat { node, min, max, greedy } => {
                // As Go's compiler and simplifier: x{n,} is n-1 copies then x+, x+ a loop back
                // to x, x* with a nullable x is (x+)? (golang.org/issue/46123), x{n,m} is n
                // copies then nested optional ones.
                let greedy = *greedy;
                match max {
                    None if *min == 0 => {
                        if nullable(node) {
                            let q = self.emit(Inst::Split(0, 0))?;
                            self.plus(node, greedy)?;
                            let out = self.prog.len() as u32;
                            self.prog[q as usize] = split(greedy, q + 1, out);
                        } else {
                            let l = self.emit(Inst::Split(0, 0))?;
                            self.node(node)?;
                            self.emit(Inst::Jmp(l))?;
                            let out = self.prog.len() as u32;
                            self.prog[l as usize] = split(greedy, l + 1, out);
                        }
                    }
                    None => {
                        for _ in 1..*min {
                            self.node(node)?;
                        }
                        self.plus(node, greedy)?;
                    }
                    Some(max) => {
                        for _ in 0..*min {
                            self.node(node)?;
                        }
                        let mut splits = Vec::new();
                        for _ in *min..*max {
                            splits.push(self.emit(Inst::Split(0, 0))?);
                            self.node(node)?;
                        }
                        let out = self.prog.len() as u32;
                        for q in splits {
                            self.prog[q as usize] = split(greedy, q + 1, out);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
