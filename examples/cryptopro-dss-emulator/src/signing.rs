//! The signature service: the user's certificates (`GET /certificates`, `DSSCertificateEx` of
//! docs3284/articles/rest/signserver/structs/certstruct.html), transactions to confirm (`POST
//! /transactions`), and signatures (`POST /documents`, `POST /documents/packagesignature`).
//!
//! Signatures are the raw GOST R 34.10-2012 signature of a hash only (`Signature.Type` GOST3410 = 1 with
//! `Parameters.Hash` = "True": "Необработанная подпись хэш-значения документа" of the REST samples page),
//! made with a GOST key of the certificate's user:
//! - with the token of a confirmed transaction (operation): the transaction's documents, once;
//! - with the token of a confirmed sign-in (session): the document in the request;
//! - with a plain access token: refused, the user confirms every operation (403 access_denied).
//!
//! The signature is returned in CryptoAPI's byte order (the engine's s || r reversed as a whole): the
//! public documentation does not state the order, and DSS is built on CryptoPro CSP, whose
//! CryptSignHash returns it so. RSA certificates are listed; a raw signature with them is
//! `invalid_signature_params`, as DSS's raw signature is GOST only.

use crate::error::{DssError, DssResult};
use crate::gost;
use crate::model::KeyKind;
use crate::service::{Bearer, Emulator};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use csc_server::audit::Event;
use csc_server::random;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};

/// `OperationCode`s the emulator accepts (see remote-client's cryptopro client for their source).
pub const SIGN_DOCUMENT: i64 = 2;
pub const SIGN_DOCUMENTS: i64 = 3;
/// Documents one package may hold.
pub const MAX_PACKAGE: usize = 100;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamedContent {
    #[serde(default)]
    pub name: Option<String>,
    pub content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactionBody {
    pub operation_code: i64,
    #[serde(default)]
    pub document: Option<String>,
    #[serde(default)]
    pub documents: Vec<NamedContent>,
    #[serde(default)]
    pub parameters: Vec<NameValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignatureBody {
    #[serde(rename = "Type", default)]
    pub kind: Option<Value>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub certificate_id: Option<Value>,
    #[serde(default)]
    pub pin_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DocumentBody {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub signature: Option<SignatureBody>,
}

struct Certificate {
    id: i64,
    kind: KeyKind,
    sealed_key: Option<Vec<u8>>,
}

fn decode(what: &str, text: &str) -> DssResult<Vec<u8>> {
    STANDARD
        .decode(text.trim())
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| DssError::invalid_request(format!("{what} is not base64")))
}

/// `Type` GOST3410, by name or by number (1).
fn is_raw_gost(kind: Option<&Value>) -> bool {
    match kind {
        Some(Value::String(s)) => s.eq_ignore_ascii_case("GOST3410"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// `Parameters.Hash` says the content is a hash ("True", or true).
fn hash_flag(parameters: Option<&Value>) -> bool {
    match parameters.and_then(|p| p.get("Hash")) {
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(Value::Bool(b)) => *b,
        _ => false,
    }
}

fn id_of(value: Option<&Value>) -> DssResult<i64> {
    match value {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        None => Some(0),
        _ => None,
    }
    .ok_or_else(|| DssError::signature_params("CertificateId is not a number"))
}

impl Emulator {
    /// The user's certificate `id` (0: the default one).
    fn certificate(&self, conn: &Connection, user: &str, id: i64) -> DssResult<Certificate> {
        let sql = if id == 0 {
            "SELECT id, kind, sealed_key FROM certificates WHERE user = ?1 AND is_default = 1 AND ?2 = 0"
        } else {
            "SELECT id, kind, sealed_key FROM certificates WHERE user = ?1 AND id = ?2"
        };
        let row: Option<(i64, String, Option<Vec<u8>>)> = conn
            .query_row(sql, params![user, id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let (id, kind, sealed_key) =
            row.ok_or_else(|| DssError::not_found(format!("Certificate {id} not found")))?;
        let kind = KeyKind::parse(&kind).ok_or_else(|| DssError::internal("certificate kind"))?;
        Ok(Certificate {
            id,
            kind,
            sealed_key,
        })
    }

    /// `GET /certificates`: the user's certificates as `DSSCertificateEx`.
    pub fn certificates(&self, token: &str) -> DssResult<Value> {
        let conn = self.db.lock();
        let bearer = self.bearer(&conn, token, &["access", "session"])?;
        let mut stmt = conn.prepare(
            "SELECT id, friendly_name, kind, is_default, der FROM certificates WHERE user = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([&bearer.user], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, Vec<u8>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, friendly, kind, is_default, der) = row?;
            let kind =
                KeyKind::parse(&kind).ok_or_else(|| DssError::internal("certificate kind"))?;
            let dname = dname(&der);
            let hash_algorithms: Vec<&str> = match kind {
                KeyKind::Gost256 => vec!["1.2.643.7.1.1.2.2"],
                KeyKind::Gost512 => vec!["1.2.643.7.1.1.2.3"],
                KeyKind::Rsa2048 => vec!["2.16.840.1.101.3.4.2.1"],
            };
            out.push(json!({
                "ID": id,
                "DName": dname,
                "CertificateBase64": STANDARD.encode(&der),
                "Status": { "Value": "ACTIVE" },
                "IsDefault": is_default,
                "CertificateAuthorityID": 0,
                "HashAlgorithms": hash_algorithms,
                "ProviderName": kind.provider(),
                "ProviderType": if kind == KeyKind::Rsa2048 { 24 } else { 80 },
                "HasPin": false,
                "FriendlyName": friendly,
            }));
        }
        Ok(Value::Array(out))
    }

    /// `POST /transactions`: an operation to confirm; returns its `TransactionTokenId`.
    pub fn create_transaction(&self, token: &str, body: &TransactionBody) -> DssResult<Value> {
        let user = self.bearer(&self.db.lock(), token, &["access"])?.user;
        let param = |name: &str| {
            body.parameters
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.value.as_str())
        };
        if !param("SignatureType").is_some_and(|t| t.eq_ignore_ascii_case("GOST3410")) {
            return Err(DssError::signature_params(
                "The emulator signs hashes with the raw GOST R 34.10 signature (SignatureType GOST3410) only",
            ));
        }
        if !param("Hash").is_some_and(|h| h.eq_ignore_ascii_case("true")) {
            return Err(DssError::signature_params(
                "Parameter Hash must be True: documents are hashes",
            ));
        }
        if param("PinCode").is_some_and(|p| !p.is_empty()) {
            return Err(DssError::signature_params(
                "The keys of this service have no PIN",
            ));
        }
        let cert_id: i64 = param("CertificateID")
            .unwrap_or("0")
            .trim()
            .parse()
            .map_err(|_| DssError::signature_params("CertificateID is not a number"))?;
        let documents: Vec<(String, Vec<u8>)> = match body.operation_code {
            SIGN_DOCUMENT => {
                let doc = body
                    .document
                    .as_deref()
                    .ok_or_else(|| DssError::invalid_request("Missing Document"))?;
                vec![("document".to_owned(), decode("Document", doc)?)]
            }
            SIGN_DOCUMENTS => {
                if body.documents.is_empty() || body.documents.len() > MAX_PACKAGE {
                    return Err(DssError::invalid_request(format!(
                        "A package holds 1 to {MAX_PACKAGE} documents"
                    )));
                }
                body.documents
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        let name = d
                            .name
                            .clone()
                            .unwrap_or_else(|| format!("document-{}", i + 1));
                        Ok((name, decode("Content", &d.content)?))
                    })
                    .collect::<DssResult<_>>()?
            }
            other => {
                return Err(DssError::invalid_request(format!(
                    "Unknown OperationCode {other}"
                )))
            }
        };
        let description = param("DocumentInfo").map(|d| d.chars().take(500).collect::<String>());
        let id = random::token();
        let now = self.now();
        let hashes: Vec<Vec<u8>> = documents.iter().map(|(_, h)| h.clone()).collect();
        let detail = format!(
            "transaction {} ({} documents)",
            id.as_str(),
            documents.len()
        );
        let ev = Event {
            event: "transactions",
            user: Some(&user),
            credential: None,
            hashes: &hashes,
            outcome: "",
            detail: Some(&detail),
        };
        self.audited(ev, |conn| {
            let cert = self.certificate(conn, &user, cert_id)?;
            let want = cert.kind.hash_len().ok_or_else(|| {
                DssError::signature_params("The raw signature of a hash needs a GOST R 34.10 key")
            })?;
            if hashes.iter().any(|h| h.len() != want) {
                return Err(DssError::signature_params(format!(
                    "A hash for this key has {want} bytes (GOST R 34.11-2012 of its size)"
                )));
            }
            conn.execute(
                "INSERT INTO transactions (id, user, certificate, operation, description, created_at,
                                           expires_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'created')",
                params![
                    id.as_str(),
                    user,
                    cert.id,
                    body.operation_code,
                    description,
                    now,
                    now + self.settings.confirmation_timeout
                ],
            )?;
            for (i, (name, hash)) in documents.iter().enumerate() {
                conn.execute(
                    "INSERT INTO transaction_documents (tx, idx, name, hash) VALUES (?1, ?2, ?3, ?4)",
                    params![id.as_str(), i as i64, name, hash],
                )?;
            }
            Ok(Value::String(id.to_string()))
        })
    }

    /// `POST /documents` (`package`: false) and `POST /documents/packagesignature` (true).
    pub fn documents(&self, token: &str, body: &DocumentBody, package: bool) -> DssResult<Value> {
        let bearer = self.bearer(&self.db.lock(), token, &["access", "session", "operation"])?;
        match (bearer.kind.as_str(), package) {
            ("operation", _) => self.confirmed_documents(&bearer, package),
            ("session", false) => self.sign_direct(&bearer, body),
            ("session", true) => Err(DssError::invalid_request(
                "A package is signed with the token of its confirmed transaction",
            )),
            _ => Err(DssError::access_denied(
                "This operation needs the user's confirmation: create a transaction and confirm it",
            )),
        }
    }

    fn confirmed_documents(&self, bearer: &Bearer, package: bool) -> DssResult<Value> {
        let tx = bearer
            .transaction
            .clone()
            .ok_or_else(|| DssError::internal("operation token without a transaction"))?;
        let conn = self.db.lock();
        let (cert_id, operation, state): (i64, i64, String) = conn.query_row(
            "SELECT certificate, operation, state FROM transactions WHERE id = ?1 AND user = ?2",
            params![tx, bearer.user],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        if state != "confirmed" {
            return Err(DssError::invalid_request(
                "The transaction is not confirmed",
            ));
        }
        if package != (operation == SIGN_DOCUMENTS) {
            return Err(DssError::invalid_request(if package {
                "This transaction signs one document: POST /documents"
            } else {
                "This transaction signs a package: POST /documents/packagesignature"
            }));
        }
        let cert = self.certificate(&conn, &bearer.user, cert_id)?;
        let mut stmt =
            conn.prepare("SELECT hash FROM transaction_documents WHERE tx = ?1 ORDER BY idx")?;
        let hashes = stmt
            .query_map([&tx], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<Vec<u8>>>>()?;
        drop(stmt);
        drop(conn);
        let signatures = hashes
            .iter()
            .map(|h| self.sign(&cert, h))
            .collect::<DssResult<Vec<String>>>();
        let detail = format!("transaction {tx}, certificate {cert_id}");
        let ev = Event {
            event: if package {
                "documents/packagesignature"
            } else {
                "documents"
            },
            user: Some(&bearer.user),
            credential: None,
            hashes: &hashes,
            outcome: "",
            detail: Some(&detail),
        };
        self.audited(ev, |conn| {
            let signatures = signatures?;
            self.spend(conn, bearer)?;
            conn.execute(
                "UPDATE transactions SET state = 'done' WHERE id = ?1",
                [&tx],
            )?;
            Ok(if package {
                json!({ "Results": signatures })
            } else {
                Value::String(signatures.into_iter().next().unwrap_or_default())
            })
        })
    }

    fn sign_direct(&self, bearer: &Bearer, body: &DocumentBody) -> DssResult<Value> {
        let sig = body
            .signature
            .as_ref()
            .ok_or_else(|| DssError::invalid_request("Missing Signature"))?;
        if !is_raw_gost(sig.kind.as_ref()) || !hash_flag(sig.parameters.as_ref()) {
            return Err(DssError::signature_params(
                "The emulator makes the raw GOST R 34.10 signature of a hash only (Type GOST3410, Hash True)",
            ));
        }
        if sig.pin_code.as_deref().is_some_and(|p| !p.is_empty()) {
            return Err(DssError::signature_params(
                "The keys of this service have no PIN",
            ));
        }
        let hash = decode(
            "Content",
            body.content
                .as_deref()
                .ok_or_else(|| DssError::invalid_request("Missing Content"))?,
        )?;
        let cert_id = id_of(sig.certificate_id.as_ref())?;
        let cert = self.certificate(&self.db.lock(), &bearer.user, cert_id)?;
        let signature = self.sign(&cert, &hash);
        let hashes = [hash];
        let detail = format!("certificate {}, confirmed sign-in", cert.id);
        let ev = Event {
            event: "documents",
            user: Some(&bearer.user),
            credential: None,
            hashes: &hashes,
            outcome: "",
            detail: Some(&detail),
        };
        self.audited(ev, |_| signature.map(Value::String))
    }

    /// The raw signature of `hash` with the certificate's key, base64, in CryptoAPI's byte order.
    fn sign(&self, cert: &Certificate, hash: &[u8]) -> DssResult<String> {
        let (Some(want), Some(sealed)) = (cert.kind.hash_len(), cert.sealed_key.as_ref()) else {
            return Err(DssError::signature_params(
                "The raw signature of a hash needs a GOST R 34.10 key",
            ));
        };
        if hash.len() != want {
            return Err(DssError::signature_params(format!(
                "A hash for this key has {want} bytes (GOST R 34.11-2012 of its size)"
            )));
        }
        let key = self
            .vault
            .open(&crate::init::gost_key_purpose(cert.id), sealed)
            .map_err(|e| DssError::internal(&e.to_string()))?;
        let mut signature = gost::sign(&key, hash).map_err(|e| DssError::internal(&e))?;
        signature.reverse();
        Ok(STANDARD.encode(signature))
    }
}

/// `DName` of a certificate (RFC 4514).
fn dname(der: &[u8]) -> Option<String> {
    use der::Decode;
    x509_cert::Certificate::from_der(der)
        .ok()
        .map(|c| c.tbs_certificate().subject().to_string())
}
