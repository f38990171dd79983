//! JSON to a pickle of `module.Class.model_validate({...})`, or of the model as
//! `pickle.dumps` itself writes it (`NEWOBJ`, then `BUILD` with pydantic's state).

use serde_json::{Map, Value};

/// Protocol 4: the first whose `STACK_GLOBAL` resolves a dotted name such as
/// `EventActions.model_validate`, and one every Python 3.8+ reads.
const PROTOCOL: u8 = 4;

/// A pickle that `pickle.loads` turns into `getattr(module.class_name, "model_validate")(fields)`.
///
/// Only data opcodes are written besides the one global: dicts, lists, strings, numbers,
/// booleans and None.
pub(crate) fn write_model_validate(
    module: &str,
    class_name: &str,
    fields: &Map<String, Value>,
) -> Vec<u8> {
    let mut out = global(module, &format!("{class_name}.model_validate"));
    object(&mut out, fields);
    out.push(0x85); // TUPLE1
    out.push(b'R'); // REDUCE
    out.push(b'.'); // STOP
    out
}

/// A pickle of the pydantic model `module.class_name` with `fields` set, in the shape
/// `pickle.dumps(model)` writes: the class, `NEWOBJ`, then `BUILD` with pydantic's state
/// (`__dict__`, `__pydantic_fields_set__`, no extra, no private). The one global is the
/// class itself, so it loads through google-adk's restricted unpickler (version 0's
/// `events.actions`), which refuses `model_validate`; nested models stay plain dicts,
/// which ADK validates when it reads the row (`model_validate(actions.model_dump())`).
pub(crate) fn write_pydantic_state(
    module: &str,
    class_name: &str,
    fields: &Map<String, Value>,
) -> Vec<u8> {
    let mut out = global(module, class_name);
    out.push(b')'); // EMPTY_TUPLE
    out.push(0x81); // NEWOBJ
    out.push(b'}'); // EMPTY_DICT: the state
    out.push(b'(');
    string(&mut out, "__dict__");
    object(&mut out, fields);
    string(&mut out, "__pydantic_extra__");
    out.push(b'N');
    string(&mut out, "__pydantic_fields_set__");
    out.push(0x8f); // EMPTY_SET
    if !fields.is_empty() {
        out.push(b'(');
        for k in fields.keys() {
            string(&mut out, k);
        }
        out.push(0x90); // ADDITEMS
    }
    string(&mut out, "__pydantic_private__");
    out.push(b'N');
    out.push(b'u'); // SETITEMS
    out.push(b'b'); // BUILD
    out.push(b'.'); // STOP
    out
}

/// The protocol header, then `module.name` on the stack.
fn global(module: &str, name: &str) -> Vec<u8> {
    let mut out = vec![0x80, PROTOCOL];
    string(&mut out, module);
    string(&mut out, name);
    out.push(0x93); // STACK_GLOBAL
    out
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(b'N'),
        Value::Bool(true) => out.push(0x88),
        Value::Bool(false) => out.push(0x89),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                int(out, i128::from(i));
            } else if let Some(u) = n.as_u64() {
                int(out, i128::from(u));
            } else {
                out.push(b'G');
                out.extend(n.as_f64().unwrap_or(f64::NAN).to_be_bytes());
            }
        }
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push(b']'); // EMPTY_LIST
            if !items.is_empty() {
                out.push(b'(');
                for item in items {
                    value(out, item);
                }
                out.push(b'e'); // APPENDS
            }
        }
        Value::Object(map) => object(out, map),
    }
}

fn object(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(b'}'); // EMPTY_DICT
    if !map.is_empty() {
        out.push(b'(');
        for (k, v) in map {
            string(out, k);
            value(out, v);
        }
        out.push(b'u'); // SETITEMS
    }
}

fn int(out: &mut Vec<u8>, i: i128) {
    match i {
        0..=0xff => out.extend([b'K', i as u8]),
        0x100..=0xffff => {
            out.push(b'M');
            out.extend((i as u16).to_le_bytes());
        }
        _ if i32::try_from(i).is_ok() => {
            out.push(b'J');
            out.extend((i as i32).to_le_bytes());
        }
        _ => {
            // LONG1: the shortest little-endian two's complement that keeps the sign.
            let bytes = i.to_le_bytes();
            let mut n = bytes.len();
            while n > 1 {
                let (last, prev) = (bytes[n - 1], bytes[n - 2]);
                let redundant =
                    (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0);
                if !redundant {
                    break;
                }
                n -= 1;
            }
            out.extend([0x8a, n as u8]);
            out.extend(&bytes[..n]);
        }
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    match u8::try_from(s.len()) {
        Ok(n) => out.extend([0x8c, n]), // SHORT_BINUNICODE
        Err(_) => match u32::try_from(s.len()) {
            Ok(n) => {
                out.push(b'X'); // BINUNICODE
                out.extend(n.to_le_bytes());
            }
            Err(_) => {
                out.push(0x8d); // BINUNICODE8
                out.extend((s.len() as u64).to_le_bytes());
            }
        },
    }
    out.extend(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::super::read;
    use super::*;
    use serde_json::json;

    #[test]
    fn what_it_writes_reads_back_the_same() {
        let fields = json!({
            "state_delta": {
                "s": "quotes ' \" \\ $$ \u{1F600}", "long": "x".repeat(300),
                "ints": [0, 255, 256, 65535, 65536, -1, -129, i32::MIN, i32::MAX,
                         i64::MIN, i64::MAX, u64::MAX, 2147483648i64],
                "f": [1.5, -0.0, 1e300], "b": [true, false, null], "empty": {}, "none": []
            },
            "transfer_to_agent": "billing",
        });
        let fields = fields.as_object().unwrap();
        let bytes = write_model_validate("google.adk.events.event_actions", "EventActions", fields);
        assert_eq!(&bytes[..2], b"\x80\x04");
        assert_eq!(read(&bytes).unwrap(), Value::Object(fields.clone()));
    }

    #[test]
    fn the_pydantic_state_form_reads_back_the_same() {
        let fields = json!({"state_delta": {"k": [1, "x", null]}, "escalate": true});
        let fields = fields.as_object().unwrap();
        let bytes = write_pydantic_state("m", "C", fields);
        assert_eq!(read(&bytes).unwrap(), Value::Object(fields.clone()));
        assert_eq!(
            read(&write_pydantic_state("m", "C", &Map::new())).unwrap(),
            json!({})
        );
    }

    #[test]
    fn integers_take_the_shortest_opcode() {
        let enc = |i: i64| {
            let mut out = Vec::new();
            int(&mut out, i128::from(i));
            out
        };
        assert_eq!(enc(7), b"K\x07");
        assert_eq!(enc(300), b"M\x2c\x01");
        assert_eq!(enc(-1), b"J\xff\xff\xff\xff");
        assert_eq!(enc(1 << 40), b"\x8a\x06\x00\x00\x00\x00\x00\x01");
        assert_eq!(enc(-(1 << 40)), b"\x8a\x06\x00\x00\x00\x00\x00\xff");
        assert_eq!(enc(0x80_0000_0000), b"\x8a\x06\x00\x00\x00\x00\x80\x00");
    }
}
