//! Request extractors whose rejections are [`ApiError`]s: every malformed body, query or
//! path gets the JSON error shape and the right status, never axum's plain text.

use std::collections::HashMap;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::error::ApiError;

/// A JSON body.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(&rejection, state.config.max_body_bytes)),
        }
    }
}

/// An optional JSON body: absent when the request has no body at all.
impl<T: DeserializeOwned> axum::extract::OptionalFromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Option<Self>, ApiError> {
        let headers = req.headers();
        let empty = headers.get(header::CONTENT_TYPE).is_none()
            && headers
                .get(header::CONTENT_LENGTH)
                .is_none_or(|v| v.as_bytes() == b"0");
        if empty {
            return Ok(None);
        }
        <Self as FromRequest<AppState>>::from_request(req, state)
            .await
            .map(Some)
    }
}

fn json_rejection(r: &JsonRejection, limit: usize) -> ApiError {
    match r {
        JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::payload_too_large(limit)
        }
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::invalid_request("the body must be JSON with `Content-Type: application/json`")
        }
        JsonRejection::JsonDataError(e) => {
            ApiError::invalid_request(format!("invalid body: {}", e.body_text()))
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::invalid_request(format!("malformed JSON: {}", e.body_text()))
        }
        other => ApiError::invalid_request(other.body_text()),
    }
}

/// Query parameters.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::invalid_request(format!("invalid query: {}", e.body_text()))
            })
    }
}

/// Path parameters.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e: PathRejection| ApiError::invalid_request(e.body_text()))
    }
}

/// Parameters that may appear more than once: RFC 8707 §2 `resource` and RFC 8693 §2.1
/// `audience`.
const REPEATABLE: [&str; 2] = ["resource", "audience"];

/// An `application/x-www-form-urlencoded` body in which every parameter appears at most
/// once (RFC 6749 §3.2) — except the few specs allow to repeat — and has a non-empty value
/// (empty counts as absent, §3.1).
#[derive(Debug, Default)]
pub struct Form {
    single: HashMap<String, String>,
    repeated: HashMap<String, Vec<String>>,
}

impl Form {
    /// A parameter's value.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.single.get(name).map(String::as_str)
    }

    /// Every value of a repeatable parameter, in order.
    #[must_use]
    pub fn get_all(&self, name: &str) -> &[String] {
        self.repeated.get(name).map_or(&[], Vec::as_slice)
    }
}

impl FromRequest<AppState> for Form {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(ApiError::invalid_request(
                "the body must be `application/x-www-form-urlencoded`",
            ));
        }
        let limit = state.config.max_body_bytes;
        let body = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| ApiError::payload_too_large(limit))?;
        let mut form = Self::default();
        for (name, value) in url::form_urlencoded::parse(&body) {
            if value.is_empty() {
                continue;
            }
            if REPEATABLE.contains(&name.as_ref()) {
                form.repeated
                    .entry(name.into_owned())
                    .or_default()
                    .push(value.into_owned());
            } else if form
                .single
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(ApiError::invalid_request(format!(
                    "parameter `{name}` is repeated"
                )));
            }
        }
        Ok(form)
    }
}
