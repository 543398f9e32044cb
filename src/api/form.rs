//! Form bodies: [`FormBody<T>`] reads a urlencoded or multipart body within the size and
//! time limits, and each form ([`FormRequest`]) declares its schema for the document and
//! builds itself from the [`Fields`] sent, answering a missing field in its operation's
//! style ([`ErrorStyle`]): FastAPI's 422 or OAuth's 400.
//!
//! A request-body extractor of our own instead of poem-openapi's `Form<T>`/`Multipart<T>`:
//! those answer a missing field or a JSON body with a plain-text 400/415, while FastAPI
//! clients expect 422 with one pydantic-style entry per field, and OAuth clients an OAuth
//! error. The document declares the urlencoded form only, as FastAPI does: several
//! generators cannot take one body in two media types (openapi-python-client generates
//! code that does not import, progenitor panics). Multipart is accepted all the same.

use futures_util::stream;
use poem::{Request, RequestBody};
use poem_openapi::{
    registry::{MetaMediaType, MetaRequest, Registry},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};

use super::error::{Error, ValidationError};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The media type the document declares for every form.
const URLENCODED: &str = "application/x-www-form-urlencoded";

/// A form an operation takes in its body, read by [`FormBody`].
pub trait FormRequest: Sized + Send {
    /// The form as the OpenAPI document describes it.
    type Schema: poem_openapi::types::Type;

    /// The form from the fields sent, or the error its operation answers.
    fn from_fields(fields: &Fields) -> Result<Self, Error>;
}

/// A request body read as the form `T`.
pub struct FormBody<T>(pub T);

impl<'a, T: FormRequest> ApiExtractor<'a> for FormBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <T::Schema as poem_openapi::types::Type>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(required_body::<T::Schema>(&[URLENCODED]))
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = read_body(req, body).await?;
        let fields = parse_fields(req.content_type().unwrap_or_default(), bytes).await;
        Ok(Self(T::from_fields(&fields)?))
    }
}

/// How an operation answers a missing field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// FastAPI's 422 with a `missing` entry for the field.
    FastApi,
    /// OAuth's 400 `invalid_request` (RFC 6749 §5.2, RFC 7009 §2.2.1).
    OAuth,
}

/// The fields of a form body, as sent.
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl FromIterator<(String, String)> for Fields {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Self(pairs.into_iter().collect())
    }
}

impl Fields {
    /// The value of field `name`: the last one sent, empty counting as absent (FastAPI's
    /// rules).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The fields as a JSON object of strings, each with its value as [`Self::get`]
    /// reads it (empty ones left out): a form read as a JSON body would be.
    pub fn to_json(&self) -> serde_json::Value {
        let object = self
            .0
            .iter()
            .filter_map(|(name, _)| Some((name.clone(), self.get(name)?.to_owned().into())))
            .collect();
        serde_json::Value::Object(object)
    }

    /// The value of field `name` (see [`Self::get`]), or the error of a missing one in
    /// `style`.
    pub fn required(&self, name: &str, style: ErrorStyle) -> Result<&str, Error> {
        self.get(name).ok_or_else(|| match style {
            ErrorStyle::FastApi => Error::Validation(vec![ValidationError::missing(name)]),
            ErrorStyle::OAuth => Error::invalid_request(format!("The {name} parameter is missing")),
        })
    }
}

/// A required request body of schema `T` in each of `content_types`, for the document.
pub(super) fn required_body<T: poem_openapi::types::Type>(
    content_types: &[&'static str],
) -> MetaRequest {
    MetaRequest {
        description: None,
        content: content_types
            .iter()
            .map(|content_type| MetaMediaType {
                content_type,
                schema: T::schema_ref(),
            })
            .collect(),
        required: true,
    }
}

/// The request body, at most [`MAX_BODY_BYTES`] (else 413) and within the client timeout
/// (else 408). A body that cannot be read is empty: validation then says what is missing.
pub(super) async fn read_body(
    req: &Request,
    body: &mut RequestBody,
) -> Result<bytes::Bytes, Error> {
    // A client trickling its body must not hold a connection (and this task) for ever.
    let deadline = super::app_state(req)?.client_timeout;
    let read = body
        .take()
        .map_err(|e| Error::Internal(e.to_string()))?
        .into_bytes_limit(MAX_BODY_BYTES);
    match tokio::time::timeout(deadline, read).await {
        Err(_elapsed) => Err(Error::RequestTimeout),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(poem::error::ReadBodyError::PayloadTooLarge)) => Err(Error::BodyTooLarge),
        Ok(Err(_)) => Ok(bytes::Bytes::new()),
    }
}

/// The form fields of a body: urlencoded or multipart, anything else has none.
pub(super) async fn parse_fields(content_type: &str, bytes: bytes::Bytes) -> Fields {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case(URLENCODED) {
        form_urlencoded::parse(&bytes).into_owned().collect()
    } else if mime.eq_ignore_ascii_case("multipart/form-data") {
        parse_multipart(content_type, bytes)
            .await
            .unwrap_or_default()
    } else {
        Fields::default()
    }
}

async fn parse_multipart(content_type: &str, bytes: bytes::Bytes) -> Result<Fields, multer::Error> {
    let boundary = multer::parse_boundary(content_type)?;
    let body = stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
    let mut multipart = multer::Multipart::new(body, boundary);
    let mut fields = Vec::new();
    while let Some(field) = multipart.next_field().await? {
        let name = field.name().unwrap_or_default().to_owned();
        let value = String::from_utf8_lossy(&field.bytes().await?).into_owned();
        fields.push((name, value));
    }
    Ok(Fields(fields))
}
