//! The JSON Schema of the config file (`authgate schema`), for editors.

use std::collections::BTreeMap;

use auth_core::{OptionDoc, Registry};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value, json};

use super::model::Config;

/// `on_reject` values.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum OnRejectSchema {
    /// Try the next backend.
    Next,
    /// Stop: this backend is authoritative for its users.
    Stop,
}

/// `on_error` values.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum OnErrorSchema {
    /// Stop and deny (fail closed).
    Deny,
    /// Try the next backend.
    Next,
}

/// `provision` values.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum ProvisionSchema {
    /// Do not mirror.
    None,
    /// Create the local user on first login only.
    Create,
    /// Create on first login and refresh on every login.
    Update,
}

/// One chain entry.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ChainEntrySchema {
    /// Unique name; recorded in sessions and sent as `X-Remote-Backend`.
    name: String,
    /// Registered backend type (`authgate backends` lists them).
    #[schemars(rename = "type")]
    type_name: String,
    /// `next` (default) or `stop`.
    #[schemars(default)]
    on_reject: Option<OnRejectSchema>,
    /// `deny` (default) or `next`.
    on_error: Option<OnErrorSchema>,
    /// Time budget for one call, e.g. `3s` (default 5s).
    timeout: Option<String>,
    /// `none` (default), `create` or `update`.
    provision: Option<ProvisionSchema>,
    /// The backend type's options.
    options: Option<BTreeMap<String, Value>>,
}

pub(crate) fn one_or_many_strings(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "oneOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "string"}}
        ]
    })
}

pub(crate) fn secure_setting(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "auto (Secure unless public_url is plain HTTP on 127.0.0.1 / localhost), true or false",
        "oneOf": [{"type": "boolean"}, {"const": "auto"}],
        "default": "auto"
    })
}

pub(crate) fn access(_: &mut SchemaGenerator) -> Schema {
    let list = |key: &str| {
        json!({
            "type": "object",
            "properties": {key: {"type": "array", "items": {"type": "string"}, "minItems": 1}},
            "required": [key],
            "additionalProperties": false
        })
    };
    json_schema!({
        "description": "public, authenticated, deny, {groups: [...]} or {users: [...]}",
        "oneOf": [
            {"enum": ["public", "authenticated", "deny"]},
            list("groups"),
            list("users")
        ]
    })
}

/// The JSON type of an option, from its Rust type as written.
fn option_type(ty: &str) -> Value {
    let ty = ty.replace(' ', "");
    let inner = ty
        .strip_prefix("Option<")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(&ty);
    let last = inner.rsplit("::").next().unwrap_or(inner);
    match last {
        "String" | "Duration" | "Secret" | "PathBuf" | "Url" => json!({"type": "string"}),
        "bool" => json!({"type": "boolean"}),
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" => {
            json!({"type": "integer"})
        }
        "f32" | "f64" => json!({"type": "number"}),
        t if t.starts_with("Vec<") => json!({"type": "array"}),
        t if t.starts_with("BTreeMap<") || t.starts_with("HashMap<") => json!({"type": "object"}),
        _ => json!({}),
    }
}

fn options_schema(options: &[OptionDoc]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for o in options {
        let mut p = option_type(o.ty);
        if let Some(obj) = p.as_object_mut() {
            let mut description = o.doc.trim().to_string();
            if o.secret {
                description.push_str(" (secret: a literal, env:NAME or file:PATH)");
            }
            obj.insert("description".into(), Value::String(description));
            if let Some(d) = o.default {
                obj.insert("default".into(), Value::String(d.to_string()));
            }
        }
        if o.required {
            required.push(Value::String(o.name.to_string()));
        }
        properties.insert(o.name.to_string(), p);
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

/// The config's JSON Schema, with each registered backend type's options as one `oneOf`
/// branch of `chain[]`, keyed by `type`.
pub fn config_schema(registry: &Registry) -> Value {
    let mut root = schemars::schema_for!(Config).to_value();
    let variants: Vec<Value> = registry
        .iter()
        .map(|reg| {
            json!({
                "description": reg.description.trim(),
                "properties": {
                    "type": {"const": reg.type_name},
                    "options": options_schema(reg.options)
                }
            })
        })
        .collect();
    if let Some(entry) = root
        .pointer_mut("/$defs/ChainEntrySchema")
        .and_then(Value::as_object_mut)
    {
        entry.insert("oneOf".into(), Value::Array(variants));
    }
    root
}
