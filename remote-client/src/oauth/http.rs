//! The `oauth2` crate's requests sent through this crate's transport: the same connection pool, rustls
//! configuration (mutual TLS included), deadline, no redirects, and secrets scrubbed from errors.
//!
//! The response body handed to `oauth2` is a plain `Vec` it parses and drops; that copy, like those inside
//! hyper and rustls, is out of this crate's reach. Tokens are copied into `Secret`s right after.

use crate::error::{CscErrorCode, Error};
use crate::failure;
use crate::retry::Failed;
use crate::transport::Transport;
use bytes::Bytes;
use oauth2::{
    ErrorResponseType, HttpRequest, HttpResponse, RequestTokenError, StandardErrorResponse,
};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use std::cell::Cell;
use std::time::Duration;
use zeroize::Zeroizing;

/// The error `oauth2` carries back from [`Exchange::call`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HttpFailure(Error);

/// One attempt at an OAuth 2.0 endpoint, with what it learnt about the answer.
pub(crate) struct Exchange<'a> {
    transport: &'a Transport,
    name: &'static str,
    budget: Duration,
    secrets: &'a [&'a str],
    status: Cell<Option<u16>>,
    retry_after: Cell<Option<Duration>>,
}

impl<'a> Exchange<'a> {
    pub(crate) fn new(
        transport: &'a Transport,
        name: &'static str,
        budget: Duration,
        secrets: &'a [&'a str],
    ) -> Self {
        Exchange {
            transport,
            name,
            budget,
            secrets,
            status: Cell::new(None),
            retry_after: Cell::new(None),
        }
    }

    /// What went wrong, in this crate's terms: the server's OAuth error (RFC 6749 §5.2) as a CSC-style
    /// error body, a transport failure as it was, an unreadable answer as a protocol error that quotes
    /// nothing of it.
    pub(crate) fn failure<T: ErrorResponseType + AsRef<str> + std::fmt::Display + 'static>(
        &self,
        e: RequestTokenError<HttpFailure, StandardErrorResponse<T>>,
    ) -> Failed {
        let status = self.status.get();
        let error = match e {
            RequestTokenError::Request(HttpFailure(e)) => e,
            RequestTokenError::ServerResponse(body) => Error::Csc {
                method: self.name.to_owned(),
                status: status.unwrap_or(400),
                code: CscErrorCode::parse(&failure::scrub(body.error().as_ref(), self.secrets)),
                description: failure::scrub(
                    body.error_description().map_or("", |d| d.trim()),
                    self.secrets,
                ),
            },
            RequestTokenError::Parse(_, body) => {
                drop(Zeroizing::new(body));
                self.unusable(status, "response is not an RFC 6749 answer")
            }
            RequestTokenError::Other(what) => {
                // oauth2's own words name a content type or an empty body, never a value.
                self.unusable(status, &what)
            }
        };
        Failed {
            error,
            retry_after: self.retry_after.get(),
        }
    }

    fn unusable(&self, status: Option<u16>, what: &str) -> Error {
        match status {
            Some(s) if s != 200 => failure::status(self.name, s, b"", self.secrets),
            _ => failure::protocol(self.name, what),
        }
    }
}

impl oauth2::SyncHttpClient for Exchange<'_> {
    type Error = HttpFailure;

    fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpFailure> {
        let (parts, body) = request.into_parts();
        let body = Zeroizing::new(body);
        let url = self
            .transport
            .check_url(&parts.uri.to_string())
            .map_err(HttpFailure)?;
        let mut builder = self
            .transport
            .request(parts.method, url)
            .body(reqwest::blocking::Body::from(Bytes::from_owner(body)));
        for (name, value) in &parts.headers {
            let mut value = value.clone();
            if name == AUTHORIZATION {
                value.set_sensitive(true);
            }
            builder = builder.header(name, value);
        }
        let (reply, retry_after) = self
            .transport
            .exchange(self.name, builder, self.budget, self.secrets)
            .map_err(|f| {
                self.retry_after.set(f.retry_after);
                HttpFailure(f.error)
            })?;
        self.status.set(Some(reply.status));
        self.retry_after.set(retry_after);
        let mut response = oauth2::http::Response::builder().status(reply.status);
        if let Some(content_type) = &reply.content_type {
            response = response.header(CONTENT_TYPE, content_type.clone());
        }
        response
            .body(reply.body.to_vec())
            .map_err(|_| HttpFailure(failure::protocol(self.name, "unusable status")))
    }
}
