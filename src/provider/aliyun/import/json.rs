//! Fields of an export read with their JSON paths: Alibaba's empty strings as absent, a
//! single object where a list is expected as a list of one.

use serde_json::{Map, Value};

use crate::provider::ImportError;

pub(super) struct Ctx<'a> {
    pub(super) path: &'a str,
    pub(super) warnings: Vec<String>,
}

impl Ctx<'_> {
    pub(super) fn err(&self, field: impl Into<String>, why: impl Into<String>) -> ImportError {
        ImportError::Field {
            path: self.path.to_string(),
            field: field.into(),
            why: why.into(),
        }
    }

    pub(super) fn warn(&mut self, what: String) {
        self.warnings.push(format!("{}: {what}", self.path));
    }
}

/// A string field: absent, null and `""` are `None`; numbers and booleans are read as text.
pub(super) fn text(
    ctx: &Ctx,
    o: &Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<String>, ImportError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(ctx.err(format!("{at}{key}"), "expected a string")),
    }
}

/// The items of an XML-style wrapper `{"Inner": [...]}` (or `{"Inner": {...}}` for one item).
pub(super) fn items<'v>(
    ctx: &Ctx,
    o: &'v Map<String, Value>,
    at: &str,
    outer: &str,
    inner: &str,
) -> Result<Vec<&'v Value>, ImportError> {
    let wrapper = match o.get(outer) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::Array(a)) if a.is_empty() => return Ok(Vec::new()),
        Some(Value::Object(w)) => w,
        Some(_) => {
            return Err(ctx.err(
                format!("{at}{outer}"),
                format!("expected an object {{\"{inner}\": [...]}}"),
            ))
        }
    };
    match wrapper.get(inner) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a.iter().collect()),
        Some(v @ (Value::Object(_) | Value::String(_))) => Ok(vec![v]),
        Some(_) => Err(ctx.err(format!("{at}{outer}.{inner}"), "expected a list")),
    }
}

pub(super) fn object<'v>(
    ctx: &Ctx,
    v: &'v Value,
    at: &str,
) -> Result<&'v Map<String, Value>, ImportError> {
    v.as_object()
        .ok_or_else(|| ctx.err(at.to_string(), "expected an object"))
}

pub(super) fn boolean(
    ctx: &Ctx,
    o: &Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<bool>, ImportError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(ctx.err(format!("{at}{key}"), "expected true or false")),
    }
}
