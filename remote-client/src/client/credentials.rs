//! Which credentials the account has and what each one is: `credentials/list` and `credentials/info`,
//! tolerant of what real services do (no `certInfo`, `credentialInfos` in the list).

use super::CscClient;
use crate::access::AccessRef;
use crate::endpoint::Wire;
use crate::error::{Error, Result};
use crate::failure;
use crate::transport::{Auth, Op};
use crate::types::*;
use crate::wire;
use serde::Deserialize;
use std::sync::atomic::Ordering;

/// A service that keeps handing out page tokens is broken; stop rather than loop forever.
const MAX_PAGES: usize = 1000;
const LIST: &str = "credentials/list";
const INFO: &str = "credentials/info";

/// One credential of [`CscClient::list_credential_infos`]: its ID, and its info or why it could not be
/// had (so that one credential that fails does not hide the others).
#[derive(Debug)]
pub struct ListedCredential {
    pub id: String,
    pub info: Result<CredentialInfo>,
}

/// A service that rejects a parameter it does not implement (certomancer-csc-dummy answers 501 to
/// `certInfo: true`); anything else is an answer about the request itself.
fn rejects_parameter(e: &Error) -> bool {
    matches!(
        e,
        Error::Http {
            status: 400 | 501,
            ..
        } | Error::Csc {
            status: 400 | 501,
            ..
        }
    )
}

/// An entry of `credentialInfos`: the ID, then the same fields as `credentials/info`.
#[derive(Deserialize)]
struct Listed {
    #[serde(rename = "credentialID")]
    id: String,
}

impl CscClient {
    /// `credentials/list`, all pages.
    pub fn list_credentials<'a>(&self, access: impl Into<AccessRef<'a>>) -> Result<Vec<String>> {
        Ok(self.list(self.wire()?, access.into().0, None)?.0)
    }

    /// Every credential with its info, in the list's order. With v2 it asks `credentials/list` for
    /// `credentialInfos` (one round trip) and uses them when the service offers them; otherwise, and
    /// for any credential they leave out, it asks `credentials/info` per ID.
    pub fn list_credential_infos<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
    ) -> Result<Vec<ListedCredential>> {
        let wire = self.wire()?;
        let auth = access.into().0;
        let infos = (wire == Wire::V2).then(|| wire::ListInfos {
            credential_info: true,
            certificates: "chain",
            cert_info: !self.no_cert_info.load(Ordering::Relaxed),
            auth_info: true,
        });
        let (ids, offered) = match self.list(wire, auth, infos) {
            Err(e) if wire == Wire::V2 && rejects_parameter(&e) => {
                log::info!("{LIST} with credentialInfo refused ({e}); asking per credential");
                self.list(wire, auth, None)?
            }
            other => other?,
        };
        let mut by_id: std::collections::HashMap<String, serde_json::Value> = offered
            .into_iter()
            .filter_map(|v| Some((Listed::deserialize(&v).ok()?.id, v)))
            .collect();
        Ok(ids
            .into_iter()
            .map(|id| {
                let info = match by_id.remove(&id) {
                    Some(v) => wire::CredentialInfoWire::deserialize(v)
                        .map_err(|e| failure::bad_json(LIST, &e))
                        .and_then(|w| {
                            w.normalise(&id, wire)
                                .map_err(|e| failure::protocol(LIST, e))
                        }),
                    None => self.info_of(wire, auth, &id),
                };
                ListedCredential { id, info }
            })
            .collect())
    }

    /// All pages of `credentials/list`: the IDs and the `credentialInfos` entries, if asked for.
    fn list(
        &self,
        wire: Wire,
        auth: Auth<'_>,
        infos: Option<wire::ListInfos>,
    ) -> Result<(Vec<String>, Vec<serde_json::Value>)> {
        let mut ids = Vec::new();
        let mut entries = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let body = wire::ListRequest {
                page_token: page.as_deref(),
                infos,
            };
            let reply = self
                .transport
                .call(wire, Op::read(LIST), auth, &body, &[])?;
            let list: wire::ListResponse = reply.json(LIST)?;
            ids.extend(list.credential_ids);
            if infos.is_some() {
                entries.extend(list.credential_infos.unwrap_or_default());
            }
            match list.next_page_token.filter(|t| !t.is_empty()) {
                None => return Ok((ids, entries)),
                Some(next) if page.as_ref() == Some(&next) => {
                    return Err(failure::protocol(LIST, "the same page token came back"))
                }
                Some(next) => page = Some(next),
            }
        }
        Err(failure::protocol(LIST, "too many pages"))
    }

    /// `credentials/info` with the whole chain, cert info and auth info. A service that rejects
    /// `certInfo` (400/501) is asked again without it, and not asked for it again by this client; the
    /// subject, issuer and validity are then absent (read them from the certificate).
    pub fn credential_info<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        credential_id: &str,
    ) -> Result<CredentialInfo> {
        self.info_of(self.wire()?, access.into().0, credential_id)
    }

    fn info_of(&self, wire: Wire, auth: Auth<'_>, credential_id: &str) -> Result<CredentialInfo> {
        if !self.no_cert_info.load(Ordering::Relaxed) {
            match self.fetch_credential_info(wire, auth, credential_id, true) {
                Err(e) if rejects_parameter(&e) => {
                    log::info!("{INFO} with certInfo refused ({e}); asking without it");
                }
                other => return other,
            }
        }
        let info = self.fetch_credential_info(wire, auth, credential_id, false)?;
        if !self.no_cert_info.swap(true, Ordering::Relaxed) {
            log::info!("the service answers {INFO} only without certInfo; not asking for it again");
        }
        Ok(info)
    }

    fn fetch_credential_info(
        &self,
        wire: Wire,
        auth: Auth<'_>,
        credential_id: &str,
        cert_info: bool,
    ) -> Result<CredentialInfo> {
        let body = wire::InfoRequest {
            credential_id,
            certificates: "chain",
            cert_info,
            auth_info: true,
        };
        let reply = self
            .transport
            .call(wire, Op::read(INFO), auth, &body, &[])?;
        reply
            .json::<wire::CredentialInfoWire>(INFO)?
            .normalise(credential_id, wire)
            .map_err(|e| failure::protocol(INFO, e))
    }
}
