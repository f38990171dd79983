//! The pickle machine, over data only: opcodes build an arena of nodes, classes stay names.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use super::PickleError;

/// Past this nesting a value is refused (it also stops self-referencing containers).
const MAX_DEPTH: usize = 200;

/// A pickle's bytes as JSON (see the module documentation for how objects map).
pub(crate) fn read(bytes: &[u8]) -> Result<Value, PickleError> {
    let mut machine = Machine {
        input: bytes,
        pos: 0,
        // About one node per NODE_BYTES of input in ADK's pickles: sized once, not grown.
        nodes: Vec::with_capacity(bytes.len() / NODE_BYTES + 1),
        stack: Vec::with_capacity(16),
        marks: Vec::new(),
        memo: Vec::with_capacity(bytes.len() / NODE_BYTES + 1),
        memo_len: 0,
    };
    let root = machine.run()?;
    machine.to_json(root, 0)
}

type Id = usize;

/// Input bytes per node, at most, of a typical pickle (ADK's `EventActions`: 1,289 bytes,
/// 154 nodes, 104 memo entries), so the arena and the memo are not grown.
const NODE_BYTES: usize = 6;

/// A memo slot never stored.
const UNSET: Id = Id::MAX;

#[derive(Debug)]
enum Node<'a> {
    None,
    Bool(bool),
    Int(i128),
    /// An integer beyond 128 bits, as the nearest float.
    BigInt(f64),
    Float(f64),
    // Strings and bytes are borrowed from the input: copied once, into the JSON.
    Str(&'a str),
    Bytes(&'a [u8]),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Set(Vec<Id>),
    /// A class or function by name; never imported.
    Global {
        module: &'a str,
        name: &'a str,
    },
    /// `class(*args)` or `class.__new__(class, *args)`, then `BUILD` with `state`.
    Object {
        class: Id,
        args: Vec<Id>,
        state: Option<Id>,
    },
}

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    nodes: Vec<Node<'a>>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    /// By key; picklers number memo entries 0, 1, 2… (Python: `len(memo)`), so a vector.
    memo: Vec<Id>,
    /// Entries stored (MEMOIZE's next key).
    memo_len: usize,
}

impl<'a> Machine<'a> {
    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError {
            offset: self.pos,
            reason: reason.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let input = self.input;
        let Some(end) = self.pos.checked_add(n).filter(|&e| e <= input.len()) else {
            return self.fail(format!("truncated: {n} more bytes expected"));
        };
        let s = &input[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        Ok(self.take(N)?.try_into().expect("N bytes taken"))
    }

    fn len(&mut self, width: usize) -> Result<usize, PickleError> {
        let n = match width {
            1 => u64::from(self.u8()?),
            4 => u64::from(u32::from_le_bytes(self.le()?)),
            _ => u64::from_le_bytes(self.le()?),
        };
        // No length can exceed what is left of the input.
        match usize::try_from(n) {
            Ok(n) if n <= self.input.len() - self.pos => Ok(n),
            _ => self.fail(format!("length {n} runs past the end")),
        }
    }

    fn utf8(&mut self, width: usize) -> Result<&'a str, PickleError> {
        let n = self.len(width)?;
        let at = self.pos;
        match std::str::from_utf8(self.take(n)?) {
            Ok(s) => Ok(s),
            Err(e) => Err(PickleError {
                offset: at,
                reason: format!("string is not UTF-8: {e}"),
            }),
        }
    }

    fn push(&mut self, node: Node<'a>) {
        self.nodes.push(node);
        self.stack.push(self.nodes.len() - 1);
    }

    fn pop(&mut self) -> Result<Id, PickleError> {
        if self.marks.last() == Some(&self.stack.len()) {
            return self.fail("stack underflow at a mark");
        }
        match self.stack.pop() {
            Some(id) => Ok(id),
            None => self.fail("stack underflow"),
        }
    }

    fn top(&self) -> Result<Id, PickleError> {
        match self.stack.last() {
            Some(&id) if self.marks.last() != Some(&self.stack.len()) => Ok(id),
            _ => self.fail("stack underflow"),
        }
    }

    /// The items pushed since the last mark, and the mark removed.
    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        match self.marks.pop() {
            Some(at) => Ok(self.stack.split_off(at)),
            None => self.fail("no mark on the stack"),
        }
    }

    /// APPENDS, ADDITEMS (`pairs` false) or SETITEMS (true): the items pushed since the
    /// last mark go into the container below it, taken straight off the stack.
    fn add_marked(&mut self, pairs: bool) -> Result<(), PickleError> {
        let Some(at) = self.marks.pop() else {
            return self.fail("no mark on the stack");
        };
        let stack = std::mem::take(&mut self.stack);
        let added = match stack[..at].last() {
            Some(&container) if self.marks.last() != Some(&at) => {
                let items = &stack[at..];
                if pairs {
                    self.set_items(container, items)
                } else {
                    self.extend(container, items)
                }
            }
            _ => self.fail("stack underflow"),
        };
        self.stack = stack;
        self.stack.truncate(at);
        added
    }

    fn memo_get(&self, key: u32) -> Result<Id, PickleError> {
        match self.memo.get(key as usize) {
            Some(&id) if id != UNSET => Ok(id),
            _ => self.fail(format!("memo key {key} was never stored")),
        }
    }

    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        let top = self.top()?;
        let key = key as usize;
        // Each entry takes at least two bytes of input (an object and its PUT), so no
        // pickler's key reaches the input's length; a larger one would only grow the memo.
        if key >= self.input.len() {
            return self.fail(format!("memo key {key} is beyond this pickle's entries"));
        }
        if key == self.memo.len() {
            // The usual case: the next key.
            self.memo.push(top);
            self.memo_len += 1;
            return Ok(());
        }
        if key > self.memo.len() {
            self.memo.resize(key + 1, UNSET);
        }
        if self.memo[key] == UNSET {
            self.memo_len += 1;
        }
        self.memo[key] = top;
        Ok(())
    }

    fn extend(&mut self, container: Id, items: &[Id]) -> Result<(), PickleError> {
        match &mut self.nodes[container] {
            Node::List(list) | Node::Set(list) => list.extend_from_slice(items),
            _ => return self.fail("APPEND or ADDITEMS on something not a list or set"),
        }
        Ok(())
    }

    fn set_items(&mut self, dict: Id, items: &[Id]) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return self.fail("SETITEMS with an odd number of items");
        }
        let pairs = items.chunks_exact(2).map(|kv| (kv[0], kv[1]));
        match &mut self.nodes[dict] {
            Node::Dict(entries) => entries.extend(pairs),
            _ => return self.fail("SETITEM on something not a dict"),
        }
        Ok(())
    }

    fn node_str(&self, id: Id) -> Result<&'a str, PickleError> {
        match self.nodes[id] {
            Node::Str(s) => Ok(s),
            _ => self.fail("a class name that is not a string"),
        }
    }

    fn int(&mut self, bytes: &[u8]) {
        // Little-endian two's complement, as LONG1/LONG4 write it.
        let node = if bytes.len() <= 16 {
            let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
            let mut buf = [if negative { 0xff } else { 0 }; 16];
            buf[..bytes.len()].copy_from_slice(bytes);
            Node::Int(i128::from_le_bytes(buf))
        } else {
            let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
            let mut value = 0f64;
            for &b in bytes.iter().rev() {
                value = value * 256.0 + f64::from(if negative { !b } else { b });
            }
            Node::BigInt(if negative { -(value + 1.0) } else { value })
        };
        self.push(node);
    }

    fn run(&mut self) -> Result<Id, PickleError> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if !(2..=5).contains(&proto) {
                        return self.fail(format!("protocol {proto}: only 2 to 5 are read"));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint only.
                }
                b'.' => {
                    let root = self.pop()?;
                    if !self.stack.is_empty() || !self.marks.is_empty() {
                        return self.fail("STOP with more than one value on the stack");
                    }
                    return Ok(root);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?;
                    self.stack.push(top);
                }
                0x94 => {
                    let key = u32::try_from(self.memo_len)
                        .map_err(|_| self.fail::<()>("memo overflow").unwrap_err())?;
                    self.memo_put(key)?;
                }
                b'q' => {
                    let key = u32::from(self.u8()?);
                    self.memo_put(key)?;
                }
                b'r' => {
                    let key = u32::from_le_bytes(self.le()?);
                    self.memo_put(key)?;
                }
                b'h' => {
                    let key = u32::from(self.u8()?);
                    let id = self.memo_get(key)?;
                    self.stack.push(id);
                }
                b'j' => {
                    let key = u32::from_le_bytes(self.le()?);
                    let id = self.memo_get(key)?;
                    self.stack.push(id);
                }
                b'N' => self.push(Node::None),
                0x88 => self.push(Node::Bool(true)),
                0x89 => self.push(Node::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.push(Node::Int(i128::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Node::Int(i128::from(v)));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.push(Node::Int(i128::from(v)));
                }
                0x8a | 0x8b => {
                    let n = self.len(if op == 0x8a { 1 } else { 4 })?;
                    let bytes = self.take(n)?;
                    self.int(bytes);
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.push(Node::Float(v));
                }
                0x8c | b'X' | 0x8d => {
                    let width = match op {
                        0x8c => 1,
                        b'X' => 4,
                        _ => 8,
                    };
                    let s = self.utf8(width)?;
                    self.push(Node::Str(s));
                }
                b'C' | b'B' | 0x8e | 0x96 => {
                    let width = match op {
                        b'C' => 1,
                        b'B' => 4,
                        _ => 8,
                    };
                    let n = self.len(width)?;
                    let bytes = self.take(n)?;
                    self.push(Node::Bytes(bytes));
                }
                b']' => self.push(Node::List(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items));
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.extend(list, &[item])?;
                }
                b'e' | 0x90 => self.add_marked(false)?,
                b')' => self.push(Node::Tuple(Vec::new())),
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Node::Tuple(items));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items));
                }
                b'}' => self.push(Node::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    self.nodes.push(Node::Dict(Vec::new()));
                    let dict = self.nodes.len() - 1;
                    self.set_items(dict, &items)?;
                    self.stack.push(dict);
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top()?;
                    self.set_items(dict, &[key, value])?;
                }
                b'u' => self.add_marked(true)?,
                0x8f => self.push(Node::Set(Vec::new())),
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Node::Set(items));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Node::Global { module, name });
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (module, name) = (self.node_str(module)?, self.node_str(name)?);
                    self.push(Node::Global { module, name });
                }
                0x81 | b'R' => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let Node::Tuple(args) = &self.nodes[args] else {
                        return self.fail("NEWOBJ or REDUCE arguments are not a tuple");
                    };
                    let args = args.clone();
                    self.push(Node::Object {
                        class,
                        args,
                        state: None,
                    });
                }
                0x92 => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let Node::Tuple(args) = &self.nodes[args] else {
                        return self.fail("NEWOBJ_EX arguments are not a tuple");
                    };
                    let args = args.clone();
                    self.push(Node::Object {
                        class,
                        args,
                        state: None,
                    });
                }
                b'b' => {
                    let state = self.pop()?;
                    let object = self.top()?;
                    match &mut self.nodes[object] {
                        Node::Object { state: slot, .. } => *slot = Some(state),
                        _ => return self.fail("BUILD on something that is not an object"),
                    }
                }
                other => {
                    self.pos -= 1;
                    return self.fail(format!(
                        "opcode 0x{other:02x} is not accepted (only the data opcodes of \
                         protocols 2-5 are read)"
                    ));
                }
            }
        }
    }

    /// A newline-terminated ASCII line (GLOBAL's module and name).
    fn line(&mut self) -> Result<&'a str, PickleError> {
        let input = self.input;
        let rest = &input[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return self.fail("GLOBAL without a newline");
        };
        let line = match std::str::from_utf8(&rest[..end]) {
            Ok(s) => s,
            Err(_) => return self.fail("GLOBAL name is not UTF-8"),
        };
        self.pos += end + 1;
        Ok(line)
    }

    fn to_json(&self, id: Id, depth: usize) -> Result<Value, PickleError> {
        if depth > MAX_DEPTH {
            return self.fail(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let json = |id| self.to_json(id, depth + 1);
        Ok(match &self.nodes[id] {
            Node::None => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => int_json(*i),
            Node::BigInt(f) | Node::Float(f) => {
                Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            Node::Str(s) => Value::String((*s).to_owned()),
            // Text when it is text, as pydantic's JSON mode writes bytes; numbers otherwise.
            Node::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => Value::String(s.to_owned()),
                Err(_) => Value::Array(b.iter().map(|&x| Value::from(x)).collect()),
            },
            Node::List(items) | Node::Tuple(items) | Node::Set(items) => {
                Value::Array(items.iter().map(|&i| json(i)).collect::<Result<_, _>>()?)
            }
            Node::Dict(entries) => {
                let mut map = Map::new();
                for &(k, v) in entries {
                    map.insert(self.key(k)?, json(v)?);
                }
                Value::Object(map)
            }
            Node::Global { module, name } => Value::String(format!("{module}.{name}")),
            Node::Object { class, args, state } => self.object_json(*class, args, *state, depth)?,
        })
    }

    /// A dict key as JSON text, the way `json.dumps` writes non-string keys.
    fn key(&self, id: Id) -> Result<String, PickleError> {
        Ok(self.key_str(id)?.into_owned())
    }

    /// [`key`](Machine::key), borrowed when the key is a string.
    fn key_str(&self, id: Id) -> Result<Cow<'a, str>, PickleError> {
        if let Node::Str(s) = self.nodes[id] {
            return Ok(Cow::Borrowed(s));
        }
        Ok(Cow::Owned(match self.to_json(id, 0)? {
            Value::String(s) => s,
            other => other.to_string(),
        }))
    }

    fn object_json(
        &self,
        class: Id,
        args: &[Id],
        state: Option<Id>,
        depth: usize,
    ) -> Result<Value, PickleError> {
        let json = |id| self.to_json(id, depth + 1);
        if let Some(state) = state {
            return match &self.nodes[state] {
                Node::Dict(entries) => self.fields_json(entries, depth),
                // (dict state, slots state), as objects with __slots__ pickle.
                Node::Tuple(parts) if parts.len() == 2 => {
                    let mut map = Map::new();
                    for &part in parts {
                        if let Value::Object(m) = json(part)? {
                            map.extend(m);
                        }
                    }
                    Ok(Value::Object(map))
                }
                _ => json(state),
            };
        }
        let class_name = match &self.nodes[class] {
            Node::Global { name, .. } => *name,
            _ => "",
        };
        Ok(match (class_name, args) {
            // builtins.set([...]) as protocol 2 writes sets; an enum or a
            // `Model.model_validate({...})` call is its one argument.
            (_, [one]) => json(*one)?,
            (_, []) => Value::Object(Map::new()),
            (_, many) => Value::Array(many.iter().map(|&i| json(i)).collect::<Result<_, _>>()?),
        })
    }

    /// A `BUILD` state dict: pydantic's (`__dict__` with `__pydantic_fields_set__` and
    /// `__pydantic_extra__`) as the fields that were set plus the extra ones; any other as
    /// the object's attributes.
    fn fields_json(&self, entries: &[(Id, Id)], depth: usize) -> Result<Value, PickleError> {
        let json = |id| self.to_json(id, depth + 1);
        let entry = |name: &str| {
            entries
                .iter()
                .find(|&&(k, _)| matches!(self.nodes[k], Node::Str(s) if s == name))
                .map(|&(_, v)| v)
        };
        let Some(fields) = entry("__dict__") else {
            let mut map = Map::new();
            for &(k, v) in entries {
                map.insert(self.key(k)?, json(v)?);
            }
            return Ok(Value::Object(map));
        };
        let set: Option<Vec<&str>> = match entry("__pydantic_fields_set__").map(|s| &self.nodes[s])
        {
            Some(Node::Set(items)) => Some(
                items
                    .iter()
                    .filter_map(|&i| match self.nodes[i] {
                        Node::Str(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        };
        let mut map = Map::new();
        if let Node::Dict(fields) = &self.nodes[fields] {
            for &(k, v) in fields {
                // Compared borrowed: most of a model's fields are unset and skipped.
                let name = self.key_str(k)?;
                if set.as_ref().is_none_or(|set| set.contains(&&*name)) {
                    map.insert(name.into_owned(), json(v)?);
                }
            }
        }
        if let Some(extra) = entry("__pydantic_extra__")
            && let Value::Object(extra) = json(extra)?
        {
            map.extend(extra);
        }
        Ok(Value::Object(map))
    }
}

fn int_json(i: i128) -> Value {
    if let Ok(v) = i64::try_from(i) {
        Value::from(v)
    } else if let Ok(v) = u64::try_from(i) {
        Value::from(v)
    } else {
        // Beyond 64 bits JSON numbers here are floats, as serde_json holds them.
        Number::from_f64(i as f64).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `pickle.dumps(EventActions(...))` from google-adk 2.13.0 on Python 3.11 (protocol 4),
    /// with a `ToolConfirmation`, an `EventCompaction` holding a genai `Content`, a 70-bit
    /// integer and a nested list.
    const ADK_PICKLE: &[u8] = include_bytes!("fixtures/adk_2_13_event_actions.pickle");

    #[test]
    fn reads_a_real_adk_pickle_as_its_set_fields() {
        let v = read(ADK_PICKLE).unwrap();
        assert_eq!(v["state_delta"]["topic"], "rust");
        assert_eq!(v["state_delta"]["user:name"], "Ann");
        assert_eq!(v["state_delta"]["l"], json!([1, null, true]));
        assert_eq!(v["state_delta"]["nested"], json!({"a": {"b": "c"}}));
        assert_eq!(v["state_delta"]["n"].as_f64(), Some(2f64.powi(70)));
        assert_eq!(v["artifact_delta"], json!({"x.txt": 3}));
        assert_eq!(v["transfer_to_agent"], "billing");
        assert_eq!(v["escalate"], false);
        assert_eq!(
            v["requested_tool_confirmations"]["c1"],
            json!({"hint": "ok?", "confirmed": true, "payload": {"k": 1}})
        );
        assert_eq!(
            v["compaction"],
            json!({"start_timestamp": 1.0, "end_timestamp": 2.0,
                "compacted_content": {"parts": [{"text": "sum"}], "role": "model"}})
        );
        // Fields left at their defaults are not there.
        assert!(v.get("skip_summarization").is_none());
        assert!(v.get("agent_state").is_none());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for n in 0..ADK_PICKLE.len() {
            assert!(read(&ADK_PICKLE[..n]).is_err(), "prefix of {n} bytes");
        }
    }

    #[test]
    fn code_and_protocol_0_opcodes_are_refused() {
        // PERSID, INST, OBJ, EXT1, the text INT opcode, and protocol 1.
        for bad in [
            &b"\x80\x04P1\n."[..],
            b"\x80\x04(i os\nsystem\n.",
            b"\x80\x04(o.",
            b"\x80\x04\x82\x01.",
            b"\x80\x04I1\n.",
            b"\x80\x01N.",
        ] {
            let err = read(bad).unwrap_err();
            assert!(
                err.reason.contains("not accepted") || err.reason.contains("protocol"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn globals_are_names_never_imports() {
        // os.system("x"), the classic payload, reads as data: nothing runs.
        let p = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x01x\x85R.";
        assert_eq!(read(p).unwrap(), json!("x"));
    }

    #[test]
    fn self_referencing_and_odd_shapes_are_errors() {
        // A list appended to itself: L = []; L.append(L).
        let cyclic = b"\x80\x04]\x94h\x00a.";
        assert!(read(cyclic).unwrap_err().reason.contains("deeper"));
        // SETITEMS with a dangling key, BUILD on a list, STOP with two values.
        for bad in [&b"\x80\x04}(K\x01u."[..], b"\x80\x04]}b.", b"\x80\x04NN."] {
            assert!(read(bad).is_err(), "{bad:?}");
        }
        // Oversize lengths stop at the end of the input.
        assert!(read(b"\x80\x04X\xff\xff\xff\xff").is_err());
    }

    #[test]
    fn memo_keys_out_of_order_and_marked_items_without_a_container() {
        // BINPUT 3 on a string (then popped), BINGET 3 twice into a list; MEMOIZE then
        // takes key 1 (the memo's size), as Python's unpickler numbers it, and the list
        // popped and fetched again is the value.
        let p = b"\x80\x04\x8c\x01xq\x030](h\x03h\x03e\x940h\x01.";
        assert_eq!(read(p).unwrap(), json!(["x", "x"]));
        // A key never stored, and one no pickle this size can have stored.
        assert!(
            read(b"\x80\x04h\x02.")
                .unwrap_err()
                .reason
                .contains("never stored")
        );
        let far = b"\x80\x04Nr\xff\xff\xff\x7f.";
        assert!(read(far).unwrap_err().reason.contains("beyond"), "{far:?}");
        // SETITEMS and APPENDS with nothing below the mark, or the wrong container.
        for bad in [
            &b"\x80\x04(K\x01K\x02u."[..],
            b"\x80\x04(K\x01e.",
            b"\x80\x04}(K\x01e.",
        ] {
            assert!(read(bad).is_err(), "{bad:?}");
        }
        let p = b"\x80\x04}(\x8c\x01aK\x01\x8c\x01bK\x02u.";
        assert_eq!(read(p).unwrap(), json!({"a": 1, "b": 2}));
    }

    #[test]
    fn integers_of_every_width() {
        assert_eq!(read(b"\x80\x04K\xff.").unwrap(), json!(255));
        assert_eq!(read(b"\x80\x04M\xff\xff.").unwrap(), json!(65535));
        assert_eq!(read(b"\x80\x04J\xff\xff\xff\xff.").unwrap(), json!(-1));
        assert_eq!(read(b"\x80\x04\x8a\x01\x80.").unwrap(), json!(-128));
        assert_eq!(read(b"\x80\x04\x8a\x00.").unwrap(), json!(0));
        assert_eq!(
            read(b"\x80\x04\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\x00.").unwrap(),
            json!(u64::MAX)
        );
    }
}
