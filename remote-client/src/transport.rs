//! One HTTP client per service and the single place where requests are sent: the deadline of every
//! exchange, the service's `Retry-After`, and the retry policy around each call ([`crate::retry`]).
//!
//! Bodies and `Authorization` headers are built in zeroizing buffers that reqwest borrows through
//! `Bytes::from_owner`, so the copies this crate controls are wiped once the request is gone. Response
//! bodies are read into zeroizing buffers too (they carry tokens and SADs). Copies made inside hyper
//! and rustls are out of reach.

use crate::endpoint::{Endpoint, Wire};
use crate::error::{Error, Result};
use crate::failure::{self, Phase};
use crate::retry::{self, Effect, Failed, RetryPolicy};
use crate::secret::Secret;
use crate::tls;
use crate::types::ClientConfig;
use bytes::Bytes;
use reqwest::blocking::RequestBuilder;
use reqwest::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use zeroize::Zeroizing;

/// No CSC answer comes near this (a `credentials/list` with infos and chains is tens of KiB).
const MAX_RESPONSE: usize = 8 << 20;
const POOL_IDLE: Duration = Duration::from_secs(90);

/// The credential one request carries.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    None,
    Bearer(&'a Secret),
    Basic {
        user: &'a str,
        password: &'a Secret,
    },
    /// A header of its own, e.g. `x-api-key`.
    Header {
        name: &'a str,
        value: &'a Secret,
    },
}

impl Auth<'_> {
    fn secret(&self) -> Option<&str> {
        match self {
            Auth::None => None,
            Auth::Bearer(s) | Auth::Header { value: s, .. } => Some(s.expose()),
            Auth::Basic { password, .. } => Some(password.expose()),
        }
    }

    /// The header carrying the credential, marked sensitive (hyper then keeps it out of its logs).
    fn header(&self) -> Result<Option<(HeaderName, HeaderValue)>> {
        let mut name = AUTHORIZATION;
        let value: Zeroizing<Vec<u8>> = match self {
            Auth::None => return Ok(None),
            Auth::Header { name: n, value } => {
                name = HeaderName::from_bytes(n.as_bytes())
                    .map_err(|_| Error::Config(format!("{n:?} is not a valid HTTP header name")))?;
                Zeroizing::new(value.expose().as_bytes().to_vec())
            }
            Auth::Bearer(token) => {
                let mut v = Zeroizing::new(Vec::with_capacity(7 + token.len()));
                v.extend_from_slice(b"Bearer ");
                v.extend_from_slice(token.expose().as_bytes());
                v
            }
            Auth::Basic { user, password } => {
                use base64::Engine;
                // RFC 7617: the user-id cannot contain a colon.
                if user.contains(':') {
                    return Err(Error::Config("account name must not contain ':'".into()));
                }
                let mut pair = Zeroizing::new(Vec::with_capacity(user.len() + 1 + password.len()));
                pair.extend_from_slice(user.as_bytes());
                pair.push(b':');
                pair.extend_from_slice(password.expose().as_bytes());
                let engine = &base64::engine::general_purpose::STANDARD;
                let mut v = Zeroizing::new(vec![
                    0u8;
                    6 + base64::encoded_len(pair.len(), true)
                        .unwrap_or(0)
                ]);
                v[..6].copy_from_slice(b"Basic ");
                let n = engine
                    .encode_slice(&pair[..], &mut v[6..])
                    .map_err(|_| Error::Config("account name or password too long".into()))?;
                v.truncate(6 + n);
                v
            }
        };
        let mut hv = HeaderValue::from_maybe_shared(Bytes::from_owner(value)).map_err(|_| {
            Error::Config(
                "access token, API key or account name has characters not allowed in HTTP".into(),
            )
        })?;
        hv.set_sensitive(true);
        Ok(Some((name, hv)))
    }
}

/// One CSC method call: its name, whether repeating it is harmless, and which timeout bounds an exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op<'a> {
    pub method: &'a str,
    pub effect: Effect,
    /// Bounded by the authorize timeout (a synchronous authorize may wait for a push approval).
    pub slow: bool,
}

impl<'a> Op<'a> {
    pub(crate) fn read(method: &'a str) -> Self {
        Op {
            method,
            effect: Effect::Read,
            slow: false,
        }
    }

    pub(crate) fn write(method: &'a str) -> Self {
        Op {
            method,
            effect: Effect::Write,
            slow: false,
        }
    }

    pub(crate) fn authorize(method: &'a str) -> Self {
        Op {
            slow: true,
            ..Op::write(method)
        }
    }
}

/// A complete answer, read within the exchange's deadline.
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: Option<HeaderValue>,
    pub body: Zeroizing<Vec<u8>>,
}

impl Reply {
    pub(crate) fn json<T: DeserializeOwned>(&self, method: &str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| failure::bad_json(method, &e))
    }

    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Turns a non-2xx answer into the error of the service's protocol: method, status, body, the secrets
/// to scrub, and the wait the service asked for (`Retry-After`).
pub(crate) type DecodeError = fn(&str, u16, &[u8], &[&str], Option<Duration>) -> Error;

/// What [`Transport::send`] sends: where, how, and how the service reports failures.
pub(crate) struct Request<'a, B> {
    pub method: reqwest::Method,
    pub url: &'a str,
    /// Sent as JSON; `None`: no body.
    pub body: Option<&'a B>,
    /// The Content-Type of a body.
    pub content_type: &'static str,
    pub decode_error: DecodeError,
    pub retry: &'a RetryPolicy,
}

pub(crate) struct Transport {
    http: reqwest::blocking::Client,
    endpoint: Endpoint,
    allow_loopback_http: bool,
    request_timeout: Duration,
    authorize_timeout: Duration,
    retry: RetryPolicy,
    /// When the wait the service last asked for (`Retry-After`) ends.
    come_back_at: Mutex<Option<Instant>>,
}

impl Transport {
    pub(crate) fn new(config: &ClientConfig) -> Result<Transport> {
        let endpoint = match &config.api_base {
            Some(api_base) => Endpoint::parse_api_base(api_base, config.allow_loopback_http)?,
            None => Endpoint::parse(&config.base_url, config.allow_loopback_http)?,
        };
        let authorize_timeout = config.authorize_timeout.unwrap_or(config.request_timeout);
        if config.connect_timeout.is_zero()
            || config.request_timeout.is_zero()
            || authorize_timeout.is_zero()
        {
            return Err(Error::Config("timeouts must be greater than zero".into()));
        }
        config.retry.check()?;
        // No client-wide timeout: each request carries its own deadline (see `exchange`).
        let mut builder = reqwest::blocking::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(POOL_IDLE)
            // A redirect would replay the PIN to wherever the service points; CSC has none.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!endpoint.is_plain_http())
            .user_agent(concat!(
                "cloudtoken-remote-client/",
                env!("CARGO_PKG_VERSION")
            ));
        if endpoint.is_loopback() {
            builder = builder.no_proxy();
        }
        // Always hand reqwest a TLS configuration: without one it looks for a process-wide rustls
        // provider and panics on its runtime thread when there is none.
        let tls = if endpoint.is_plain_http() && config.ca_file.is_none() {
            tls::unused_client_config()?
        } else {
            tls::client_config(config.ca_file.as_deref(), config.client_identity.as_ref())?
        };
        builder = builder.tls_backend_preconfigured(tls);
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Transport {
            http,
            endpoint,
            allow_loopback_http: config.allow_loopback_http,
            request_timeout: config.request_timeout,
            authorize_timeout,
            retry: config.retry.clone(),
            come_back_at: Mutex::new(None),
        })
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Checks a URL other than the methods' (an OAuth 2.0 endpoint) against the same policy.
    pub(crate) fn check_url(&self, url: &str) -> Result<reqwest::Url> {
        let (url, plain_http, _) = crate::endpoint::checked(url, self.allow_loopback_http)?;
        if plain_http && !self.endpoint.is_plain_http() {
            // The client is built https-only for an https service.
            return Err(Error::Config(
                "plain http:// is allowed only when the service itself is plain http".into(),
            ));
        }
        Ok(url)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// A request to `url` on this client's connection pool and TLS configuration.
    pub(crate) fn request(&self, method: reqwest::Method, url: reqwest::Url) -> RequestBuilder {
        self.http.request(method, url)
    }

    /// What is left of the wait the service last asked for with `Retry-After`.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        let at = (*self.come_back_at.lock().unwrap_or_else(|p| p.into_inner()))?;
        Some(at.saturating_duration_since(Instant::now())).filter(|d| !d.is_zero())
    }

    /// POSTs `body` as JSON to the method's URL, repeated per the retry policy. `secrets` are the secret
    /// values inside `body` (the credentials in `auth` are added here); they are scrubbed from any error
    /// text.
    pub(crate) fn call<B: Serialize>(
        &self,
        wire: Wire,
        op: Op<'_>,
        auth: Auth<'_>,
        body: &B,
        secrets: &[&str],
    ) -> Result<Reply> {
        let url = self.endpoint.method_url(wire, op.method);
        self.json_request(op, reqwest::Method::POST, &url, auth, Some(body), secrets)
    }

    /// One JSON request to any URL of the service (`op.method` names it in errors and logs): a GET, or a
    /// request carrying `body` as JSON; repeated per the retry policy, answers other than 2xx turned into
    /// errors. For services whose methods are not CSC's (cryptopro/).
    pub(crate) fn json_request<B: Serialize>(
        &self,
        op: Op<'_>,
        method: reqwest::Method,
        url: &str,
        auth: Auth<'_>,
        body: Option<&B>,
        secrets: &[&str],
    ) -> Result<Reply> {
        self.send(
            &Request {
                method,
                url,
                body,
                content_type: "application/json",
                decode_error: |method, status, body, secrets, _| {
                    failure::status(method, status, body, secrets)
                },
                retry: &self.retry,
            },
            op,
            auth,
            secrets,
        )
    }

    /// Sends one request as `request` describes it (any method, a JSON body or none, the service's own
    /// error format), repeated per `request.retry`; the single place every request goes through.
    pub(crate) fn send<B: Serialize>(
        &self,
        request: &Request<'_, B>,
        op: Op<'_>,
        auth: Auth<'_>,
        secrets: &[&str],
    ) -> Result<Reply> {
        let mut all_secrets: Vec<&str> = secrets.to_vec();
        all_secrets.extend(auth.secret());
        let payload = match request.body {
            Some(body) => Some(Bytes::from_owner(json_body(body).map_err(Error::Config)?)),
            None => None,
        };
        let authorization = auth.header()?;
        let timeout = if op.slow {
            self.authorize_timeout
        } else {
            self.request_timeout
        };
        retry::run(request.retry, op.effect, timeout, |budget| {
            let mut builder = self
                .http
                .request(request.method.clone(), request.url)
                .header(ACCEPT, "application/json");
            if let Some(payload) = &payload {
                builder = builder
                    .header(CONTENT_TYPE, request.content_type)
                    .body(reqwest::blocking::Body::from(payload.clone()));
            }
            if let Some((name, value)) = &authorization {
                builder = builder.header(name.clone(), value.clone());
            }
            let (reply, retry_after) = self.exchange(op.method, builder, budget, &all_secrets)?;
            if reply.is_success() {
                Ok(reply)
            } else {
                Err(Failed {
                    error: (request.decode_error)(
                        op.method,
                        reply.status,
                        &reply.body,
                        &all_secrets,
                        retry_after,
                    ),
                    retry_after,
                })
            }
        })
    }

    /// Sends one request and reads the whole answer within `budget`, whatever the service does (stall,
    /// drip, slow headers). Returns the answer of any status with its `Retry-After`, if any.
    pub(crate) fn exchange(
        &self,
        name: &str,
        request: RequestBuilder,
        budget: Duration,
        secrets: &[&str],
    ) -> std::result::Result<(Reply, Option<Duration>), Failed> {
        let started = Instant::now();
        // The per-request timeout is the deadline of the whole exchange in reqwest's async core
        // (connect, send, headers and every byte of the body); a client-wide one would only bound each
        // blocking read, so a body sent one byte at a time could hold the call for minutes.
        let response = request.timeout(budget).send().map_err(|e| {
            log::debug!(
                "{name}: no answer after {} ms",
                started.elapsed().as_millis()
            );
            failure::transport(name, &e, Phase::Request, secrets)
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
        let hint = response.content_length();
        let content_type = response.headers().get(CONTENT_TYPE).cloned();
        let body = read_body(response, hint, started + budget).map_err(|e| match e {
            ReadError::TooLarge => failure::protocol(name, "response too large"),
            ReadError::Io(e) => failure::transport(name, &e, Phase::Body, secrets),
        })?;
        log::debug!("{name} -> {status} in {} ms", started.elapsed().as_millis());
        let reply = Reply {
            status,
            content_type,
            body,
        };
        let mut come_back_at = self.come_back_at.lock().unwrap_or_else(|p| p.into_inner());
        if reply.is_success() {
            *come_back_at = None;
        } else if let Some(wait) = retry_after {
            *come_back_at = Instant::now().checked_add(wait);
        }
        Ok((reply, retry_after))
    }
}

/// Serialises into a buffer of exactly the right size, so no reallocation leaves a copy behind.
fn json_body<B: Serialize>(body: &B) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, body).map_err(|_| "cannot encode request".to_owned())?;
    let mut out = Zeroizing::new(Vec::with_capacity(count.0));
    serde_json::to_writer(&mut *out, body).map_err(|_| "cannot encode request".to_owned())?;
    Ok(out)
}

#[derive(Debug)]
enum ReadError {
    TooLarge,
    Io(std::io::Error),
}

/// Reads into zeroizing storage; growing copies into a fresh zeroizing buffer instead of letting `Vec`
/// reallocate (which would free the old bytes unwiped). A body still arriving at `deadline` is a
/// timeout, however steadily its bytes trickle in.
fn read_body(
    mut r: impl Read,
    hint: Option<u64>,
    deadline: Instant,
) -> std::result::Result<Zeroizing<Vec<u8>>, ReadError> {
    let initial = hint
        .map(|h| h.min(MAX_RESPONSE as u64) as usize)
        .unwrap_or(4096);
    let mut buf = Zeroizing::new(Vec::with_capacity(initial));
    let mut chunk = Zeroizing::new([0u8; 8192]);
    loop {
        let n = match r.read(&mut chunk[..]) {
            Ok(0) => return Ok(buf),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e)),
        };
        if buf.len() + n > MAX_RESPONSE {
            return Err(ReadError::TooLarge);
        }
        if Instant::now() >= deadline {
            return Err(ReadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the answer did not arrive whole before the deadline",
            )));
        }
        if buf.capacity() - buf.len() < n {
            let cap = (buf.len() + n).max(buf.capacity() * 2).min(MAX_RESPONSE);
            let mut bigger = Zeroizing::new(Vec::with_capacity(cap));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_has_exact_capacity() {
        let b = json_body(&serde_json::json!({"PIN": "1234", "n": [1, 2, 3]})).unwrap();
        assert_eq!(b.len(), b.capacity());
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["PIN"], "1234");
    }

    #[test]
    fn read_body_grows_and_caps() {
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let later = Instant::now() + Duration::from_secs(60);
        let got = read_body(&data[..], None, later).unwrap();
        assert_eq!(&got[..], &data[..]);
        let got = read_body(&data[..], Some(10), later).unwrap();
        assert_eq!(&got[..], &data[..]);
        let huge = std::io::repeat(b'x').take(MAX_RESPONSE as u64 + 1);
        assert!(matches!(
            read_body(huge, None, later),
            Err(ReadError::TooLarge)
        ));
    }

    #[test]
    fn read_body_stops_at_the_deadline() {
        let endless = std::io::repeat(b'x');
        let e = read_body(endless, None, Instant::now()).unwrap_err();
        assert!(
            matches!(&e, ReadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut),
            "{e:?}"
        );
    }

    #[test]
    fn authorization_headers() {
        let pw = Secret::new("p@ss word");
        let (name, h) = Auth::Basic {
            user: "alice",
            password: &pw,
        }
        .header()
        .unwrap()
        .unwrap();
        assert_eq!(name, AUTHORIZATION);
        assert!(h.is_sensitive());
        use base64::Engine;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:p@ss word")
        );
        assert_eq!(h.to_str().unwrap(), expected);
        assert!(!format!("{h:?}").contains("Basic"));

        let tok = Secret::new("tok-123");
        let (_, h) = Auth::Bearer(&tok).header().unwrap().unwrap();
        assert_eq!(h.to_str().unwrap(), "Bearer tok-123");
        assert!(h.is_sensitive());
        assert!(Auth::None.header().unwrap().is_none());

        let key = Secret::new("key-4567");
        let (name, h) = Auth::Header {
            name: "X-Api-Key",
            value: &key,
        }
        .header()
        .unwrap()
        .unwrap();
        assert_eq!(name.as_str(), "x-api-key");
        assert_eq!(h.to_str().unwrap(), "key-4567");
        assert!(h.is_sensitive());
        let e = Auth::Header {
            name: "bad header",
            value: &key,
        }
        .header()
        .unwrap_err();
        assert!(matches!(e, Error::Config(_)) && !e.to_string().contains("4567"));

        let e = Auth::Basic {
            user: "a:b",
            password: &pw,
        }
        .header()
        .unwrap_err();
        assert!(matches!(e, Error::Config(_)));
        let bad = Secret::new("line\nbreak");
        let e = Auth::Bearer(&bad).header().unwrap_err();
        assert!(!e.to_string().contains("break"), "{e}");
    }
}
