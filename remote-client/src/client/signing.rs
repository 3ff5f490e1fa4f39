//! The steps of a signature: the online OTP, the credential authorization (explicit, asynchronous,
//! extended) and `signatures/signHash`.

use super::{limit_description, v2_hash_algorithm, CscClient};
use crate::access::AccessRef;
use crate::endpoint::Wire;
use crate::error::{Error, Result};
use crate::failure;
use crate::secret::Secret;
use crate::transport::Op;
use crate::types::*;
use crate::wire::{self, b64, v1, v2};

impl CscClient {
    /// Asks the service to send an online OTP: v1 `credentials/sendOTP`, v2 `credentials/getChallenge`.
    pub fn send_otp<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        credential_id: &str,
    ) -> Result<()> {
        self.send_otp_with_description(access, credential_id, None)
    }

    /// [`send_otp`](Self::send_otp) with a text the service shows the user next to the code (e.g. in
    /// the SMS), at most 500 characters (longer text is cut).
    pub fn send_otp_with_description<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        credential_id: &str,
        description: Option<&str>,
    ) -> Result<()> {
        let wire = self.wire()?;
        let method = match wire {
            Wire::V1 => "credentials/sendOTP",
            Wire::V2 => "credentials/getChallenge",
        };
        let body = v1::SendOtpRequest {
            credential_id,
            description: description.map(limit_description),
        };
        // A second SMS may void the first code: sent once unless it surely never arrived.
        self.transport
            .call(wire, Op::write(method), access.into().0, &body, &[])?;
        Ok(())
    }

    pub fn authorize<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        request: &AuthorizeRequest,
    ) -> Result<Authorization> {
        const METHOD: &str = "credentials/authorize";
        if request.num_signatures == 0 {
            return Err(Error::Config("numSignatures must be at least 1".into()));
        }
        let wire = self.wire()?;
        let secrets: Vec<&str> = [&request.pin, &request.otp]
            .into_iter()
            .flatten()
            .map(Secret::expose)
            .collect();
        let hashes = b64::encode_all(&request.hashes);
        let description = request.description.as_deref().map(limit_description);
        let client_data = request.client_data.as_deref();
        let auth = access.into().0;
        let reply = match wire {
            Wire::V1 => {
                let body = v1::AuthorizeRequest {
                    credential_id: &request.credential_id,
                    num_signatures: request.num_signatures,
                    hash: hashes,
                    pin: request.pin.as_ref().map(Secret::expose),
                    otp: request.otp.as_ref().map(Secret::expose),
                    description,
                    client_data,
                };
                self.transport
                    .call(wire, Op::authorize(METHOD), auth, &body, &secrets)?
            }
            Wire::V2 => {
                let hash_algorithm_oid =
                    v2_hash_algorithm(&request.hashes, request.hash_algorithm_oid.as_deref())?;
                let mut auth_data = Vec::new();
                if let Some(pin) = &request.pin {
                    auth_data.push(v2::AuthDatum {
                        id: "PIN",
                        value: pin.expose(),
                    });
                }
                if let Some(otp) = &request.otp {
                    auth_data.push(v2::AuthDatum {
                        id: "OTP",
                        value: otp.expose(),
                    });
                }
                let body = v2::AuthorizeRequest {
                    credential_id: &request.credential_id,
                    num_signatures: request.num_signatures,
                    hashes,
                    hash_algorithm_oid,
                    auth_data,
                    description,
                    client_data,
                };
                self.transport
                    .call(wire, Op::authorize(METHOD), auth, &body, &secrets)?
            }
        };
        authorization(METHOD, reply.json(METHOD)?, None)
    }

    /// `credentials/authorizeCheck` (v2 only): polls an authorization that answered `Pending`.
    pub fn authorize_check<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        handle: &Secret,
    ) -> Result<Authorization> {
        const METHOD: &str = "credentials/authorizeCheck";
        let wire = self.wire()?;
        if wire == Wire::V1 {
            return Err(Error::Config(format!("{METHOD} needs CSC API v2")));
        }
        let body = v2::AuthorizeCheckRequest {
            handle: handle.expose(),
        };
        let reply = self.transport.call(
            wire,
            Op::read(METHOD),
            access.into().0,
            &body,
            &[handle.expose()],
        )?;
        if reply.status == 202 && reply.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Authorization::Pending {
                handle: handle.clone(),
            });
        }
        authorization(METHOD, reply.json(METHOD)?, Some(handle))
    }

    pub fn extend_transaction<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        credential_id: &str,
        hashes: &[Vec<u8>],
        hash_algorithm_oid: Option<&str>,
        sad: &Secret,
    ) -> Result<Sad> {
        const METHOD: &str = "credentials/extendTransaction";
        let wire = self.wire()?;
        let auth = access.into().0;
        let secrets = [sad.expose()];
        let reply = match wire {
            Wire::V1 => {
                let body = v1::ExtendTransactionRequest {
                    credential_id,
                    hash: b64::encode_all(hashes),
                    sad: sad.expose(),
                };
                self.transport
                    .call(wire, Op::write(METHOD), auth, &body, &secrets)?
            }
            Wire::V2 => {
                let body = v2::ExtendTransactionRequest {
                    credential_id,
                    hashes: b64::encode_all(hashes),
                    hash_algorithm_oid: v2_hash_algorithm(hashes, hash_algorithm_oid)?,
                    sad: sad.expose(),
                };
                self.transport
                    .call(wire, Op::write(METHOD), auth, &body, &secrets)?
            }
        };
        reply
            .json::<wire::SadResponse>(METHOD)?
            .into_sad()
            .ok_or_else(|| failure::protocol(METHOD, "response has no SAD"))
    }

    /// `signatures/signHash`: one signature per hash, in order.
    pub fn sign_hash<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        request: &SignHashRequest,
    ) -> Result<Vec<Vec<u8>>> {
        const METHOD: &str = "signatures/signHash";
        if request.hashes.is_empty() {
            return Err(Error::Config("signHash needs at least one hash".into()));
        }
        let wire = self.wire()?;
        let auth = access.into().0;
        let secrets = [request.sad.expose()];
        let hashes = b64::encode_all(&request.hashes);
        let params = request.sign_algorithm_params.as_deref().map(b64::encode);
        let reply = match wire {
            Wire::V1 => {
                let body = v1::SignHashRequest {
                    credential_id: &request.credential_id,
                    sad: request.sad.expose(),
                    hash: hashes,
                    hash_algo: &request.hash_algorithm_oid,
                    sign_algo: &request.sign_algorithm_oid,
                    sign_algo_params: params,
                };
                self.transport
                    .call(wire, Op::write(METHOD), auth, &body, &secrets)?
            }
            Wire::V2 => {
                let body = v2::SignHashRequest {
                    credential_id: &request.credential_id,
                    sad: request.sad.expose(),
                    hashes,
                    hash_algorithm_oid: &request.hash_algorithm_oid,
                    sign_algo: &request.sign_algorithm_oid,
                    sign_algo_params: params,
                    operation_mode: "S",
                };
                self.transport
                    .call(wire, Op::write(METHOD), auth, &body, &secrets)?
            }
        };
        if reply.status == 202 {
            return Err(failure::protocol(
                METHOD,
                "the service answered asynchronously to a synchronous request",
            ));
        }
        let signatures: wire::SignaturesResponse = reply.json(METHOD)?;
        if signatures.signatures.len() != request.hashes.len() {
            return Err(failure::protocol(
                METHOD,
                format!(
                    "{} signatures for {} hashes",
                    signatures.signatures.len(),
                    request.hashes.len()
                ),
            ));
        }
        signatures
            .signatures
            .iter()
            .enumerate()
            .map(|(i, s)| {
                b64::decode(&format!("signature {}", i + 1), s)
                    .map_err(|e| failure::protocol(METHOD, e))
            })
            .collect()
    }
}

fn authorization(
    method: &str,
    response: wire::SadResponse,
    previous_handle: Option<&Secret>,
) -> Result<Authorization> {
    let handle = response.handle.clone();
    if let Some(sad) = response.into_sad() {
        return Ok(Authorization::Granted(sad));
    }
    match handle
        .filter(|h| !h.is_empty())
        .or(previous_handle.cloned())
    {
        Some(handle) => Ok(Authorization::Pending { handle }),
        None => Err(failure::protocol(
            method,
            "response has neither SAD nor handle",
        )),
    }
}
