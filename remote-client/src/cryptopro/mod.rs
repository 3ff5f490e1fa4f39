//! A client for CryptoPro DSS: the identity service (STS: OAuth 2.0 tokens, the confirmation of
//! operations) and the signature service (the user's certificates; the raw GOST R 34.10 signature of a
//! hash, alone or in a package; transactions a user confirms out of band). HTTP and JSON over this
//! crate's transport (verified TLS, a deadline per exchange, secrets scrubbed from errors) and its OAuth
//! 2.0 support; nothing of PKCS#11. Field names and sources: [`wire`].
//!
//! Endpoints (DSS 2.0 REST documentation, dss.cryptopro.ru/docs):
//! - `POST {sts}/oauth/token` — RFC 6749 grants with `resource` = the signature service's identifier
//!   (articles/authentication/oauth/resourceowner-flow.html);
//! - `GET {signserver}/rest/api/certificates`;
//! - `POST {signserver}/rest/api/documents` — a signature; with the token of a confirmed operation, that
//!   operation's result; `POST .../documents/packagesignature` — a package's results;
//! - `POST {signserver}/rest/api/transactions` — an operation to confirm (articles/rest/signserver/confirmop.html);
//! - `POST {sts}/confirmation` — starts the confirmation of a transaction (or, with the account password,
//!   of a sign-in) and answers how it stands.

mod wire;

use crate::access::{AccessRef, ServiceAuth, SignIn};
use crate::error::{CscErrorCode, Error, Result};
use crate::failure;
use crate::oauth::TokenEndpoint;
use crate::secret::Secret;
use crate::transport::{Auth, Op, Reply, Transport};
use crate::types::ClientConfig;
use crate::wire::b64;
use reqwest::Method;
use std::time::Duration;
use wire::*;

/// `OperationCode` of a transaction that signs one document, and of one that signs a package. The DSS
/// documentation lists the codes on its "Коды операций" page, which the public copies we could read do
/// not show; these follow the order of the actions DSS clients name (Issue, SignDocument, SignDocuments)
/// and are what the reference emulator accepts.
pub const OPERATION_SIGN_DOCUMENT: u32 = 2;
pub const OPERATION_SIGN_DOCUMENTS: u32 = 3;
/// `Signature.Type` of the raw GOST R 34.10-2001/2012 signature (DSS's `GOST3410` = 1).
const RAW_GOST: &str = "GOST3410";

/// Where the services are.
#[derive(Debug, Clone)]
pub struct DssSettings {
    /// The identity service's base, e.g. `https://dss.example.com/STS`.
    pub sts_url: String,
    /// The signature service's base, e.g. `https://dss.example.com/SignServer`.
    pub signserver_url: String,
    /// The signature service's identifier at the identity service, e.g.
    /// `urn:cryptopro:dss:signserver:signserver`: the OAuth `resource` and the confirmations' `Resource`.
    pub resource: String,
}

/// One of the user's certificates at the signature service.
#[derive(Debug, Clone)]
pub struct DssCertificate {
    /// `ID`, as text.
    pub id: String,
    pub der: Vec<u8>,
    pub subject: Option<String>,
    pub friendly_name: Option<String>,
    /// `Status.Value`, e.g. "ACTIVE".
    pub status: Option<String>,
    pub is_default: bool,
    /// The key needs a PIN (`PinCode`) for each signature.
    pub has_pin: bool,
    pub hash_algorithms: Vec<String>,
}

/// How a confirmation stands.
#[derive(Debug, Clone)]
pub enum Confirmation {
    /// Confirmed: the token of the confirmed operation (or sign-in), and how long it lasts.
    Confirmed {
        token: Secret,
        expires_in: Option<Duration>,
    },
    /// The user has not decided yet: ask again with this reference.
    Pending {
        ref_id: Secret,
        expires_in: Option<Duration>,
    },
}

/// Who asks the confirmation service: the account's access token (operations), or the account's name
/// and password (a sign-in the user confirms, as DSS clients do for two-factor sign-in).
#[derive(Clone, Copy)]
pub enum Confirmer<'a> {
    Access(AccessRef<'a>),
    Password { user: &'a str, password: &'a Secret },
}

impl<'a> Confirmer<'a> {
    fn auth(self) -> Auth<'a> {
        match self {
            Confirmer::Access(a) => a.0,
            Confirmer::Password { user, password } => Auth::Basic { user, password },
        }
    }
}

/// Raw GOST signatures of hashes with one certificate: what a transaction describes.
#[derive(Debug, Clone)]
pub struct RawSignatures<'a> {
    pub certificate_id: &'a str,
    /// The hash values (Streebog of the key's size); one signature each, in this order.
    pub hashes: &'a [Vec<u8>],
    pub pin: Option<&'a Secret>,
    /// Shown to the user with the operation to confirm.
    pub description: &'a str,
}

pub struct CryptoproClient {
    transport: Transport,
    sts: String,
    signserver: String,
    resource: String,
}

fn json<T: serde::de::DeserializeOwned>(reply: &Reply, what: &str) -> Result<T> {
    reply.json(what)
}

fn certificate_id(id: &str) -> Result<u64> {
    id.trim()
        .parse()
        .map_err(|_| Error::Config(format!("DSS certificate IDs are numbers, not {id:?}")))
}

impl CryptoproClient {
    /// The client (no request is made). `config` gives TLS, timeouts and the retry policy; its
    /// `base_url` is replaced by the signature service's.
    pub fn new(config: &ClientConfig, settings: DssSettings) -> Result<CryptoproClient> {
        let mut cc = config.clone();
        cc.base_url = settings.signserver_url.clone();
        cc.api_base = None;
        let transport = Transport::new(&cc)?;
        let trim = |u: &str| u.trim_end_matches('/').to_owned();
        let sts = trim(&settings.sts_url);
        transport.check_url(&sts)?;
        Ok(CryptoproClient {
            transport,
            signserver: trim(&settings.signserver_url),
            sts,
            resource: settings.resource,
        })
    }

    fn api(&self, path: &str) -> String {
        format!("{}/rest/api/{path}", self.signserver)
    }

    /// A POST to the signature service's `path`, sent once (it signs, or creates an operation).
    fn post<B: serde::Serialize>(
        &self,
        path: &str,
        auth: Auth<'_>,
        body: &B,
        secrets: &[&str],
    ) -> Result<Reply> {
        self.transport.json_request(
            Op::write(path),
            Method::POST,
            &self.api(path),
            auth,
            Some(body),
            secrets,
        )
    }

    /// Signs in at the identity service: OAuth 2.0 only (DSS has no other sign-in for a client). The
    /// client's token URL defaults to `{sts}/oauth/token` and its resource to the signature service's.
    pub fn sign_in(&self, auth: &ServiceAuth) -> Result<SignIn> {
        let ServiceAuth::OAuth2 { client, grant } = auth else {
            return Err(Error::Config(
                "CryptoPro DSS signs in with OAuth 2.0 at its identity service".into(),
            ));
        };
        let mut client = client.clone();
        let url = client
            .token_url
            .get_or_insert_with(|| format!("{}/oauth/token", self.sts))
            .clone();
        client.resource.get_or_insert_with(|| self.resource.clone());
        TokenEndpoint {
            transport: &self.transport,
            url: self.transport.check_url(&url)?,
        }
        .sign_in(&client, grant)
    }

    /// The user's certificates (GET /certificates).
    pub fn certificates<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
    ) -> Result<Vec<DssCertificate>> {
        const WHAT: &str = "certificates";
        let reply = self.transport.json_request::<()>(
            Op::read(WHAT),
            Method::GET,
            &self.api(WHAT),
            access.into().0,
            None,
            &[],
        )?;
        json::<Vec<CertificateWire>>(&reply, WHAT)?
            .into_iter()
            .map(|c| {
                let id = match &c.id {
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::String(s) => s.clone(),
                    _ => return Err(failure::protocol(WHAT, "a certificate ID is not a number")),
                };
                Ok(DssCertificate {
                    der: b64::decode("CertificateBase64", &c.certificate_base64)
                        .map_err(|e| failure::protocol(WHAT, e))?,
                    id,
                    subject: c.d_name,
                    friendly_name: c.friendly_name,
                    status: c.status.as_ref().map(|s| s.value().to_owned()),
                    is_default: c.is_default.unwrap_or(false),
                    has_pin: c.has_pin.unwrap_or(false),
                    hash_algorithms: c.hash_algorithms.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The raw GOST signature of one hash, made at once (POST /documents): for users whose policy needs
    /// no confirmation of the operation, or with the token of a confirmed sign-in.
    pub fn sign_hash<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        certificate: &str,
        hash: &[u8],
        pin: Option<&Secret>,
    ) -> Result<Vec<u8>> {
        const WHAT: &str = "documents";
        let body = DocumentWire {
            content: b64::encode(hash),
            name: "hash",
            signature: SignatureWire {
                kind: RAW_GOST,
                parameters: ParametersWire { hash: "True" },
                certificate_id: certificate_id(certificate)?,
                pin_code: pin.map_or("", Secret::expose),
            },
        };
        let secrets: Vec<&str> = pin.iter().map(|p| p.expose()).collect();
        let reply = self.post(WHAT, access.into().0, &body, &secrets)?;
        let signature: String = json(&reply, WHAT)?;
        b64::decode("signature", &signature).map_err(|e| failure::protocol(WHAT, e))
    }

    /// Creates the transaction (operation to confirm) of `what` (POST /transactions): one document, or a
    /// package of several. Returns its identifier (`TransactionTokenId`).
    pub fn create_transaction<'a>(
        &self,
        access: impl Into<AccessRef<'a>>,
        what: &RawSignatures<'_>,
    ) -> Result<Secret> {
        const WHAT: &str = "transactions";
        let mut parameters = vec![
            NameValueWire {
                name: "SignatureType",
                value: RAW_GOST.to_owned(),
            },
            NameValueWire {
                name: "CertificateID",
                value: certificate_id(what.certificate_id)?.to_string(),
            },
            NameValueWire {
                name: "Hash",
                value: "True".to_owned(),
            },
            NameValueWire {
                name: "DocumentInfo",
                value: what.description.to_owned(),
            },
        ];
        if let Some(pin) = what.pin {
            parameters.push(NameValueWire {
                name: "PinCode",
                value: pin.expose().to_owned(),
            });
        }
        let names: Vec<String> = (1..=what.hashes.len())
            .map(|i| format!("hash-{i}"))
            .collect();
        let body = match what.hashes {
            [] => {
                return Err(Error::Config(
                    "a transaction signs at least one hash".into(),
                ))
            }
            [one] => TransactionWire {
                operation_code: OPERATION_SIGN_DOCUMENT,
                document: b64::encode(one),
                documents: Vec::new(),
                parameters,
            },
            many => TransactionWire {
                operation_code: OPERATION_SIGN_DOCUMENTS,
                document: String::new(),
                documents: many
                    .iter()
                    .zip(&names)
                    .map(|(h, name)| NamedContentWire {
                        name,
                        content: b64::encode(h),
                    })
                    .collect(),
                parameters,
            },
        };
        let secrets: Vec<&str> = what.pin.iter().map(|p| p.expose()).collect();
        let reply = self.post(WHAT, access.into().0, &body, &secrets)?;
        let id: String = json(&reply, WHAT)?;
        if id.trim().is_empty() {
            return Err(failure::protocol(WHAT, "no transaction identifier"));
        }
        Ok(Secret::new(id))
    }

    /// Starts the confirmation of `transaction`, or, without one, of a sign-in (POST {sts}/confirmation).
    pub fn confirm(
        &self,
        who: Confirmer<'_>,
        transaction: Option<&Secret>,
    ) -> Result<Confirmation> {
        let body = ConfirmWire {
            resource: &self.resource,
            transaction_token_id: transaction.map(Secret::expose),
        };
        self.confirmation(who, &body, Op::authorize(CONFIRMATION))
    }

    /// How the confirmation of `ref_id` stands. A declined confirmation is
    /// [`Reason::AccessDenied`](crate::Reason::AccessDenied); one the service no longer knows (expired)
    /// is its error, normally [`Reason::InvalidRequest`](crate::Reason::InvalidRequest).
    pub fn check_confirmation(&self, who: Confirmer<'_>, ref_id: &Secret) -> Result<Confirmation> {
        let body = ChallengeAnswerWire {
            resource: &self.resource,
            challenge_response: TextChallengeResponsesWire {
                text_challenge_response: [RefIdWire {
                    ref_id: ref_id.expose(),
                }],
            },
        };
        // Asking again changes nothing at the service.
        self.confirmation(who, &body, Op::read(CONFIRMATION))
    }

    fn confirmation<B: serde::Serialize>(
        &self,
        who: Confirmer<'_>,
        body: &B,
        op: Op<'_>,
    ) -> Result<Confirmation> {
        let url = format!("{}/{CONFIRMATION}", self.sts);
        let reply =
            self.transport
                .json_request(op, Method::POST, &url, who.auth(), Some(body), &[])?;
        let answer: ConfirmationWire = json(&reply, CONFIRMATION)?;
        let seconds = |s: Option<u64>| s.map(Duration::from_secs);
        if answer.is_error {
            return Err(Error::Csc {
                method: CONFIRMATION.to_owned(),
                status: reply.status,
                code: CscErrorCode::AccessDenied,
                description: answer
                    .error_description
                    .unwrap_or_else(|| "the operation was not confirmed".to_owned()),
            });
        }
        if answer.is_final {
            let token = answer
                .access_token
                .filter(|t| !t.is_empty())
                .ok_or_else(|| failure::protocol(CONFIRMATION, "confirmed without a token"))?;
            return Ok(Confirmation::Confirmed {
                token,
                expires_in: seconds(answer.expires_in),
            });
        }
        let challenge = answer
            .challenge
            .ok_or_else(|| failure::protocol(CONFIRMATION, "neither final nor a challenge"))?;
        let text = challenge.text_challenge.first();
        let ref_id = challenge
            .context_data
            .and_then(|c| c.ref_id)
            .or_else(|| text.and_then(|t| t.ref_id.clone()))
            .filter(|r| !r.is_empty())
            .ok_or_else(|| failure::protocol(CONFIRMATION, "a challenge without a RefID"))?;
        Ok(Confirmation::Pending {
            ref_id,
            expires_in: seconds(text.and_then(|t| t.expires_in)),
        })
    }

    /// The signatures of a confirmed transaction, with its token: `count` of them, one per hash it
    /// was created with (POST /documents for one, /documents/packagesignature for a package).
    pub fn confirmed_signatures(
        &self,
        operation: &Secret,
        count: usize,
        pin: Option<&Secret>,
    ) -> Result<Vec<Vec<u8>>> {
        let body = ConfirmedWire {
            signature: pin.map(|p| PinOnlyWire {
                pin_code: p.expose(),
            }),
        };
        let mut secrets = vec![operation.expose()];
        secrets.extend(pin.map(Secret::expose));
        let what = if count == 1 {
            "documents"
        } else {
            "documents/packagesignature"
        };
        let reply = self.post(what, Auth::Bearer(operation), &body, &secrets)?;
        let encoded: Vec<String> = if count == 1 {
            vec![json::<String>(&reply, what)?]
        } else {
            json::<PackageResultWire>(&reply, what)?.results
        };
        if encoded.len() != count {
            return Err(failure::protocol(
                what,
                format!("{} signatures for {count} hashes", encoded.len()),
            ));
        }
        encoded
            .iter()
            .map(|s| b64::decode("signature", s).map_err(|e| failure::protocol(what, e)))
            .collect()
    }

    /// The signature service's base, for log lines.
    pub fn address(&self) -> &str {
        &self.signserver
    }
}

const CONFIRMATION: &str = "confirmation";
