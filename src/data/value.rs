//! [`Value`]: a database value as both backends bind and return it.

use serde::Serialize;

/// One value bound to, or read from, a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
    /// A JSON document: JSONB on PostgreSQL, JSON text on SQLite.
    Json(serde_json::Value),
    /// Bytes for a `BLOB` column on SQLite (see `text_formats::TextFormat::Bytes`); read
    /// back, they are the text of their hex form.
    Bytes(Vec<u8>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Real(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }

    /// A boolean as either backend stores it (SQLite keeps 0/1).
    pub fn as_bool(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            _ => false,
        }
    }

    /// A JSON document as either backend stores it (SQLite keeps JSON text).
    pub fn as_json(&self) -> serde_json::Value {
        match self {
            Value::Json(v) => v.clone(),
            Value::Text(s) => serde_json::from_str(s).unwrap_or_else(|_| s.clone().into()),
            other => other.to_json(),
        }
    }

    pub fn text(&self) -> Option<String> {
        self.as_text().map(str::to_owned)
    }

    /// The text, moved out rather than copied.
    pub fn into_text(self) -> Option<String> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The value as JSON, for values whose column type adds no meaning (system columns,
    /// internal tables).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Int(i) => (*i).into(),
            Value::Real(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            Value::Bool(b) => (*b).into(),
            Value::Text(s) => s.clone().into(),
            Value::Json(v) => v.clone(),
            Value::Bytes(b) => super::text_formats::hex_form(b).into(),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Real(f) => s.serialize_f64(*f),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Text(t) => s.serialize_str(t),
            Value::Json(v) => v.serialize(s),
            Value::Bytes(b) => s.serialize_str(&super::text_formats::hex_form(b)),
        }
    }
}
