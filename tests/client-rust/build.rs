//! Generates the client from the committed OpenAPI document with progenitor.
//!
//! progenitor 0.15 cannot express two parts of the document, both correct OpenAPI, so
//! the copy it reads is narrowed first (the document itself is not changed):
//! - a request body with more than one media type (`/token` takes a urlencoded or a
//!   multipart form): only `application/x-www-form-urlencoded` is kept;
//! - error responses of more than one schema in one operation (`/token` answers 422 with
//!   `HTTPValidationError`, its other errors with `HTTPError`): only the schema most of them
//!   use is kept; the others reach the caller as `Error::UnexpectedResponse`.

use std::{collections::BTreeMap, env, fs, path::Path};

use serde_json::Value;

const DOCUMENT: &str = "../../openapi/openapi.json";

fn main() {
    println!("cargo:rerun-if-changed={DOCUMENT}");
    let text = fs::read_to_string(DOCUMENT).expect("read openapi/openapi.json");
    let mut document: Value = serde_json::from_str(&text).expect("openapi.json is JSON");
    narrow_for_progenitor(&mut document);
    let spec: openapiv3::OpenAPI =
        serde_json::from_value(document).expect("openapi.json is an OpenAPI 3.0 document");
    let mut generator = progenitor::Generator::default();
    let tokens = generator
        .generate_tokens(&spec)
        .expect("progenitor generates a client");
    let out = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("client.rs");
    fs::write(out, tokens.to_string()).expect("write the generated client");
}

fn narrow_for_progenitor(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        if let Some(content) = operation
            .pointer_mut("/requestBody/content")
            .and_then(Value::as_object_mut)
        {
            if content.len() > 1 {
                content.retain(|media, _| media == "application/x-www-form-urlencoded");
            }
        }
        if let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        {
            let schema_of =
                |response: &Value| response["content"]["application/json"]["schema"].to_string();
            let mut uses: BTreeMap<String, usize> = BTreeMap::new();
            for (status, response) in responses.iter() {
                if !status.starts_with('2') {
                    *uses.entry(schema_of(response)).or_default() += 1;
                }
            }
            if let Some((common, _)) = uses.into_iter().max_by_key(|(_, n)| *n) {
                responses.retain(|status, response| {
                    status.starts_with('2') || schema_of(response) == common
                });
            }
        }
    }
}
