//! JSON text read strictly enough for account data: duplicate keys noticed (serde_json
//! keeps the last one silently), a UTF-8 byte-order mark accepted, and text that is not
//! UTF-8 named for what it is (UTF-16 as PowerShell 5 writes it, or invalid UTF-8 at a
//! byte offset).

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// How many duplicate keys a [`Parsed`] lists.
const MAX_DUPLICATES: usize = 20;

/// A JSON document and the keys it gives more than once.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The document; of a repeated key, the last value is kept (as serde_json does).
    pub value: Value,
    /// The path of every key given more than once in its object (`IpPermissions[0].FromPort`),
    /// in document order, at most 20.
    pub duplicates: Vec<String>,
}

/// Parses JSON text, noting duplicate keys at every depth.
pub fn parse(text: &str) -> Result<Parsed, serde_json::Error> {
    let duplicates = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Seed {
        path: String::new(),
        duplicates: &duplicates,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(Parsed {
        value,
        duplicates: duplicates.into_inner(),
    })
}

/// Why bytes are not JSON text sgsim can read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// UTF-16 text (a byte-order mark, or NUL bytes between ASCII characters).
    #[error(
        "the file is UTF-16 ({0}), not UTF-8 (PowerShell 5 writes UTF-16 with `>`; use \
         `Out-File -Encoding utf8` or convert the file)"
    )]
    Utf16(&'static str),
    /// Bytes that are not UTF-8.
    #[error("invalid UTF-8 at byte offset {0}")]
    InvalidUtf8(usize),
}

/// The text of a JSON file: UTF-8, with a leading byte-order mark dropped.
pub fn text(bytes: &[u8]) -> Result<&str, TextError> {
    if bytes.starts_with(&[0xff, 0xfe]) {
        return Err(TextError::Utf16("little-endian, with a byte-order mark"));
    }
    if bytes.starts_with(&[0xfe, 0xff]) {
        return Err(TextError::Utf16("big-endian, with a byte-order mark"));
    }
    let (mark, bytes) = match bytes.strip_prefix(&[0xef, 0xbb, 0xbf]) {
        Some(rest) => (3, rest),
        None => (0, bytes),
    };
    match std::str::from_utf8(bytes) {
        Ok(t) if t.len() >= 2 && t.as_bytes()[1] == 0 && t.as_bytes()[0] != 0 => {
            Err(TextError::Utf16("little-endian, without a byte-order mark"))
        }
        Ok(t) if t.len() >= 2 && t.as_bytes()[0] == 0 && t.as_bytes()[1] != 0 => {
            Err(TextError::Utf16("big-endian, without a byte-order mark"))
        }
        Ok(t) => Ok(t),
        // Past a dropped mark, offsets still count from the start of the file.
        Err(e) => Err(TextError::InvalidUtf8(e.valid_up_to() + mark)),
    }
}

struct Seed<'a> {
    path: String,
    duplicates: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let seed = Seed {
                path: format!("{}[{}]", self.path, out.len()),
                duplicates: self.duplicates,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            let seed = Seed {
                path: path.clone(),
                duplicates: self.duplicates,
            };
            let value = map.next_value_seed(seed)?;
            if out.insert(key, value).is_some() {
                let mut d = self.duplicates.borrow_mut();
                if d.len() < MAX_DUPLICATES {
                    d.push(path);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_json_keys_are_noticed_at_every_depth() {
        let p = parse(r#"{"a": 1, "b": [{"c": 1, "c": 2}], "a": 3}"#).unwrap();
        assert_eq!(p.duplicates, ["b[0].c", "a"]);
        assert_eq!(p.value["a"], 3);
        assert_eq!(p.value["b"][0]["c"], 2);
        let p = parse(r#"{"x": {"y": null}, "z": [1.5, "s", true]}"#).unwrap();
        assert!(p.duplicates.is_empty());
        assert_eq!(
            p.value,
            serde_json::json!({"x": {"y": null}, "z": [1.5, "s", true]})
        );
        assert!(parse("{} x").is_err());
        assert!(parse(&"[".repeat(10_000)).is_err(), "depth stays bounded");
    }

    #[test]
    fn export_text_accepts_a_bom_and_names_utf16_and_bad_bytes() {
        assert_eq!(text(b"\xef\xbb\xbf{}").unwrap(), "{}");
        assert_eq!(
            text(b"\xff\xfe{\x00}\x00"),
            Err(TextError::Utf16("little-endian, with a byte-order mark"))
        );
        assert_eq!(
            text(b"{\x00}\x00"),
            Err(TextError::Utf16("little-endian, without a byte-order mark"))
        );
        assert_eq!(
            text(b"\xfe\xff\x00{"),
            Err(TextError::Utf16("big-endian, with a byte-order mark"))
        );
        assert_eq!(
            text(b"{\"a\": \"\xc3\x28\"}"),
            Err(TextError::InvalidUtf8(7))
        );
        assert_eq!(
            text(b"\xef\xbb\xbf{\"a\": \"\xff\"}"),
            Err(TextError::InvalidUtf8(10))
        );
    }
}
