//! One export file's fields read with their JSON paths, for errors and warnings that say
//! where.

use serde_json::{Map, Value};

use crate::model::{Cidr, Family};
use crate::provider::ImportError;

/// One file being read: its name, for errors and warnings.
pub(super) struct File<'a> {
    pub(super) path: &'a str,
}

impl File<'_> {
    pub(super) fn err(&self, field: &str, why: impl Into<String>) -> ImportError {
        ImportError::Field {
            path: self.path.to_string(),
            field: field.to_string(),
            why: why.into(),
        }
    }

    pub(super) fn object<'v>(
        &self,
        v: &'v Value,
        path: &str,
    ) -> Result<&'v Map<String, Value>, ImportError> {
        v.as_object()
            .ok_or_else(|| self.err(path, format!("expected an object, found {}", kind(v))))
    }

    pub(super) fn array<'v>(
        &self,
        o: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<&'v [Value], ImportError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(self.err(
                &join(path, key),
                format!("expected an array, found {}", kind(v)),
            )),
        }
    }

    pub(super) fn opt_str<'v>(
        &self,
        o: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<&'v str>, ImportError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(self.err(
                &join(path, key),
                format!("expected a string, found {}", kind(v)),
            )),
        }
    }

    pub(super) fn req_str<'v>(
        &self,
        o: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<&'v str, ImportError> {
        match self.opt_str(o, key, path)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(self.err(&join(path, key), "missing")),
        }
    }

    pub(super) fn opt_int(
        &self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<i64>, ImportError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                self.err(&join(path, key), format!("expected an integer, found {v}"))
            }),
        }
    }

    pub(super) fn opt_bool(
        &self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<bool>, ImportError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(&join(path, key), format!("expected a boolean, found {v}"))),
        }
    }

    /// A CIDR of the given family; host bits are cleared with a warning.
    pub(super) fn cidr(
        &self,
        text: &str,
        family: Option<Family>,
        field: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Cidr, ImportError> {
        let (cidr, changed) =
            Cidr::parse_lenient(text.trim()).map_err(|e| self.err(field, e.to_string()))?;
        if let Some(f) = family {
            if cidr.family() != f {
                return Err(self.err(
                    field,
                    format!(
                        "'{text}' is an {} block where an {} block is expected",
                        family_name(cidr.family()),
                        family_name(f)
                    ),
                ));
            }
        }
        if changed {
            warnings.push(format!(
                "{}: {field}: CIDR '{text}' has host bits set; canonicalized to {cidr} (as EC2 does)",
                self.path
            ));
        } else if !text.contains('/') {
            warnings.push(format!(
                "{}: {field}: '{text}' has no prefix length; read as {cidr}",
                self.path
            ));
        }
        Ok(cidr)
    }
}

pub(super) fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
