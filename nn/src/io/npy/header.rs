//! The npy header: a Python dict literal such as `{'descr': '<f4', 'fortran_order':
//! False, 'shape': (2, 3), }`, parsed without evaluating anything.

use crate::io::IoError;

/// Header dicts nest at most one level in practice (structured dtypes); deeper nesting
/// is refused so a hostile header cannot exhaust the stack.
const MAX_DEPTH: usize = 8;

/// Parses the header text into (descr, fortran_order, shape).
pub(super) fn parse(header: &str) -> Result<(String, bool, Vec<usize>), IoError> {
    header_fields(HeaderParser::new(header).parse_header()?)
}

/// A Python literal as it can appear in an npy header.
#[derive(Debug)]
enum Value {
    Str(String),
    Bool(bool),
    None,
    Int(u64),
    Seq(Vec<Value>),
    Dict(Vec<(String, Value)>),
}

/// Extracts (descr, fortran_order, shape) from the header dict.
fn header_fields(dict: Vec<(String, Value)>) -> Result<(String, bool, Vec<usize>), IoError> {
    let bad = |reason: String| IoError::malformed("npy header", reason);
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value) in dict {
        let slot_taken = match key.as_str() {
            "descr" => descr.replace(value).is_some(),
            "fortran_order" => fortran.replace(value).is_some(),
            "shape" => shape.replace(value).is_some(),
            _ => return Err(bad(format!("unexpected key '{key}'"))),
        };
        if slot_taken {
            return Err(bad(format!("key '{key}' appears twice")));
        }
    }
    let missing = |k: &str| bad(format!("the header has no '{k}' key"));
    let descr = match descr.ok_or_else(|| missing("descr"))? {
        Value::Str(s) => s,
        _ => {
            return Err(IoError::UnsupportedDtype {
                what: "npy".into(),
                dtype: "a structured (record) dtype".into(),
            })
        }
    };
    let fortran = match fortran.ok_or_else(|| missing("fortran_order"))? {
        Value::Bool(b) => b,
        other => {
            return Err(bad(format!(
                "'fortran_order' is {other:?}, not True or False"
            )))
        }
    };
    let Value::Seq(dims) = shape.ok_or_else(|| missing("shape"))? else {
        return Err(bad("'shape' is not a tuple".into()));
    };
    let mut shape = Vec::with_capacity(dims.len());
    for d in dims {
        match d {
            Value::Int(v) => shape.push(usize::try_from(v).map_err(|_| IoError::TooLarge {
                what: "npy shape dimension".into(),
                declared: v as u128,
                limit: usize::MAX as u128,
            })?),
            other => return Err(bad(format!("shape entry {other:?} is not an integer"))),
        }
    }
    Ok((descr, fortran, shape))
}

/// Recursive-descent parser for the subset of Python literal syntax npy headers use.
struct HeaderParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> HeaderParser<'a> {
    fn new(text: &'a str) -> Self {
        HeaderParser {
            s: text.as_bytes(),
            pos: 0,
        }
    }

    fn err(&self, what: &str) -> IoError {
        IoError::malformed("npy header", format!("{what} at byte {}", self.pos))
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.pos += hit as usize;
        hit
    }

    /// The whole header: one dict, then only whitespace (numpy's padding).
    fn parse_header(mut self) -> Result<Vec<(String, Value)>, IoError> {
        if self.peek() != Some(b'{') {
            return Err(self.err("expected '{'"));
        }
        let Value::Dict(d) = self.value(0)? else {
            return Err(self.err("expected a dict"));
        };
        if self.peek().is_some() {
            return Err(self.err("unexpected text after the dict"));
        }
        Ok(d)
    }

    fn value(&mut self, depth: usize) -> Result<Value, IoError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.peek() {
            Some(b'\'') | Some(b'"') => self.string().map(Value::Str),
            Some(b'(') => self.seq(b')', depth).map(Value::Seq),
            Some(b'[') => self.seq(b']', depth).map(Value::Seq),
            Some(b'{') => self.dict(depth).map(Value::Dict),
            Some(c) if c.is_ascii_digit() => self.int().map(Value::Int),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_alphanumeric() {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    b"None" => Ok(Value::None),
                    _ => Err(self.err("unknown name")),
                }
            }
            Some(_) => Err(self.err("unexpected character")),
            None => Err(self.err("unexpected end of header")),
        }
    }

    fn string(&mut self) -> Result<String, IoError> {
        let quote = self.s[self.pos];
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.pos) {
                None => return Err(self.err("unterminated string")),
                Some(&c) if c == quote => break,
                Some(b'\\') => {
                    // Escapes never occur in dtype strings; keep the escaped byte literally.
                    self.pos += 1;
                    out.push(*self.s.get(self.pos).ok_or_else(|| self.err("bad escape"))?);
                }
                Some(&c) => out.push(c),
            }
            self.pos += 1;
        }
        self.pos += 1;
        // The bytes came from a &str, but an escape can split a multi-byte character.
        String::from_utf8(out).map_err(|_| self.err("invalid string"))
    }

    fn int(&mut self) -> Result<u64, IoError> {
        let mut v: u64 = 0;
        while let Some(&c) = self.s.get(self.pos).filter(|c| c.is_ascii_digit()) {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .ok_or_else(|| self.err("integer too large"))?;
            self.pos += 1;
        }
        // Python 2 wrote long integers as `3L`.
        if self.s.get(self.pos) == Some(&b'L') {
            self.pos += 1;
        }
        Ok(v)
    }

    /// A tuple or list; `close` is its closing bracket. Accepts `(3,)` and `()`.
    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Value>, IoError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            if !self.eat(b',') && self.peek() != Some(close) {
                return Err(self.err("expected ',' or a closing bracket"));
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Vec<(String, Value)>, IoError> {
        self.pos += 1;
        let mut entries = Vec::new();
        loop {
            if self.eat(b'}') {
                return Ok(entries);
            }
            if !matches!(self.peek(), Some(b'\'') | Some(b'"')) {
                return Err(self.err("expected a quoted key"));
            }
            let key = self.string()?;
            if !self.eat(b':') {
                return Err(self.err("expected ':'"));
            }
            entries.push((key, self.value(depth + 1)?));
            if !self.eat(b',') && self.peek() != Some(b'}') {
                return Err(self.err("expected ',' or '}'"));
            }
        }
    }
}
