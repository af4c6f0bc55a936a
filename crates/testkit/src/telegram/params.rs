//! A Bot API request's parameters, however they came: the Bot API accepts a query string, a JSON
//! body, an urlencoded form or `multipart/form-data`, and clients use all four (teloxide sends JSON,
//! and multipart for every method that can upload a file, even when it sends a `file_id`).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::{Map, Value};

use super::ApiError;

/// Uploads up to the Bot API's 50 MB limit for bots.
pub(crate) const MAX_BODY: usize = 50 * 1024 * 1024;

/// The parameters of one request. Values from forms stay strings: the Bot API reads numbers and
/// JSON-serialized objects out of strings, so the accessors below do too.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pub(crate) fields: Map<String, Value>,
    pub(crate) files: HashMap<String, Upload>,
}

/// A file part of a multipart request.
#[derive(Clone, Debug)]
pub(crate) struct Upload {
    pub(crate) file_name: Option<String>,
    pub(crate) bytes: Vec<u8>,
}

impl Params {
    pub(crate) async fn from_request(request: Request) -> Result<Params, ApiError> {
        let mut params = Params::default();
        if let Some(query) = request.uri().query() {
            params.add_urlencoded(query.as_bytes());
        }
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .unwrap_or_default();
        match content_type.as_str() {
            "multipart/form-data" => params.add_multipart(request).await?,
            "application/json" => {
                let body = body_bytes(request.into_body()).await?;
                if !body.is_empty() {
                    let Ok(Value::Object(fields)) = serde_json::from_slice(&body) else {
                        return Err(ApiError::bad_request("can't parse JSON object"));
                    };
                    params.fields.extend(fields);
                }
            }
            _ => {
                // The Bot API reads any other body as an urlencoded form, like PHP would.
                let body = body_bytes(request.into_body()).await?;
                params.add_urlencoded(&body);
            }
        }
        Ok(params)
    }

    fn add_urlencoded(&mut self, form: &[u8]) {
        for (key, value) in form_pairs(form) {
            self.fields.insert(key, Value::String(value));
        }
    }

    async fn add_multipart(&mut self, request: Request) -> Result<(), ApiError> {
        let malformed = |e: axum::extract::multipart::MultipartError| {
            ApiError::bad_request(&format!("can't parse multipart/form-data: {e}"))
        };
        let mut multipart =
            Multipart::from_request(request, &()).await.map_err(|_| ApiError::bad_request("bad multipart"))?;
        while let Some(field) = multipart.next_field().await.map_err(malformed)? {
            let Some(name) = field.name().map(str::to_owned) else { continue };
            // A part with a file name is a file, even an empty name: that is how reqwest (and so
            // teloxide) marks in-memory uploads.
            let file_name = field.file_name().map(str::to_owned);
            let bytes = field.bytes().await.map_err(malformed)?.to_vec();
            match file_name {
                Some(file_name) => {
                    let file_name = Some(file_name).filter(|n| !n.is_empty());
                    self.files.insert(name, Upload { file_name, bytes });
                }
                None => {
                    self.fields.insert(name, Value::String(String::from_utf8_lossy(&bytes).into_owned()));
                }
            }
        }
        Ok(())
    }

    /// Everything but the files, as the test sees it in [`super::SentMessage::params`].
    pub(crate) fn to_json(&self) -> Value {
        Value::Object(self.fields.clone())
    }

    pub(crate) fn str(&self, key: &str) -> Option<String> {
        match self.fields.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| invalid(key)),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid(key)),
            Some(_) => Err(invalid(key)),
        }
    }

    pub(crate) fn bool(&self, key: &str) -> bool {
        match self.fields.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => matches!(s.as_str(), "true" | "True" | "1"),
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            _ => false,
        }
    }

    /// An object or array parameter, sent as JSON or, in forms, as a JSON-serialized string.
    pub(crate) fn json(&self, key: &str) -> Result<Option<Value>, ApiError> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => serde_json::from_str(s).map(Some).map_err(|_| invalid(key)),
            Some(other) => Ok(Some(other.clone())),
        }
    }

    /// `chat_id`: an integer, or a string holding one. `@channelusername` names no chat this fake knows.
    pub(crate) fn chat_id(&self) -> Result<i64, ApiError> {
        match self.fields.get("chat_id") {
            None | Some(Value::Null) => Err(ApiError::bad_request("chat_id is empty")),
            Some(Value::String(s)) if s.is_empty() => Err(ApiError::bad_request("chat_id is empty")),
            _ => self.int("chat_id").ok().flatten().ok_or_else(|| ApiError::bad_request("chat not found")),
        }
    }
}

fn invalid(key: &str) -> ApiError {
    ApiError::bad_request(&format!("invalid {key} specified"))
}

async fn body_bytes(body: Body) -> Result<Vec<u8>, ApiError> {
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| ApiError::new(413, "Request Entity Too Large"))
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn form_pairs(form: &[u8]) -> Vec<(String, String)> {
    form.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut halves = pair.splitn(2, |&b| b == b'=');
            let key = percent_decode(halves.next().unwrap_or_default(), true);
            let value = percent_decode(halves.next().unwrap_or_default(), true);
            (key, value)
        })
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space in forms); invalid escapes stay as they are.
pub(crate) fn percent_decode(input: &[u8], plus_is_space: bool) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' if i + 2 < input.len() => match (hex(input[i + 1]), hex(input[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
