//! Credential authorization with OAuth 2.0 (CSC `authMode` / `auth.mode` `oauth2code`): the
//! credential-scope authorization request (credential, number of signatures, and under SCAL 2 the
//! hashes and their algorithm) is built by remote-client through the service seam, brought to the user
//! (the prompt's kind `url`, else `xdg-open`), its code received on a loopback redirect (remote-client's `Loopback`),
//! exchanged, and the credential token used as the SAD.
//!
//! Like the approval channel: nobody answering within `approval_timeout_ms`, or a prompt the user
//! cancels, is CKR_FUNCTION_CANCELED; the user refusing on the service's page is CKR_FUNCTION_REJECTED.
//! Neither the page's address (it carries `state`) nor the code nor the token is logged.
//!
//! Calls the account's service, the prompt and the loopback listener; called by exchange.rs.

use super::exchange::Request;
use crate::error::{self, CkResult, Step};
use crate::prompt::{self, UrlPrompt};
use crate::service::{AuthorizeRequest, CredentialInfo, Error, Reason, Sad};
use crate::token::{Credential, Token};
use cryptoki_sys::*;
use remote_client::{Loopback, NoRedirect};
use std::time::{Duration, Instant};

/// Whether `cred` is authorized in a browser rather than with `credentials/authorize`.
pub fn applies(info: &CredentialInfo) -> bool {
    info.auth.mode == crate::service::AuthMode::OAuth2Code
}

/// Authorizes `req` for `cred` at the service's OAuth 2.0 page.
pub fn authorize(
    token: &Token,
    cred: &Credential,
    req: &Request,
    description: &str,
) -> CkResult<Sad> {
    let slot = token.slot_id;
    let id = cred.id();
    let service = token.account.service()?;
    let listener = Loopback::bind()
        .map_err(|e| error::logged(CKR_FUNCTION_FAILED, format!("slot {slot}: {e}")))?;
    let request = AuthorizeRequest {
        credential_id: id.to_owned(),
        num_signatures: req.num_signatures,
        hashes: req.hashes.clone(),
        hash_algorithm_oid: req.hash_alg.map(|h| h.oid().to_owned()),
        description: Some(description.to_owned()),
        ..Default::default()
    };
    let pending = service
        .credential_authorization(listener.redirect_uri(), &request)
        .map_err(|e| error::from_remote(slot, Step::Authorize, &e))?;
    let config = &token.config;
    let mut shown = prompt::show_url(
        config.prompt_command.as_deref(),
        slot,
        &UrlPrompt {
            token_label: &config.label,
            key_label: &cred.label,
            credential_id: id,
            signatures: req.num_signatures,
            description,
            url: pending.url(),
        },
    )?;
    let timeout = Duration::from_millis(config.approval_timeout_ms);
    log::info!(
        "slot {slot}: waiting up to {} s for the user to authorize {id} at the service's page",
        timeout.as_secs()
    );
    let mut failed = None;
    let redirect = listener.wait(Instant::now() + timeout, || {
        if !token.login.is_current(req.epoch) {
            failed = Some(CKR_USER_NOT_LOGGED_IN);
            return Err("the login ended".into());
        }
        shown.check(slot).map_err(|rv| {
            failed = Some(rv);
            "the prompt ended".to_owned()
        })
    });
    drop(shown);
    let redirect = match redirect {
        Ok(r) => r,
        Err(NoRedirect::TimedOut) => {
            return Err(error::logged(
                CKR_FUNCTION_CANCELED,
                format!(
                    "slot {slot}: nobody authorized {id} at the service's page within \
                     approval_timeout_ms ({} ms)",
                    timeout.as_millis()
                ),
            ))
        }
        Err(NoRedirect::Stopped(why)) => {
            let rv = failed.unwrap_or(CKR_FUNCTION_CANCELED);
            log::info!("slot {slot}: stopped waiting for the authorization of {id}: {why}");
            return Err(rv);
        }
        Err(NoRedirect::Failed(e)) => {
            return Err(error::logged(
                CKR_FUNCTION_FAILED,
                format!("slot {slot}: the loopback listener failed: {e}"),
            ))
        }
    };
    match service.exchange_credential_code(&pending, &redirect) {
        Ok(sad) => {
            log::info!("slot {slot}: the user authorized {id} at the service's page");
            Ok(sad)
        }
        Err(e) if refused(&e) => Err(error::logged(
            CKR_FUNCTION_REJECTED,
            format!("slot {slot}: the user refused the authorization of {id} ({e})"),
        )),
        Err(e) => Err(error::from_remote(slot, Step::Authorize, &e)),
    }
}

/// The redirect said the user refused (RFC 6749 §4.1.2.1 `access_denied`).
fn refused(e: &Error) -> bool {
    matches!(e, Error::Csc { method, .. } if method == "oauth2/authorize")
        && e.reason() == Reason::AccessDenied
}
