//! A restricted unpickler: the pickle opcodes a tensor state dict uses, and no others.
//!
//! Python's pickle format is a program for a stack machine that may import and call any
//! function. This machine knows the data opcodes (numbers, strings, tuples, lists, dicts,
//! the memo) and lets `GLOBAL` name only the few callables of [`super::globals`]; calling
//! one builds a description of a tensor instead of running anything. Containers live in
//! an arena and are referred to by index, so sharing through the memo costs nothing and a
//! self-referencing list is harmless. Every length is checked against the bytes left
//! before anything is allocated, so memory stays within a small multiple of the input.

use super::globals::{Global, StorageRef, TensorRef};
use crate::io::IoError;
use std::collections::HashMap;

/// What the format's messages call this part.
const WHAT: &str = "pth pickle";

/// Containers, strings and memo entries allowed per input byte (plus [`ENTRY_SLACK`]): a
/// state dict's pickle makes about one per ten bytes, a hostile run of one-byte `EMPTY_TUPLE`
/// opcodes would otherwise make one per byte, at some 50 bytes of memory each.
const BYTES_PER_ENTRY: usize = 4;
/// Entries allowed whatever the input's size.
const ENTRY_SLACK: usize = 1024;

/// The longest `module\nname\n` line of a `GLOBAL` accepted (the allowed names are short).
const MAX_GLOBAL_LINE: usize = 128;

/// One value on the machine's stack. Containers are indices into [`Pickle::objects`],
/// strings into [`Pickle::strings`], storages and tensors into their own lists.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Value {
    /// Python `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string, by index.
    Str(usize),
    /// A tuple, list or dict, by index.
    Object(usize),
    /// An allowed callable or storage type.
    Global(Global),
    /// A storage named by a persistent id, by index.
    Storage(usize),
    /// A tensor rebuilt from a storage, by index.
    Tensor(usize),
}

/// A container built by the program.
#[derive(Debug)]
pub(super) enum Object {
    /// An immutable sequence.
    Tuple(Vec<Value>),
    /// A list (`APPEND` grows it).
    List(Vec<Value>),
    /// A dict or `OrderedDict`, in insertion order (a repeated key keeps its first place
    /// and takes the new value, as Python's dict does).
    Dict(Vec<(Value, Value)>),
}

/// The result of running one pickle: its value and everything it refers to.
#[derive(Debug, Default)]
pub(super) struct Pickle {
    /// Containers, by index.
    pub objects: Vec<Object>,
    /// Strings, by index.
    pub strings: Vec<String>,
    /// Storages named by persistent ids, by index.
    pub storages: Vec<StorageRef>,
    /// Tensors, by index.
    pub tensors: Vec<TensorRef>,
}

impl Pickle {
    /// The string behind `v`, if it is one.
    pub fn str(&self, v: Value) -> Option<&str> {
        match v {
            Value::Str(i) => self.strings.get(i).map(String::as_str),
            _ => None,
        }
    }

    /// The items of a tuple (or list) value.
    pub fn seq(&self, v: Value) -> Option<&[Value]> {
        match v {
            Value::Object(i) => match self.objects.get(i)? {
                Object::Tuple(items) | Object::List(items) => Some(items),
                Object::Dict(_) => None,
            },
            _ => None,
        }
    }

    /// The entries of a dict value.
    pub fn dict(&self, v: Value) -> Option<&[(Value, Value)]> {
        match v {
            Value::Object(i) => match self.objects.get(i)? {
                Object::Dict(entries) => Some(entries),
                _ => None,
            },
            _ => None,
        }
    }

    fn push_object(&mut self, o: Object) -> Value {
        self.objects.push(o);
        Value::Object(self.objects.len() - 1)
    }
}

/// Runs the pickle at the start of `bytes`; returns its value, the machine's heap, and
/// the number of bytes the pickle took (up to and including `STOP`).
pub(super) fn unpickle(bytes: &[u8]) -> Result<(Value, Pickle, usize), IoError> {
    let mut m = Machine {
        input: bytes,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        heap: Pickle::default(),
        entries_left: bytes.len() / BYTES_PER_ENTRY + ENTRY_SLACK,
    };
    let value = m.run()?;
    Ok((value, m.heap, m.pos))
}

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// Stack heights at each `MARK`.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    heap: Pickle,
    /// Containers, strings and memo entries the input's size still allows.
    entries_left: usize,
}

fn bad(reason: impl Into<String>) -> IoError {
    IoError::malformed(WHAT, reason)
}

impl Machine<'_> {
    /// Counts one more container, string or memo entry against the input's allowance.
    fn spend(&mut self) -> Result<(), IoError> {
        self.entries_left = self
            .entries_left
            .checked_sub(1)
            .ok_or_else(|| bad("it builds more objects than a state dict of its size holds"))?;
        Ok(())
    }

    fn object(&mut self, o: Object) -> Result<Value, IoError> {
        self.spend()?;
        Ok(self.heap.push_object(o))
    }
    fn take(&mut self, n: usize) -> Result<&[u8], IoError> {
        let available = self.input.len() - self.pos;
        if n > available {
            return Err(IoError::truncated(WHAT, n, available));
        }
        let s = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, IoError> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], IoError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn pop(&mut self) -> Result<Value, IoError> {
        self.stack
            .pop()
            .ok_or_else(|| bad("an opcode needs a value but the stack is empty"))
    }

    fn top(&mut self) -> Result<&mut Value, IoError> {
        self.stack
            .last_mut()
            .ok_or_else(|| bad("an opcode needs a value but the stack is empty"))
    }

    /// The values pushed since the last `MARK`, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, IoError> {
        let height = self
            .marks
            .pop()
            .ok_or_else(|| bad("an opcode needs a MARK but there is none"))?;
        if height > self.stack.len() {
            return Err(bad("a MARK lies above the stack's top"));
        }
        Ok(self.stack.split_off(height))
    }

    fn string(&mut self, len: usize) -> Result<Value, IoError> {
        self.spend()?;
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw)
            .map_err(|_| bad("a string is not valid UTF-8"))?
            .to_string();
        self.heap.strings.push(s);
        Ok(Value::Str(self.heap.strings.len() - 1))
    }

    fn line(&mut self) -> Result<String, IoError> {
        let rest = &self.input[self.pos..];
        let end = rest
            .iter()
            .take(MAX_GLOBAL_LINE + 1)
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("a GLOBAL name is unterminated or too long"))?;
        let s = std::str::from_utf8(&rest[..end])
            .map_err(|_| bad("a GLOBAL name is not valid UTF-8"))?
            .to_string();
        self.pos += end + 1;
        Ok(s)
    }

    fn memo_get(&mut self, key: u32) -> Result<(), IoError> {
        let v = *self
            .memo
            .get(&key)
            .ok_or_else(|| bad(format!("memo entry {key} is read before it is written")))?;
        self.stack.push(v);
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<(), IoError> {
        self.spend()?;
        let v = *self.top()?;
        self.memo.insert(key, v);
        Ok(())
    }

    /// Items appended to the list on the stack below them.
    fn extend_list(&mut self, items: Vec<Value>) -> Result<(), IoError> {
        let Value::Object(i) = *self.top()? else {
            return Err(bad("APPEND on something that is not a list"));
        };
        match &mut self.heap.objects[i] {
            Object::List(list) => {
                list.extend(items);
                Ok(())
            }
            _ => Err(bad("APPEND on something that is not a list")),
        }
    }

    /// Key-value pairs set on the dict on the stack below them.
    fn set_items(&mut self, flat: Vec<Value>) -> Result<(), IoError> {
        if !flat.len().is_multiple_of(2) {
            return Err(bad("SETITEMS with a key but no value"));
        }
        let Value::Object(i) = *self.top()? else {
            return Err(bad("SETITEM on something that is not a dict"));
        };
        let strings = &self.heap.strings;
        let Object::Dict(entries) = &mut self.heap.objects[i] else {
            return Err(bad("SETITEM on something that is not a dict"));
        };
        for pair in flat.chunks_exact(2) {
            let (k, v) = (pair[0], pair[1]);
            // Keys compare by value for strings and numbers; a state dict's keys are strings.
            let same = |a: &Value| match (a, &k) {
                (Value::Str(x), Value::Str(y)) => strings[*x] == strings[*y],
                _ => *a == k,
            };
            match entries.iter_mut().find(|(a, _)| same(a)) {
                Some(entry) => entry.1 = v,
                None => entries.push((k, v)),
            }
        }
        Ok(())
    }

    fn run(&mut self) -> Result<Value, IoError> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if !(2..=5).contains(&proto) {
                        return Err(IoError::UnsupportedVersion {
                            what: WHAT.into(),
                            found: proto.to_string(),
                            supported: "pickle protocols 2 to 5".into(),
                        });
                    }
                }
                0x95 => {
                    self.le::<8>()?; // FRAME: a length hint only
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = *self.top()?;
                    self.stack.push(v);
                }
                b')' => {
                    let v = self.object(Object::Tuple(Vec::new()))?;
                    self.stack.push(v);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let v = self.object(Object::Tuple(items))?;
                    self.stack.push(v);
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err(bad("TUPLE with fewer values than it takes"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    let v = self.object(Object::Tuple(items))?;
                    self.stack.push(v);
                }
                b']' => {
                    let v = self.object(Object::List(Vec::new()))?;
                    self.stack.push(v);
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let v = self.object(Object::List(items))?;
                    self.stack.push(v);
                }
                b'a' => {
                    let item = self.pop()?;
                    self.extend_list(vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_list(items)?;
                }
                b'}' => {
                    let v = self.object(Object::Dict(Vec::new()))?;
                    self.stack.push(v);
                }
                b'd' => {
                    let flat = self.pop_mark()?;
                    let v = self.object(Object::Dict(Vec::new()))?;
                    self.stack.push(v);
                    self.set_items(flat)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let flat = self.pop_mark()?;
                    self.set_items(flat)?;
                }
                b'q' => {
                    let key = self.u8()?;
                    self.memo_put(key.into())?;
                }
                b'r' => {
                    let key = u32::from_le_bytes(self.le()?);
                    self.memo_put(key)?;
                }
                0x94 => {
                    let key =
                        u32::try_from(self.memo.len()).map_err(|_| bad("too many memo entries"))?;
                    self.memo_put(key)?;
                }
                b'h' => {
                    let key = self.u8()?;
                    self.memo_get(key.into())?;
                }
                b'j' => {
                    let key = u32::from_le_bytes(self.le()?);
                    self.memo_get(key)?;
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(v.into()));
                }
                0x8a => {
                    let n = usize::from(self.u8()?);
                    let v = self.long(n)?;
                    self.stack.push(v);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.stack.push(Value::Float(v));
                }
                b'X' => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = u64::from_le_bytes(self.le()?);
                    let n = usize::try_from(n).unwrap_or(usize::MAX);
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack
                        .push(Value::Global(Global::lookup(&module, &name)?));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (self.heap.str(module), self.heap.str(name))
                    else {
                        return Err(bad("STACK_GLOBAL needs two strings"));
                    };
                    let g = Global::lookup(module, name)?;
                    self.stack.push(Value::Global(g));
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let Value::Global(g) = callable else {
                        return Err(bad("REDUCE calls something that is not an allowed global"));
                    };
                    let v = g.call(&mut self.heap, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // State set on an object: an OrderedDict's `_metadata` (version numbers)
                    // or a tensor's attributes; neither carries weights, so it is dropped.
                    self.pop()?;
                    match *self.top()? {
                        Value::Object(_) | Value::Tensor(_) => {}
                        _ => return Err(bad("BUILD on something that is not a dict or tensor")),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = super::globals::persistent_storage(&mut self.heap, pid)?;
                    self.stack.push(v);
                }
                other => {
                    return Err(IoError::Unsupported {
                        what: WHAT.into(),
                        reason: format!(
                            "opcode 0x{other:02x} at byte {}: a tensor state dict does not use it",
                            self.pos - 1
                        ),
                    })
                }
            }
        }
    }

    /// A `LONG1` integer of `n` little-endian two's-complement bytes, at most 8.
    fn long(&mut self, n: usize) -> Result<Value, IoError> {
        if n > 8 {
            return Err(bad(format!("a {n}-byte integer is beyond 64 bits")));
        }
        let raw = self.take(n)?;
        let mut buf = if raw.last().is_some_and(|&b| b & 0x80 != 0) {
            [0xff; 8]
        } else {
            [0; 8]
        };
        buf[..n].copy_from_slice(raw);
        Ok(Value::Int(i64::from_le_bytes(buf)))
    }
}
