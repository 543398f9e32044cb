//! Generates the client from the committed OpenAPI document with progenitor, as is.
//!
//! The committed file is the document the service serves (`/openapi.json`), byte for byte:
//! `docs::served_document_is_the_committed_openapi_json` fails when they differ.

use std::{env, fs, path::Path};

const DOCUMENT: &str = "../../openapi/openapi.json";

fn main() {
    println!("cargo:rerun-if-changed={DOCUMENT}");
    let text = fs::read_to_string(DOCUMENT).expect("read openapi/openapi.json");
    let spec: openapiv3::OpenAPI =
        serde_json::from_str(&text).expect("openapi.json is an OpenAPI 3.0 document");
    let mut generator = progenitor::Generator::default();
    let tokens = generator
        .generate_tokens(&spec)
        .expect("progenitor generates a client");
    let out = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("client.rs");
    fs::write(out, tokens.to_string()).expect("write the generated client");
}
