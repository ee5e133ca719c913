//! Per-field validation rules (`PUT /admin/collections/:name/rules`): required, min/max,
//! min_length/max_length, pattern, enum, unique. Checked on every write path (create, update,
//! bulk, batch) through [`check`]; a violation is a 400 naming the field.

use std::collections::BTreeMap;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::catalog::ColumnType;
use crate::error::{ApiError, codes};

/// The rules of one field.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// The field's type; a field that does not exist yet is created with it.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(rename = "enum", default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Json>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unique: bool,
    #[serde(skip)]
    compiled: Option<Arc<Regex>>,
    #[serde(skip)]
    kind: Option<RuleType>,
}

impl FieldRule {
    /// The type the rule names, once [`prepare`]d.
    pub fn rule_type(&self) -> Option<RuleType> {
        self.kind
    }
}

/// What a rule's `type` names: JSON's type names as clients write them (`string`,
/// `number`, `integer`, `boolean`, `object`, `array`) or Ferrobase's column types (`text`,
/// `real`, `json`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleType {
    String,
    /// Any number: fits an integer or a real field.
    Number,
    Integer,
    Real,
    Boolean,
    Object,
    Array,
    Json,
}

impl RuleType {
    pub fn parse(name: &str) -> Option<RuleType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "string" | "text" => RuleType::String,
            "number" => RuleType::Number,
            "integer" | "int" => RuleType::Integer,
            "real" | "float" => RuleType::Real,
            "boolean" | "bool" => RuleType::Boolean,
            "object" => RuleType::Object,
            "array" => RuleType::Array,
            "json" => RuleType::Json,
            _ => return None,
        })
    }

    /// The type a field named with this rule type is created with.
    pub fn column_type(self) -> ColumnType {
        match self {
            RuleType::String => ColumnType::Text,
            RuleType::Integer => ColumnType::Integer,
            RuleType::Number | RuleType::Real => ColumnType::Real,
            RuleType::Boolean => ColumnType::Boolean,
            RuleType::Object | RuleType::Array | RuleType::Json => ColumnType::Json,
        }
    }

    /// Whether an existing field of type `column` can hold what this rule type names.
    pub fn fits(self, column: ColumnType) -> bool {
        match self {
            RuleType::Number => matches!(column, ColumnType::Integer | ColumnType::Real),
            other => other.column_type() == column,
        }
    }

    /// Whether `value` has the JSON shape this type names (the column type checks the rest).
    fn admits(self, value: &Json) -> bool {
        match self {
            RuleType::Object => value.is_object(),
            RuleType::Array => value.is_array(),
            _ => true,
        }
    }
}

/// Rules by field name.
pub type FieldRules = BTreeMap<String, FieldRule>;

/// Checks the rules' own consistency and compiles their patterns.
pub fn prepare(rules: &mut FieldRules) -> Result<(), ApiError> {
    for (field, rule) in rules.iter_mut() {
        // System fields are the server's to set: a rule on one could make every write fail.
        if super::names::is_system_column(field) {
            return Err(ApiError::bad_field(field, format!("'{field}' is a system field and takes no rules")));
        }
        if rule.allowed.as_ref().is_some_and(Vec::is_empty) {
            return Err(ApiError::bad_field(field, format!("'{field}': enum lists no value, so nothing would pass")));
        }
        if let Some(name) = &rule.ty {
            rule.kind = Some(RuleType::parse(name).ok_or_else(|| {
                ApiError::bad_field(
                    field,
                    format!(
                        "'{field}': type must be string, number, integer, boolean, object or array \
                         (or text, real, json)"
                    ),
                )
            })?);
        }
        if let (Some(min), Some(max)) = (rule.min, rule.max)
            && min > max
        {
            return Err(ApiError::bad_field(field, format!("'{field}': min is greater than max")));
        }
        if let (Some(min), Some(max)) = (rule.min_length, rule.max_length)
            && min > max
        {
            return Err(ApiError::bad_field(field, format!("'{field}': min_length is greater than max_length")));
        }
        if let Some(pattern) = &rule.pattern {
            let regex = RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| ApiError::bad_field(field, format!("'{field}': invalid pattern: {e}")))?;
            rule.compiled = Some(Arc::new(regex));
        }
    }
    Ok(())
}

/// Checks that each of `rule`'s constraints can apply to a field of type `column`: a
/// pattern or a length on a number, a bound on a text or an enum of values the field cannot
/// hold would be ignored or make the field unwritable, and are refused (400).
pub fn check_fits(field: &str, rule: &FieldRule, column: ColumnType) -> Result<(), ApiError> {
    let (numbers, texts) = (
        matches!(column, ColumnType::Integer | ColumnType::Real | ColumnType::Json),
        matches!(column, ColumnType::Text | ColumnType::Json),
    );
    let misfit = if (rule.min.is_some() || rule.max.is_some()) && !numbers {
        Some("min and max")
    } else if (rule.min_length.is_some() || rule.max_length.is_some()) && !texts {
        Some("min_length and max_length")
    } else if rule.pattern.is_some() && !texts {
        Some("a pattern")
    } else {
        None
    };
    if let Some(what) = misfit {
        return Err(ApiError::bad_field(field, format!("'{field}' is {}: {what} cannot apply to it", column.name())));
    }
    let holds = |value: &Json| match column {
        ColumnType::Text => value.is_string(),
        ColumnType::Integer => value.is_i64() || value.is_u64(),
        ColumnType::Real => value.is_number(),
        ColumnType::Boolean => value.is_boolean(),
        ColumnType::Json => true,
    };
    if let Some(bad) = rule.allowed.iter().flatten().find(|value| !value.is_null() && !holds(value)) {
        return Err(ApiError::bad_field(
            field,
            format!("'{field}' is {}: the enum value {bad} is not one it can hold", column.name()),
        ));
    }
    Ok(())
}

/// 400 for a value a rule refuses, with the code of the constraint the rule stands for (a
/// check, or not-null for a required field), as the tables surface's clients expect.
fn refused(field: &str, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadRequest { message: message.into(), field: Some(field.to_owned()), code: Some(code) }
}

/// Checks a write's fields against the rules: on create every required field must be given;
/// on update only the given fields are checked.
pub fn check(rules: &FieldRules, fields: &Map<String, Json>, creating: bool) -> Result<(), ApiError> {
    for (name, rule) in rules {
        match fields.get(name) {
            Some(value) => check_value(name, rule, value).map_err(|msg| refused(name, codes::CHECK, msg))?,
            None if creating && rule.required => {
                return Err(refused(name, codes::NOT_NULL, format!("'{name}' is required")));
            }
            None => {}
        }
    }
    Ok(())
}

/// Whether `value` satisfies `rule`; the message says why not.
pub fn check_value(name: &str, rule: &FieldRule, value: &Json) -> Result<(), String> {
    let empty = value.is_null() || value.as_str().is_some_and(str::is_empty);
    if empty {
        return if rule.required { Err(format!("'{name}' is required")) } else { Ok(()) };
    }
    if let Some(kind) = rule.kind
        && !kind.admits(value)
    {
        return Err(format!("'{name}' must be {}", if kind == RuleType::Object { "an object" } else { "an array" }));
    }
    if let Some(n) = value.as_f64() {
        if rule.min.is_some_and(|min| n < min) {
            return Err(format!("'{name}' must be at least {}", rule.min.unwrap_or_default()));
        }
        if rule.max.is_some_and(|max| n > max) {
            return Err(format!("'{name}' must be at most {}", rule.max.unwrap_or_default()));
        }
    }
    let length = match value {
        Json::String(s) => Some(s.chars().count()),
        Json::Array(a) => Some(a.len()),
        _ => None,
    };
    if let Some(len) = length {
        if rule.min_length.is_some_and(|min| len < min) {
            return Err(format!(
                "'{name}' must have at least {} characters or items",
                rule.min_length.unwrap_or_default()
            ));
        }
        if rule.max_length.is_some_and(|max| len > max) {
            return Err(format!(
                "'{name}' must have at most {} characters or items",
                rule.max_length.unwrap_or_default()
            ));
        }
    }
    if let (Some(regex), Some(text)) = (&rule.compiled, value.as_str())
        && !regex.is_match(text)
    {
        return Err(format!("'{name}' does not match the pattern {}", rule.pattern.as_deref().unwrap_or("")));
    }
    if let Some(allowed) = &rule.allowed
        && !allowed.contains(value)
    {
        return Err(format!("'{name}' must be one of {}", Json::Array(allowed.clone())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules(value: Json) -> FieldRules {
        let mut rules: FieldRules = serde_json::from_value(value).unwrap();
        prepare(&mut rules).unwrap();
        rules
    }

    #[test]
    fn constraints_must_fit_the_field_type() {
        let fits = |rule: Json, column| check_fits("f", &rules(json!({"f": rule}))["f"], column).is_ok();
        assert!(fits(json!({"min": 1, "max": 2}), ColumnType::Integer));
        assert!(fits(json!({"pattern": "^a", "min_length": 1}), ColumnType::Text));
        assert!(fits(json!({"max_length": 3}), ColumnType::Json));
        assert!(fits(json!({"enum": [1, 2.5]}), ColumnType::Real));
        assert!(fits(json!({"enum": [true]}), ColumnType::Boolean));
        assert!(!fits(json!({"pattern": "^a"}), ColumnType::Real));
        assert!(!fits(json!({"min_length": 1}), ColumnType::Integer));
        assert!(!fits(json!({"max": 1}), ColumnType::Text));
        assert!(!fits(json!({"enum": ["a"]}), ColumnType::Integer));
        assert!(!fits(json!({"enum": [1.5]}), ColumnType::Integer));
        assert!(!fits(json!({"enum": [1]}), ColumnType::Boolean));
    }

    #[test]
    fn each_rule_is_enforced() {
        let r = rules(json!({
            "title": {"required": true, "min_length": 3, "max_length": 5, "pattern": "^[a-z]+$"},
            "score": {"min": 0, "max": 10},
            "status": {"enum": ["draft", "live"]},
        }));
        let ok = |v: Json| check(&r, v.as_object().unwrap(), true);
        assert!(ok(json!({"title": "abc", "score": 10, "status": "live"})).is_ok());
        for (bad, field) in [
            (json!({}), "title"),
            (json!({"title": ""}), "title"),
            (json!({"title": null}), "title"),
            (json!({"title": "ab"}), "title"),
            (json!({"title": "abcdef"}), "title"),
            (json!({"title": "ABC"}), "title"),
            (json!({"title": "abc", "score": -1}), "score"),
            (json!({"title": "abc", "score": 10.5}), "score"),
            (json!({"title": "abc", "status": "gone"}), "status"),
        ] {
            match ok(bad.clone()) {
                Err(ApiError::BadRequest { field: Some(f), .. }) => assert_eq!(f, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        // Updates check only what they change.
        assert!(check(&r, json!({"score": 3}).as_object().unwrap(), false).is_ok());
        assert!(check(&r, json!({"title": null}).as_object().unwrap(), false).is_err());
    }

    #[test]
    fn json_type_names_map_onto_column_types() {
        assert!(RuleType::parse("number").unwrap().fits(ColumnType::Integer));
        assert!(RuleType::parse("number").unwrap().fits(ColumnType::Real));
        assert!(!RuleType::parse("integer").unwrap().fits(ColumnType::Real));
        assert!(RuleType::parse("string").unwrap().fits(ColumnType::Text));
        assert!(RuleType::parse("object").unwrap().fits(ColumnType::Json));
        assert!(RuleType::parse("array").unwrap().fits(ColumnType::Json));
        assert_eq!(RuleType::parse("number").unwrap().column_type(), ColumnType::Real);
        let r = rules(json!({"tags": {"type": "array"}, "meta": {"type": "object"}}));
        assert!(check(&r, json!({"tags": [1], "meta": {}}).as_object().unwrap(), true).is_ok());
        assert!(check(&r, json!({"tags": {}}).as_object().unwrap(), true).is_err());
        assert!(check(&r, json!({"meta": [1]}).as_object().unwrap(), true).is_err());
    }

    #[test]
    fn bad_rule_definitions_are_refused() {
        for bad in [
            json!({"a": {"pattern": "("}}),
            json!({"a": {"min": 5, "max": 1}}),
            json!({"a": {"min_length": 5, "max_length": 1}}),
        ] {
            let mut r: FieldRules = serde_json::from_value(bad.clone()).unwrap();
            assert!(prepare(&mut r).is_err(), "{bad}");
        }
        let mut unknown_type: FieldRules = serde_json::from_value(json!({"a": {"type": "float64"}})).unwrap();
        assert!(prepare(&mut unknown_type).is_err());
        assert!(serde_json::from_value::<FieldRules>(json!({"a": {"requird": true}})).is_err());
        assert!(serde_json::from_value::<FieldRules>(json!({"a": {"min": "one"}})).is_err());
    }
}
