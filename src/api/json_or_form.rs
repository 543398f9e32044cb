//! `JsonOrForm<T>`: the body of an operation that a page's form also posts to (`POST
//! /verify-email`, `POST /reset-password`): JSON from API clients, an urlencoded form from
//! a person's browser.
//!
//! Both are validated by `T`'s schema (see `json_body`); a form's fields are read as a
//! JSON object of strings. The document declares the JSON body only, as `/token`
//! declares only its form: several generators cannot take one body in two media types.
//! A form's validation problems do not end the request: the handler answers the person
//! with a page, not with JSON.

use super::{
    error::Error,
    form::{parse_fields, read_body, required_body, Fields},
    json_body::{from_json_bytes, validated},
};
use poem::{Request, RequestBody};
use poem_openapi::{
    registry::{MetaRequest, Registry},
    types::{ParseFromJSON, Type},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};

/// A request body of type `T`, sent as JSON or as a form.
pub enum JsonOrForm<T> {
    /// JSON, validated (a problem is a 422 before the handler runs).
    Json(T),
    /// A form: `T` or what is wrong with it, and the fields as sent.
    Form {
        parsed: Result<T, Error>,
        fields: Fields,
    },
}

impl<T> JsonOrForm<T> {
    /// Field `name` of a form, as sent (`None` for JSON, or when absent or empty).
    pub fn form_field(&self, name: &str) -> Option<&str> {
        match self {
            JsonOrForm::Json(_) => None,
            JsonOrForm::Form { fields, .. } => fields.get(name),
        }
    }
}

impl<'a, T: ParseFromJSON + Type> ApiExtractor<'a> for JsonOrForm<T> {
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
        let mime = req.content_type().unwrap_or_default();
        let mime = mime.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            let bytes = read_body(req, body).await?;
            let fields = parse_fields(mime, bytes).await;
            let parsed = validated(fields.to_json());
            return Ok(JsonOrForm::Form { parsed, fields });
        }
        let bytes = read_body(req, body).await?;
        Ok(JsonOrForm::Json(from_json_bytes(&bytes)?))
    }
}
