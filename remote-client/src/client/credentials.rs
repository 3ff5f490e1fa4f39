//! Which credentials the account has and what each one is: `credentials/list` and `credentials/info`.

use super::CscClient;
use crate::access::AccessRef;
use crate::error::Result;
use crate::failure;
use crate::transport::Op;
use crate::types::*;
use crate::wire;

/// A service that keeps handing out page tokens is broken; stop rather than loop forever.
const MAX_PAGES: usize = 1000;

impl CscClient {
    /// `credentials/list`, all pages.
    pub fn list_credentials<'a>(&self, access: impl Into<AccessRef<'a>>) -> Result<Vec<String>> {
        const METHOD: &str = "credentials/list";
        let wire = self.wire()?;
        let auth = access.into().0;
        let mut ids = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let body = wire::ListRequest {
                page_token: page.as_deref(),
            };
            let reply = self
                .transport
                .call(wire, Op::read(METHOD), auth, &body, &[])?;
            let list: wire::ListResponse = reply.json(METHOD)?;
            ids.extend(list.credential_ids);
            match list.next_page_token.filter(|t| !t.is_empty()) {
                None => return Ok(ids),
                Some(next) if page.as_ref() == Some(&next) => {
                    return Err(failure::protocol(METHOD, "the same page token came back"))
                }
                Some(next) => page = Some(next),
            }
        }
        Err(failure::protocol(METHOD, "too many pages"))
    }

    /// `credentials/info` with the whole chain, cert info and auth info.
    pub fn credential_info<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        credential_id: &str,
    ) -> Result<CredentialInfo> {
        const METHOD: &str = "credentials/info";
        let wire = self.wire()?;
        let body = wire::InfoRequest {
            credential_id,
            certificates: "chain",
            cert_info: true,
            auth_info: true,
        };
        let reply = self
            .transport
            .call(wire, Op::read(METHOD), access.into().0, &body, &[])?;
        reply
            .json::<wire::CredentialInfoWire>(METHOD)?
            .normalise(credential_id, wire)
            .map_err(|e| failure::protocol(METHOD, e))
    }
}
