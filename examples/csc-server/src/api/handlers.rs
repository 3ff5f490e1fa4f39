//! One function per CSC method: read the v1 or v2 request, call the service, shape the answer.

use super::params::{encode_base64, Params};
use super::views::{self, CertificatesMode};
use super::{LogContext, Method, Reply, Version};
use crate::algorithms::AlgorithmRequest;
use crate::error::{CscError, CscResult};
use crate::service::{
    Authorization, AuthorizeRequest, Caller, Service, SignRequest, MAX_DESCRIPTION,
};
use axum::http::{header, HeaderMap};
use base64::Engine;
use serde_json::{json, Value};
use std::net::SocketAddr;
use zeroize::Zeroizing;

/// The request as the HTTP layer received it.
pub struct Incoming<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub peer: SocketAddr,
}

pub fn handle(
    service: &Service,
    v: Version,
    m: Method,
    incoming: &Incoming<'_>,
    log: &mut LogContext,
) -> CscResult<Reply> {
    let (headers, body) = (incoming.headers, incoming.body);
    match m {
        Method::Info => {
            Params::parse(body)?;
            return Ok(Reply::Json(views::info(v, service)));
        }
        // auth/login and auth/revoke exist only while `serve --auth` accepts logins.
        Method::Login | Method::Revoke if !service.accepted().login => {
            return Err(CscError::not_found(&format!(
                "/csc/{}/{}",
                v.path(),
                m.name()
            )))
        }
        Method::Login => return login(service, headers, &mut Params::parse(body)?, log),
        _ => {}
    }
    // Authentication comes first: an anonymous caller learns nothing about its request's validity.
    let api_key = headers
        .get(crate::access::API_KEY_HEADER)
        .map(|v| v.to_str().map(|s| Zeroizing::new(s.trim().to_owned())))
        .transpose()
        .map_err(|_| CscError::invalid_request("Malformed x-api-key header"))?;
    let caller = service.authenticate_request(
        bearer(headers)?.as_deref().map(|s| s.as_str()),
        api_key.as_deref().map(|s| s.as_str()),
    )?;
    log.user = Some(caller.user.clone());
    let mut p = Params::parse(body)?;
    if let Ok(Some(id)) = p.opt_string("credentialID") {
        log.credential = Some(id.chars().take(100).collect());
    }
    match m {
        Method::Info | Method::Login => Err(CscError::internal("dispatch", "method handled above")),
        Method::Revoke => revoke(service, &caller, &mut p),
        Method::List => list(service, &caller, v, &p),
        Method::CredentialInfo => credential_info(service, &caller, v, &p),
        Method::Authorize => authorize(service, &caller, v, &mut p, &client(incoming)),
        Method::AuthorizeCheck => authorize_check(service, &caller, &mut p),
        Method::ExtendTransaction => extend_transaction(service, &caller, v, &mut p),
        Method::SendOtp | Method::GetChallenge => send_otp(service, &caller, &p),
        Method::SignHash => sign_hash(service, &caller, v, &mut p),
    }
}

fn authorization(headers: &HeaderMap, scheme: &str) -> CscResult<Option<Zeroizing<String>>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| CscError::invalid_request("Malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((s, rest)) if s.eq_ignore_ascii_case(scheme) => {
            Ok(Some(Zeroizing::new(rest.trim().to_owned())))
        }
        _ => Ok(None),
    }
}

fn bearer(headers: &HeaderMap) -> CscResult<Option<Zeroizing<String>>> {
    authorization(headers, "Bearer")
}

fn login(
    service: &Service,
    headers: &HeaderMap,
    p: &mut Params,
    log: &mut LogContext,
) -> CscResult<Reply> {
    let remember_me = p.opt_bool("rememberMe")?.unwrap_or(false);
    let tokens = if let Some(basic) = authorization(headers, "Basic")? {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(basic.as_bytes())
                .map_err(|_| CscError::invalid_request("Malformed HTTP Basic authorization"))?,
        );
        let colon = decoded
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| CscError::invalid_request("Malformed HTTP Basic authorization"))?;
        let user =
            std::str::from_utf8(&decoded[..colon]).map_err(|_| CscError::bad_credentials())?;
        let tokens = service.login_password(user, &decoded[colon + 1..], remember_me)?;
        log.user = Some(user.to_owned());
        tokens
    } else if let Some(refresh) = p.take_secret("refresh_token")? {
        service.login_refresh(&refresh)?
    } else {
        return Err(CscError::invalid_request(
            "Missing HTTP Basic authorization or refresh_token",
        ));
    };
    let mut body = json!({
        "access_token": tokens.access_token.as_str(),
        "expires_in": tokens.expires_in,
    });
    if let Some(r) = &tokens.refresh_token {
        body["refresh_token"] = json!(r.as_str());
    }
    Ok(Reply::Json(body))
}

fn revoke(service: &Service, caller: &Caller, p: &mut Params) -> CscResult<Reply> {
    match p.opt_string("token_type_hint")? {
        None | Some("access_token") | Some("refresh_token") => {}
        Some(_) => return Err(CscError::invalid_param("token_type_hint")),
    }
    let token = p
        .take_secret("token")?
        .ok_or_else(|| CscError::missing("string", "token"))?;
    service.revoke(caller, &token)?;
    Ok(Reply::NoContent)
}

fn certificates_mode(p: &Params) -> CscResult<CertificatesMode> {
    CertificatesMode::parse(p.opt_string("certificates")?)
        .ok_or_else(|| CscError::invalid_param("certificates"))
}

fn list(service: &Service, caller: &Caller, v: Version, p: &Params) -> CscResult<Reply> {
    if let Some(user) = p.opt_string("userID")? {
        if user != caller.user {
            return Err(CscError::invalid_param("userID"));
        }
    }
    let max = match p.opt_integer("maxResults")? {
        None => usize::MAX,
        Some(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
        Some(_) => return Err(CscError::invalid_param("maxResults")),
    };
    // The page token is the offset of the page in the caller's list.
    let start = match p.opt_string("pageToken")? {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| CscError::invalid_param("pageToken"))?,
    };
    let mine: Vec<_> = service.credentials_of(caller).collect();
    if start > mine.len() {
        return Err(CscError::invalid_param("pageToken"));
    }
    let page: Vec<_> = mine.iter().skip(start).take(max).collect();
    let next = start + page.len();
    let mut body =
        json!({ "credentialIDs": page.iter().map(|c| c.id.as_str()).collect::<Vec<_>>() });
    if next < mine.len() {
        body["nextPageToken"] = json!(next.to_string());
    }
    if v == Version::V2 {
        let mode = certificates_mode(p)?;
        p.opt_bool("certInfo")?;
        p.opt_bool("authInfo")?;
        if p.opt_bool("credentialInfo")?.unwrap_or(false) {
            body["credentialInfos"] = Value::Array(
                page.iter()
                    .map(|c| views::credential(v, c, mode, service.ca_der(), true))
                    .collect(),
            );
        }
        if let Some(only_valid) = p.opt_bool("onlyValid")? {
            // Every demo certificate is valid, so nothing is filtered out.
            body["onlyValid"] = json!(only_valid);
        }
    }
    Ok(Reply::Json(body))
}

fn credential_info(service: &Service, caller: &Caller, v: Version, p: &Params) -> CscResult<Reply> {
    let cred = service.credential(caller, p.string("credentialID")?)?;
    let mode = certificates_mode(p)?;
    // Certificate and authorization details are always returned; the flags are checked for type only.
    p.opt_bool("certInfo")?;
    p.opt_bool("authInfo")?;
    Ok(Reply::Json(views::credential(
        v,
        cred,
        mode,
        service.ca_der(),
        false,
    )))
}

fn description(p: &Params) -> CscResult<Option<&str>> {
    let d = p.opt_string("description")?;
    if d.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        return Err(CscError::invalid_param("description"));
    }
    Ok(d)
}

/// The hash values of a request: `hash` in v1, `hashes` in v2.
fn hashes(p: &Params, v: Version) -> CscResult<Option<Vec<Vec<u8>>>> {
    p.opt_base64_array(match v {
        Version::V1 => "hash",
        Version::V2 => "hashes",
    })
}

fn hash_algo_field(v: Version) -> &'static str {
    match v {
        Version::V1 => "hashAlgo",
        Version::V2 => "hashAlgorithmOID",
    }
}

/// Who is asking, for the approval page: the client's address and the software it names.
fn client(incoming: &Incoming<'_>) -> String {
    let agent: String = incoming
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unnamed client")
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    format!("{}, {agent}", incoming.peer.ip())
}

/// The answer to authorize and authorizeCheck: 200 with the SAD, or 202 with the handle to poll.
fn authorization_reply(a: Authorization) -> Reply {
    match a {
        Authorization::Granted(issued) => {
            Reply::Json(json!({ "SAD": issued.sad.as_str(), "expiresIn": issued.expires_in }))
        }
        Authorization::Pending { handle, .. } => {
            Reply::Accepted(json!({ "handle": handle.as_str() }))
        }
    }
}

fn authorize(
    service: &Service,
    caller: &Caller,
    v: Version,
    p: &mut Params,
    client: &str,
) -> CscResult<Reply> {
    let (pin, otp) = match v {
        Version::V1 => (p.take_secret("PIN")?, p.take_secret("OTP")?),
        Version::V2 => p.take_auth_data()?,
    };
    let req = AuthorizeRequest {
        credential_id: p.string("credentialID")?,
        num_signatures: u64::try_from(p.integer("numSignatures")?).unwrap_or(0),
        hashes: hashes(p, v)?,
        hash_algo: match v {
            Version::V1 => None,
            Version::V2 => p.opt_string("hashAlgorithmOID")?,
        },
        pin,
        otp,
        description: description(p)?,
        client: Some(client),
        can_poll: v == Version::V2,
    };
    Ok(authorization_reply(service.authorize(caller, req)?))
}

fn authorize_check(service: &Service, caller: &Caller, p: &mut Params) -> CscResult<Reply> {
    let handle = p
        .take_secret("handle")?
        .ok_or_else(|| CscError::missing("string", "handle"))?;
    Ok(authorization_reply(
        service.authorize_check(caller, &handle)?,
    ))
}

fn extend_transaction(
    service: &Service,
    caller: &Caller,
    v: Version,
    p: &mut Params,
) -> CscResult<Reply> {
    let sad = p
        .take_secret("SAD")?
        .ok_or_else(|| CscError::missing("string", "SAD"))?;
    let hash_algo = match v {
        Version::V1 => None,
        Version::V2 => p.opt_string("hashAlgorithmOID")?,
    };
    let issued = service.extend_transaction(
        caller,
        p.string("credentialID")?,
        &sad,
        hashes(p, v)?,
        hash_algo,
    )?;
    Ok(Reply::Json(
        json!({ "SAD": issued.sad.as_str(), "expiresIn": issued.expires_in }),
    ))
}

fn send_otp(service: &Service, caller: &Caller, p: &Params) -> CscResult<Reply> {
    service.send_otp(caller, p.string("credentialID")?, description(p)?)?;
    Ok(Reply::Json(json!({})))
}

fn sign_hash(service: &Service, caller: &Caller, v: Version, p: &mut Params) -> CscResult<Reply> {
    let sad = p
        .take_secret("SAD")?
        .ok_or_else(|| CscError::missing("string", "SAD"))?;
    if v == Version::V2 {
        // The asynchronous mode ("A") is not offered (info.asynchronousOperationMode is false).
        match p.opt_string("operationMode")? {
            None | Some("S") => {}
            Some(_) => return Err(CscError::invalid_param("operationMode")),
        }
    }
    let hash_field = hash_algo_field(v);
    let params = p.opt_base64("signAlgoParams")?;
    let hash_values = hashes(p, v)?.ok_or_else(|| {
        CscError::missing(
            "array",
            match v {
                Version::V1 => "hash",
                Version::V2 => "hashes",
            },
        )
    })?;
    let req = SignRequest {
        credential_id: p.string("credentialID")?,
        sad,
        hashes: hash_values,
        algorithm: AlgorithmRequest {
            sign_algo: p.string("signAlgo")?,
            hash_algo: p.opt_string(hash_field)?,
            hash_field,
            params: params.as_deref(),
        },
    };
    let signatures = service.sign_hash(caller, req)?;
    Ok(Reply::Json(json!({
        "signatures": signatures.iter().map(|s| encode_base64(s)).collect::<Vec<_>>()
    })))
}
