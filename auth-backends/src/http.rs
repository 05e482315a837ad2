//! The `http` backend: asks an HTTP service whether a username and password are good.
//!
//! Protocol: `POST url` with `{"username": ..., "password": ...}` as JSON. The answer:
//! - 200 with a JSON object whose `success_field` (default `authenticated`) is `true`:
//!   `Authenticated`, the user mapped from the object with `attributes`;
//!   the same field `false`: `Rejected`; absent or not a boolean: `Unavailable` (a 200 alone
//!   never logs anyone in);
//! - 401 or 403: `Rejected`; 404: `NotFound`;
//! - anything else (3xx are not followed, 5xx), a timeout, a body that is not a JSON object or
//!   larger than `max_response_bytes`: `Unavailable`.
//!
//! `get_user`: with `user_url` (`{id}` replaced by the percent-encoded id), `GET` it: 200 + JSON
//! object -> the user, 404 -> `None` (the session ends), else an error. Without `user_url` the
//! service has no way to look a user up, so `get_user` answers `None` and sessions made through
//! this backend end at their first revalidation (the user logs in again): failing closed is the
//! only safe answer when the service cannot confirm that the user still exists.

use std::collections::BTreeMap;
use std::sync::Arc;

use auth_core::{
    AttributeMapping, Backend, BackendError, BuildContext, BuildError, Context, Credentials,
    Duration, Outcome, Secret, User, async_trait, auth_backend,
};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use serde_json::{Map, Value};

/// Delegates password checks to an HTTP service (see the module documentation for the protocol).
#[auth_backend(type = "http", build = Self::build)]
#[derive(Debug, Clone)]
pub struct HttpBackend {
    /// Where credentials are POSTed as `{"username", "password"}` JSON (`http://` or `https://`).
    pub url: String,
    /// Optional lookup URL for `get_user`, `{id}` replaced by the percent-encoded user id
    /// (e.g. `http://127.0.0.1:7000/users/{id}`). Without it sessions are not restored.
    pub user_url: Option<String>,
    /// Whole-request time limit (connect, send, read the answer).
    #[option(default = "5s")]
    pub timeout: Duration,
    /// The boolean field of a 200 answer that must be `true` for a login to succeed.
    #[option(default = "authenticated")]
    pub success_field: String,
    /// Optional boolean field: when present and `false` the user is `Denied("inactive")` (and
    /// `get_user` answers `None`).
    pub active_field: Option<String>,
    /// Which fields of the JSON answer feed the user. Default: `{username: username, email: email}`.
    /// Of an array of `email` or `name` values the first is taken (`strict: true` makes it an
    /// error); several usernames or ids are always an error.
    pub attributes: Option<AttributeMapping>,
    /// Extra request headers (e.g. `Authorization: env:HR_SERVICE_TOKEN`), values as secrets.
    #[option(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Larger answers are refused (`Unavailable`).
    #[option(default = 65536)]
    pub max_response_bytes: usize,
}

impl HttpBackend {
    /// Checks the options and builds the backend (the HTTP client; no request is made).
    pub fn build(self, _ctx: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
        Ok(Arc::new(self.into_backend()?))
    }

    fn into_backend(self) -> Result<Service, BuildError> {
        for (name, url) in
            std::iter::once(("url", &self.url)).chain(self.user_url.iter().map(|u| ("user_url", u)))
        {
            let parsed = reqwest::Url::parse(&url.replace("{id}", "id"))
                .map_err(|e| BuildError::new(format!("http: bad `{name}` `{url}`: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(BuildError::new(format!(
                    "http: `{name}` must be an http:// or https:// URL"
                )));
            }
        }
        if let Some(u) = &self.user_url
            && !u.contains("{id}")
        {
            return Err(BuildError::new("http: `user_url` must contain `{id}`"));
        }
        if self.success_field.is_empty() {
            return Err(BuildError::new("http: `success_field` must not be empty"));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &self.headers {
            let n = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| BuildError::new(format!("http: bad header name `{name}`")))?;
            let mut v = reqwest::header::HeaderValue::from_str(value.expose())
                .map_err(|_| BuildError::new(format!("http: bad value for header `{name}`")))?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        let client = reqwest::Client::builder()
            .timeout(self.timeout.get())
            .connect_timeout(self.timeout.get())
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .map_err(|e| BuildError::new(format!("http: cannot build the client: {e}")))?;
        let mapping = self.attributes.clone().unwrap_or_default();
        Ok(Service {
            options: self,
            client,
            mapping,
        })
    }
}

struct Service {
    options: HttpBackend,
    client: reqwest::Client,
    mapping: AttributeMapping,
}

/// The error and its causes, after `context` (`http`, `jwt: JWKS fetch`), without the URL (it
/// may carry credentials in its userinfo).
pub(crate) fn request_error(context: &str, e: reqwest::Error) -> BackendError {
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut message = format!("{context}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if timeout {
        message.push_str(" (timed out)");
    }
    BackendError::new(message)
}

/// Reads a response's body, refusing one over `limit` bytes (announced or streamed) before it is
/// all in memory; errors start with `context`.
pub(crate) async fn read_body(
    response: &mut reqwest::Response,
    limit: usize,
    context: &str,
) -> Result<Vec<u8>, BackendError> {
    let too_large = || BackendError::new(format!("{context}: answer larger than {limit} bytes"));
    if response
        .content_length()
        .is_some_and(|n| n as usize > limit)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| request_error(context, e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl Service {
    /// Reads the body as a JSON object, within the size limit.
    async fn json_object(
        &self,
        mut response: reqwest::Response,
    ) -> Result<Map<String, Value>, BackendError> {
        let body = read_body(&mut response, self.options.max_response_bytes, "http").await?;
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(BackendError::new("http: the answer is not a JSON object")),
            Err(e) => Err(BackendError::new(format!(
                "http: the answer is not valid JSON: {e}"
            ))),
        }
    }

    fn inactive(&self, object: &Map<String, Value>) -> bool {
        self.options
            .active_field
            .as_ref()
            .is_some_and(|f| object.get(f) == Some(&Value::Bool(false)))
    }

    fn to_user(&self, object: &Map<String, Value>) -> Result<User, BackendError> {
        self.mapping
            .map(object)
            .map_err(|e| BackendError::new(format!("http: {e}")))
    }

    async fn check(&self, username: &str, password: &str) -> Result<Outcome, BackendError> {
        let response = self
            .client
            .post(&self.options.url)
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .map_err(|e| request_error("http", e))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Ok(Outcome::Rejected),
            StatusCode::NOT_FOUND => return Ok(Outcome::NotFound),
            other => {
                return Err(BackendError::new(format!(
                    "http: unexpected status {other}"
                )));
            }
        }
        let object = self.json_object(response).await?;
        match object.get(&self.options.success_field) {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => return Ok(Outcome::Rejected),
            _ => {
                return Err(BackendError::new(format!(
                    "http: 200 answer without a boolean `{}` field",
                    self.options.success_field
                )));
            }
        }
        if self.inactive(&object) {
            return Ok(Outcome::Denied("inactive".into()));
        }
        Ok(Outcome::Authenticated(self.to_user(&object)?))
    }
}

#[async_trait]
impl Backend for Service {
    async fn authenticate(&self, credentials: &Credentials, _context: &Context) -> Outcome {
        let Credentials::Password { username, password } = credentials else {
            return Outcome::NotFound;
        };
        if username.is_empty() {
            return Outcome::NotFound;
        }
        match self.check(username, password).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Unavailable(e),
        }
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError> {
        let Some(template) = &self.options.user_url else {
            return Ok(None);
        };
        if id.is_empty() {
            return Ok(None);
        }
        let url = template.replace(
            "{id}",
            &utf8_percent_encode(id, NON_ALPHANUMERIC).to_string(),
        );
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| request_error("http", e))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(None),
            other => {
                return Err(BackendError::new(format!(
                    "http: user lookup: unexpected status {other}"
                )));
            }
        }
        let object = self.json_object(response).await?;
        if self.inactive(&object) {
            return Ok(None);
        }
        let user = self.to_user(&object)?;
        // The service must answer for the id it was asked about; anything else ends the session.
        Ok((user.id == id).then_some(user))
    }
}
