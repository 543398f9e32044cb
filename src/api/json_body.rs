//! `JsonBody<T>`: a JSON request body validated the way FastAPI (pydantic) reports it.
//!
//! A request-body extractor of our own instead of poem-openapi's `Json<T>`: that answers a
//! missing field, a wrong type or a non-JSON body with a plain-text 400, while FastAPI
//! clients expect 422 with one `{"type","loc","msg","input"}` entry per problem. The
//! checks come from `T`'s own schema (required fields, `nullable`, types, lengths, enums),
//! so the document
//! and the validation cannot disagree; the body is then parsed by poem-openapi as usual.

use poem::{Request, RequestBody};
use poem_openapi::{
    registry::{MetaRequest, MetaSchema, MetaSchemaRef, Registry},
    types::{ParseFromJSON, Type},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};
use regex::Regex;
use serde_json::Value;

use super::{
    error::{Error, ValidationError},
    form::{read_body, required_body},
};

/// A JSON body of type `T`, or a 422 listing every problem.
pub struct JsonBody<T>(pub T);

impl<'a, T: ParseFromJSON + Type> ApiExtractor<'a> for JsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(required_body::<T>(&["application/json"]))
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = read_body(req, body).await?;
        Ok(Self(from_json_bytes(&bytes)?))
    }
}

/// `bytes` parsed as JSON and validated as a `T`, or a 422 listing every problem.
pub(super) fn from_json_bytes<T: ParseFromJSON + Type>(bytes: &[u8]) -> Result<T, Error> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        let position = offset(bytes, e.line(), e.column());
        Error::Validation(vec![ValidationError::json_invalid(
            position,
            &e.to_string(),
        )])
    })?;
    validated(value)
}

/// `value` as a `T`, or a 422 listing every problem.
pub(super) fn validated<T: ParseFromJSON + Type>(value: Value) -> Result<T, Error> {
    let problems = problems::<T>(&value);
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    T::parse_from_json(Some(value)).map_err(|e| {
        let message = e.into_message();
        Error::Validation(vec![ValidationError::value_error("", &message)])
    })
}

/// The byte offset of a serde_json error's 1-based line and column.
fn offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = bytes
        .split(|b| *b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    line_start + column.saturating_sub(1)
}

/// What pydantic would report about `value` as a `T`: a non-object body, missing required
/// fields, values of the wrong type, strings outside their length limits.
fn problems<T: Type>(value: &Value) -> Vec<ValidationError> {
    let mut registry = Registry::new();
    T::register(&mut registry);
    let schema = match T::schema_ref() {
        MetaSchemaRef::Reference(name) => registry.schemas.remove(&name),
        MetaSchemaRef::Inline(schema) => Some(*schema),
    };
    let Some(schema) = schema else {
        return Vec::new();
    };
    let Some(object) = value.as_object() else {
        let loc = vec!["body".to_owned()];
        return vec![ValidationError::wrong_type(loc, "object", value.clone())];
    };
    let mut found = Vec::new();
    for (name, property) in &schema.properties {
        let Some(property) = resolve(&registry, property) else {
            continue;
        };
        match object.get(*name) {
            None if schema.required.contains(name) => found.push(ValidationError::missing(name)),
            None => {}
            // `null` only where the schema says `nullable`, as pydantic's `Optional`.
            Some(Value::Null) if property.nullable => {}
            Some(value) => check(&registry, name, property, value, &mut found),
        }
    }
    found
}

/// The schema `schema` names, inline or registered.
fn resolve<'r>(registry: &'r Registry, schema: &'r MetaSchemaRef) -> Option<&'r MetaSchema> {
    match schema {
        MetaSchemaRef::Inline(schema) => Some(schema),
        MetaSchemaRef::Reference(name) => registry.schemas.get(name),
    }
}

fn check(
    registry: &Registry,
    name: &str,
    schema: &MetaSchema,
    value: &Value,
    found: &mut Vec<ValidationError>,
) {
    let loc = || vec!["body".to_owned(), name.to_owned()];
    // Secrets are never echoed, as pydantic's `SecretStr` masks them.
    let input = || {
        if schema.format == Some("password") {
            Value::String("**********".to_owned())
        } else {
            value.clone()
        }
    };
    match (schema.ty, value) {
        ("string", Value::String(s)) => {
            let chars = s.chars().count();
            if let Some(max) = schema.max_length.filter(|max| chars > *max) {
                found.push(ValidationError::too_long(name, max, "characters", input()));
            }
            if let Some(min) = schema.min_length.filter(|min| chars < *min) {
                found.push(ValidationError::too_short(name, min, input()));
            }
            if let Some(pattern) = &schema.pattern {
                // The schema's own patterns: an invalid one is a bug the tests would show.
                if Regex::new(pattern).is_ok_and(|re| !re.is_match(s)) {
                    found.push(ValidationError::pattern_mismatch(name, pattern, s));
                }
            }
        }
        ("boolean", Value::Bool(_)) => {}
        ("array", Value::Array(items)) => {
            let Some(item) = schema.items.as_deref().and_then(|i| resolve(registry, i)) else {
                return;
            };
            for (index, element) in items.iter().enumerate() {
                let mut at = loc();
                at.push(index.to_string());
                if item.ty == "string" && !element.is_string() {
                    found.push(ValidationError::wrong_type(at, "string", element.clone()));
                } else if !item.enum_items.is_empty() && !item.enum_items.contains(element) {
                    found.push(ValidationError::not_in_enum(
                        at,
                        &item.enum_items,
                        element.clone(),
                    ));
                }
            }
        }
        ("string" | "boolean" | "array", _) => {
            found.push(ValidationError::wrong_type(loc(), schema.ty, input()));
        }
        _ => {}
    }
}
