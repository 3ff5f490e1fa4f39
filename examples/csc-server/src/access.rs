//! Who may call the CSC methods: the ways of signing in `serve --auth` accepts, what `info` says about
//! them, and which account an unauthenticated request acts for. The checks of the presented secrets
//! are the service's (`service/accounts.rs`); this module only holds the rules.

use clap::ValueEnum;

/// One way of signing in, as `serve --auth` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthKind {
    /// `auth/login` with HTTP Basic (password) or a refresh token, and `auth/revoke`.
    Login,
    /// The OAuth 2.0 authorization server: `oauth2/authorize`, `oauth2/token`, `oauth2/revoke`.
    Oauth2,
    /// A static API key in the `x-api-key` header.
    ApiKey,
    /// No sign-in at all: requests without credentials act for one account (`--anonymous-account`).
    None,
}

/// The header an API key travels in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// What the service accepts.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub login: bool,
    pub oauth2: bool,
    pub api_key: bool,
    /// `Some(user)` when requests without credentials are accepted, as that user.
    pub anonymous: Option<String>,
}

impl Accepted {
    pub fn new(kinds: &[AuthKind], anonymous_account: &str) -> Accepted {
        Accepted {
            login: kinds.contains(&AuthKind::Login),
            oauth2: kinds.contains(&AuthKind::Oauth2),
            api_key: kinds.contains(&AuthKind::ApiKey),
            anonymous: kinds
                .contains(&AuthKind::None)
                .then(|| anonymous_account.to_owned()),
        }
    }

    /// `serve`'s default: every way but no sign-in at all.
    pub fn default_kinds() -> Vec<AuthKind> {
        vec![AuthKind::Login, AuthKind::Oauth2, AuthKind::ApiKey]
    }

    /// `info.authType` (CSC v1.0.4 §11.1, v2.0 §11.1): `basic` for `auth/login`, `oauth2code` and
    /// `oauth2client` for the OAuth 2.0 server, `external` for no sign-in. An API key has no CSC name.
    pub fn auth_types(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.login {
            out.push("basic");
        }
        if self.oauth2 {
            out.push("oauth2code");
            out.push("oauth2client");
        }
        if self.anonymous.is_some() {
            out.push("external");
        }
        out
    }

    /// An access token obtained by `auth/login` (`client` `None`) or by an OAuth 2.0 client is good
    /// only while the way it was obtained is accepted.
    pub fn token_accepted(&self, client: Option<&str>) -> bool {
        match client {
            None => self.login,
            Some(_) => self.oauth2,
        }
    }
}

impl Default for Accepted {
    fn default() -> Self {
        Accepted::new(&Accepted::default_kinds(), "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_types_follow_the_accepted_kinds() {
        let all = Accepted::default();
        assert_eq!(all.auth_types(), ["basic", "oauth2code", "oauth2client"]);
        assert!(all.anonymous.is_none());
        let only = Accepted::new(&[AuthKind::Oauth2], "alice");
        assert_eq!(only.auth_types(), ["oauth2code", "oauth2client"]);
        assert!(!only.token_accepted(None));
        assert!(only.token_accepted(Some("c")));
        let open = Accepted::new(&[AuthKind::None, AuthKind::ApiKey], "seal");
        assert_eq!(open.auth_types(), ["external"]);
        assert_eq!(open.anonymous.as_deref(), Some("seal"));
        assert!(!open.token_accepted(None) && !open.token_accepted(Some("c")));
    }
}
