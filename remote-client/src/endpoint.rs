//! Where the CSC methods live (`{base}/csc/v1|v2/` or an explicit API base) and the policy on which URLs
//! may carry a PIN.

use crate::error::{Error, Result};
use reqwest::Url;
use std::fmt;

/// The CSC API generation a request goes to: `{base}/csc/v1/...` or `{base}/csc/v2/...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    V1,
    V2,
}

impl Wire {
    fn segment(self) -> &'static str {
        match self {
            Wire::V1 => "v1",
            Wire::V2 => "v2",
        }
    }
}

/// A validated base URL, without a trailing slash.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    base: String,
    /// `base` is the full base of the methods (`https://host/csc/v0`), the same for both wire formats.
    api_base: bool,
    plain_http: bool,
    loopback: bool,
}

impl Endpoint {
    /// HTTPS always; `http://` only when the caller allows it and the host is this machine, because the
    /// PIN, OTP and tokens travel in these requests.
    pub(crate) fn parse(base_url: &str, allow_loopback_http: bool) -> Result<Endpoint> {
        let (url, plain_http, loopback) = checked(base_url, allow_loopback_http)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::Config(
                "service URL must not have a query or fragment".into(),
            ));
        }
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Endpoint {
            base,
            api_base: false,
            plain_http,
            loopback,
        })
    }

    /// An explicit base of the CSC methods, for services that do not use `/csc/v1|v2`; the same rules
    /// as [`Endpoint::parse`].
    pub(crate) fn parse_api_base(api_base: &str, allow_loopback_http: bool) -> Result<Endpoint> {
        Ok(Endpoint {
            api_base: true,
            ..Endpoint::parse(api_base, allow_loopback_http)?
        })
    }

    /// True when the methods' URL does not depend on the wire format.
    pub(crate) fn is_api_base(&self) -> bool {
        self.api_base
    }

    pub(crate) fn method_url(&self, wire: Wire, method: &str) -> String {
        if self.api_base {
            format!("{}/{}", self.base, method)
        } else {
            format!("{}/csc/{}/{}", self.base, wire.segment(), method)
        }
    }

    pub(crate) fn is_plain_http(&self) -> bool {
        self.plain_http
    }

    pub(crate) fn is_loopback(&self) -> bool {
        self.loopback
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

/// The policy for any URL a secret travels to (the CSC methods, an OAuth 2.0 token endpoint): https, or
/// http to this machine when allowed; no user-info. Returns the URL, whether it is plain http, and
/// whether its host is a loopback address. An endpoint may have a query (RFC 6749 §3.1, §3.2).
pub(crate) fn checked(text: &str, allow_loopback_http: bool) -> Result<(Url, bool, bool)> {
    // The URL text is not echoed: a mistyped URL may hold a password in its user-info part.
    let url = Url::parse(text.trim())
        .map_err(|e| Error::Config(format!("service URL is not a valid URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(
            "service URL must not contain a user name or password".into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(Error::Config(
            "service URL must not have a query or fragment".into(),
        ));
    }
    let loopback = is_loopback(&url);
    let plain_http = match url.scheme() {
        "https" => false,
        "http" if allow_loopback_http && loopback => true,
        "http" if allow_loopback_http => {
            return Err(Error::Config(format!(
                "plain http:// is allowed for loopback hosts only, not for {url}"
            )))
        }
        "http" => {
            return Err(Error::Config(format!(
                "plain http:// is refused ({url}): use https://"
            )))
        }
        other => {
            return Err(Error::Config(format!(
                "service URL scheme {other:?} is not supported: use https://"
            )))
        }
    };
    if url.host().is_none() {
        return Err(Error::Config("service URL has no host".into()));
    }
    Ok((url, plain_http, loopback))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_error(url: &str, allow: bool) -> String {
        config_error_of(Endpoint::parse(url, allow))
    }

    #[test]
    fn https_with_and_without_prefix() {
        let e = Endpoint::parse("https://sign.example.com", false).unwrap();
        assert_eq!(
            e.method_url(Wire::V2, "info"),
            "https://sign.example.com/csc/v2/info"
        );
        assert!(!e.is_plain_http());
        assert!(!e.is_loopback());
        let e = Endpoint::parse("https://sign.example.com:8443/tenant/a/", false).unwrap();
        assert_eq!(
            e.method_url(Wire::V1, "credentials/list"),
            "https://sign.example.com:8443/tenant/a/csc/v1/credentials/list"
        );
        let e = Endpoint::parse("https://127.0.0.1:9000", false).unwrap();
        assert!(e.is_loopback());
    }

    #[test]
    fn explicit_api_base() {
        let e = Endpoint::parse_api_base("https://host/documentmanager/csc/v0/", false).unwrap();
        assert!(e.is_api_base());
        for wire in [Wire::V1, Wire::V2] {
            assert_eq!(
                e.method_url(wire, "credentials/list"),
                "https://host/documentmanager/csc/v0/credentials/list"
            );
        }
        assert!(!Endpoint::parse("https://host", false)
            .unwrap()
            .is_api_base());
        assert!(
            config_error_of(Endpoint::parse_api_base("http://host/csc/v0", true))
                .contains("loopback")
        );
    }

    fn config_error_of(r: Result<Endpoint>) -> String {
        match r {
            Err(Error::Config(m)) => m,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn plain_http_needs_the_flag_and_a_loopback_host() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9:8080/p",
            "http://[::1]:8080",
            "http://localhost:8080",
            "http://LOCALHOST",
        ] {
            let e = Endpoint::parse(url, true).unwrap();
            assert!(e.is_plain_http(), "{url}");
            assert!(e.is_loopback(), "{url}");
            assert!(config_error(url, false).contains("refused"), "{url}");
        }
        for url in [
            "http://sign.example.com",
            "http://10.0.0.1",
            "http://[2001:db8::1]",
            "http://localhost.example.com",
            "http://0.0.0.0:80",
        ] {
            assert!(config_error(url, true).contains("loopback"), "{url}");
            assert!(config_error(url, false).contains("refused"), "{url}");
        }
    }

    #[test]
    fn refuses_other_schemes_credentials_and_queries() {
        assert!(config_error("ftp://127.0.0.1", true).contains("scheme"));
        assert!(config_error("file:///tmp/x", true).contains("scheme"));
        assert!(config_error("not a url", false).contains("not a valid URL"));
        let m = config_error("https://user:hunter2@sign.example.com", false);
        assert!(m.contains("user name"));
        assert!(!m.contains("hunter2"));
        let m = config_error("https://user@sign.example.com", false);
        assert!(m.contains("user name"));
        assert!(config_error("https://sign.example.com/?a=b", false).contains("query"));
        assert!(config_error("https://sign.example.com/#x", false).contains("fragment"));
    }

    #[test]
    fn parse_errors_do_not_echo_the_url() {
        let m = config_error("https://user:s3cr3t-pass@[bad", false);
        assert!(!m.contains("s3cr3t-pass"), "{m}");
    }
}
