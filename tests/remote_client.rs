//! The CSC client library against a real csc-server: log-in, listing, credential info, authorization with
//! PIN + TOTP and PIN + SMS, signHash with every key type over both API versions (each signature verified
//! by `openssl` against the credential's certificate), and every protection the service claims: wrong PIN
//! or OTP, replayed TOTP, single-use SMS codes, lockout, expired and exhausted SADs, SCAL 2 hash binding,
//! other users' credentials, TLS trust, plain HTTP, unreachable services, and no secret in error text.
//!
//! One shared service serves most tests. TOTP codes are single-use per time step, so each TOTP credential
//! is authorized at most twice per test run, and each SMS credential is used by one test only (a new SMS
//! code replaces the previous one).

use remote_client::*;
use sha2::Digest;
use std::path::Path;
use std::time::Duration;
use support::totp::wrong_totp;
use support::{openssl_verify, totp_code, DemoCredential, Scheme, Service};

fn client_for(svc: &Service, version: ApiVersion) -> CscClient {
    let mut cfg = ClientConfig::new(svc.url.clone());
    cfg.api_version = version;
    cfg.ca_file = Some(svc.ca_file());
    cfg.connect_timeout = Duration::from_secs(5);
    cfg.request_timeout = Duration::from_secs(30);
    CscClient::new(&cfg).expect("client")
}

fn cred<'a>(svc: &'a Service, id: &str) -> &'a DemoCredential {
    svc.demo.find(|c| c.id == id).1
}

fn pin_of(svc: &Service, user: &str) -> Secret {
    Secret::new(svc.demo.token_of(user).pin.clone())
}

fn access(svc: &Service, c: &CscClient, user: &str) -> Secret {
    c.refresh(&Secret::new(svc.refresh_token(user)))
        .expect("log in with the refresh token")
        .access_token
}

/// A fresh second factor: the next TOTP code, or an SMS the service sends on request.
fn otp(svc: &Service, c: &CscClient, at: &Secret, id: &str) -> Secret {
    let cred = cred(svc, id);
    match cred.otp.as_str() {
        "totp" => Secret::new(totp_code(cred)),
        "sms" => {
            let seen = svc.sms_messages(id).len();
            c.send_otp(at, id).expect("send OTP");
            Secret::new(svc.wait_sms_code(id, seen))
        }
        other => panic!("unknown OTP kind {other}"),
    }
}

fn sha(alg: &str, data: &[u8]) -> Vec<u8> {
    match alg {
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha384" => sha2::Sha384::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        _ => panic!("{alg}"),
    }
}

fn hash_oid(alg: &str) -> &'static str {
    match alg {
        "sha256" => oid::SHA256,
        "sha384" => oid::SHA384,
        "sha512" => oid::SHA512,
        _ => panic!("{alg}"),
    }
}

fn pss_params(alg: &str) -> Vec<u8> {
    use der::Encode;
    use pkcs1::RsaPssParams;
    let p = match alg {
        "sha256" => RsaPssParams::new::<sha2::Sha256>(32),
        "sha384" => RsaPssParams::new::<sha2::Sha384>(48),
        "sha512" => RsaPssParams::new::<sha2::Sha512>(64),
        _ => panic!("{alg}"),
    };
    p.to_der().expect("encode RSASSA-PSS-params")
}

struct AuthReq<'a> {
    id: &'a str,
    n: u32,
    hashes: Vec<Vec<u8>>,
    hash_alg: Option<&'a str>,
    pin: Option<Secret>,
    otp: Option<Secret>,
}

fn authorize(c: &CscClient, at: &Secret, r: AuthReq) -> Result<Sad> {
    let req = AuthorizeRequest {
        credential_id: r.id.into(),
        num_signatures: r.n,
        hashes: r.hashes,
        hash_algorithm_oid: r.hash_alg.map(|a| hash_oid(a).to_owned()),
        pin: r.pin,
        otp: r.otp,
        description: Some(format!("remote_client test, {}", r.id)),
        client_data: None,
    };
    match c.authorize(at, &req)? {
        Authorization::Granted(sad) => Ok(sad),
        Authorization::Pending { .. } => panic!("the reference service authorizes synchronously"),
    }
}

/// Authorizes `n` signatures with the user's PIN and a fresh OTP.
fn authorize_ok(svc: &Service, c: &CscClient, at: &Secret, user: &str, id: &str, n: u32) -> Sad {
    let otp = otp(svc, c, at, id);
    authorize(
        c,
        at,
        AuthReq {
            id,
            n,
            hashes: vec![],
            hash_alg: None,
            pin: Some(pin_of(svc, user)),
            otp: Some(otp),
        },
    )
    .unwrap_or_else(|e| panic!("authorize {id}: {e}"))
}

#[derive(Clone, Copy)]
enum Algo {
    RsaPkcs1,
    RsaPss,
    Ecdsa,
}

fn sign(
    c: &CscClient,
    at: &Secret,
    id: &str,
    sad: &Secret,
    hashes: &[Vec<u8>],
    alg: &str,
    algo: Algo,
) -> Result<Vec<Vec<u8>>> {
    let (sign_oid, params) = match (algo, alg) {
        (Algo::RsaPkcs1, "sha256") => (oid::SHA256_WITH_RSA, None),
        (Algo::RsaPkcs1, "sha384") => (oid::SHA384_WITH_RSA, None),
        (Algo::RsaPkcs1, "sha512") => (oid::SHA512_WITH_RSA, None),
        (Algo::RsaPss, a) => (oid::RSASSA_PSS, Some(pss_params(a))),
        (Algo::Ecdsa, "sha256") => (oid::ECDSA_WITH_SHA256, None),
        (Algo::Ecdsa, "sha384") => (oid::ECDSA_WITH_SHA384, None),
        (Algo::Ecdsa, "sha512") => (oid::ECDSA_WITH_SHA512, None),
        _ => panic!("{alg}"),
    };
    c.sign_hash(
        at,
        &SignHashRequest {
            credential_id: id.into(),
            sad: sad.clone(),
            hashes: hashes.to_vec(),
            hash_algorithm_oid: hash_oid(alg).into(),
            sign_algorithm_oid: sign_oid.into(),
            sign_algorithm_params: params,
        },
    )
}

fn scheme(algo: Algo, alg: &str) -> Scheme {
    match algo {
        Algo::RsaPkcs1 => Scheme::RsaPkcs1,
        Algo::RsaPss => Scheme::RsaPss {
            salt_len: sha(alg, b"").len(),
        },
        Algo::Ecdsa => Scheme::EcdsaDer,
    }
}

/// Signs `hashes` and checks every signature with openssl against the credential's certificate.
#[allow(clippy::too_many_arguments)]
fn sign_and_verify(
    c: &CscClient,
    at: &Secret,
    id: &str,
    cert: &[u8],
    sad: &Secret,
    hashes: &[Vec<u8>],
    alg: &str,
    algo: Algo,
) {
    let sigs = sign(c, at, id, sad, hashes, alg, algo).unwrap_or_else(|e| panic!("sign {id}: {e}"));
    assert_eq!(sigs.len(), hashes.len());
    for (h, s) in hashes.iter().zip(&sigs) {
        assert!(
            openssl_verify(cert, alg, h, s, scheme(algo, alg)),
            "{id}: openssl rejects the {alg} signature"
        );
        // The signature is over this hash and no other.
        let other = sha(alg, b"some other document");
        assert!(!openssl_verify(cert, alg, &other, s, scheme(algo, alg)));
    }
}

fn leaf_cert(c: &CscClient, at: &Secret, id: &str) -> Vec<u8> {
    let info = c.credential_info(at, id).expect("credentials/info");
    assert!(
        !info.certificates.is_empty(),
        "{id} has a certificate chain"
    );
    info.certificates[0].clone()
}

fn assert_reason<T: std::fmt::Debug>(r: Result<T>, want: Reason, what: &str) -> Error {
    match r {
        Ok(v) => panic!("{what}: expected {want:?}, got success {v:?}"),
        Err(e) => {
            assert_eq!(e.reason(), want, "{what}: {e}");
            e
        }
    }
}

/// No error text or Debug output may contain any of `secrets`.
fn assert_no_secret(errors: &[Error], secrets: &[&str]) {
    for e in errors {
        let text = format!("{e} | {e:?}");
        for s in secrets {
            assert!(!text.contains(s), "a secret leaked into: {text}");
        }
    }
}

fn docs(n: usize, alg: &str, tag: &str) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| sha(alg, format!("document {i} for {tag}").as_bytes()))
        .collect()
}

// ---------------------------------------------------------------------------------------------------

#[test]
fn login_with_password_and_refresh_token_on_both_versions() {
    let svc = Service::shared();
    let alice = svc.demo.token_of("alice");
    for version in [ApiVersion::V1, ApiVersion::V2] {
        let c = client_for(svc, version);
        assert_eq!(c.api_version().unwrap(), version);
        let password = Secret::new(alice.password.clone());
        let t = c.login("alice", &password, true).expect("password login");
        assert!(!t.access_token.is_empty());
        let refresh = t
            .refresh_token
            .clone()
            .expect("rememberMe gives a refresh token");
        assert!(t.expires_in.is_some_and(|d| d > Duration::ZERO));
        let ids = c.list_credentials(&t.access_token).expect("list");
        assert!(ids.contains(&"alice-rsa2048".to_owned()));

        let t2 = c.refresh(&refresh).expect("refresh-token login");
        assert_ne!(t2.access_token.expose(), t.access_token.expose());
        assert_eq!(c.list_credentials(&t2.access_token).unwrap(), ids);

        // The enrolment refresh token works as well.
        let at = access(svc, &c, "alice");
        assert_eq!(c.list_credentials(&at).unwrap(), ids);

        // A revoked access token is refused.
        c.revoke(&t.access_token, &t.access_token, "access_token")
            .expect("revoke");
        let e = assert_reason(
            c.list_credentials(&t.access_token),
            Reason::TokenExpired,
            "revoked token",
        );
        assert_no_secret(
            &[e],
            &[t.access_token.expose(), refresh.expose(), password.expose()],
        );
        let e = assert_reason(
            c.list_credentials(&Secret::new("not-a-token-at-all")),
            Reason::TokenExpired,
            "bogus token",
        );
        assert!(matches!(e, Error::Csc { status: 401, .. }), "{e:?}");
        let e = assert_reason(
            c.refresh(&Secret::new("not-a-refresh-token")),
            Reason::WrongPassword,
            "bogus refresh token",
        );
        assert_no_secret(&[e], &["not-a-refresh-token"]);
    }
}

#[test]
fn api_version_auto_picks_v2_and_info_describes_the_service() {
    let svc = Service::shared();
    let c = client_for(svc, ApiVersion::Auto);
    assert_eq!(c.api_version().unwrap(), ApiVersion::V2);
    let v2 = c.info().unwrap();
    assert!(v2.specs.starts_with("2."), "{}", v2.specs);
    assert!(v2.methods.iter().any(|m| m == "signatures/signHash"));
    assert!(v2
        .sign_algorithms
        .iter()
        .any(|a| a == oid::ECDSA_WITH_SHA256));
    let v1 = client_for(svc, ApiVersion::V1).info().unwrap();
    assert!(v1.specs.starts_with("1."), "{}", v1.specs);
    assert!(v1.methods.iter().any(|m| m == "credentials/sendOTP"));
}

#[test]
fn list_and_credential_info_agree_across_versions() {
    let svc = Service::shared();
    for user in ["alice", "bob", "seal"] {
        let token = svc.demo.token_of(user);
        let mut infos = Vec::new();
        for version in [ApiVersion::V1, ApiVersion::V2] {
            let c = client_for(svc, version);
            let at = access(svc, &c, user);
            let mut ids = c.list_credentials(&at).unwrap();
            let mut want: Vec<String> = token.credentials.iter().map(|c| c.id.clone()).collect();
            ids.sort();
            want.sort();
            assert_eq!(ids, want, "{user} lists exactly their own credentials");
            let all: Vec<CredentialInfo> = ids
                .iter()
                .map(|id| c.credential_info(&at, id).unwrap())
                .collect();
            infos.push(all);
        }
        for (a, b) in infos[0].iter().zip(&infos[1]) {
            let d = cred(svc, &a.id);
            for info in [a, b] {
                let (len, curve) = match d.key.as_str() {
                    "rsa-2048" => (2048, None),
                    "rsa-3072" => (3072, None),
                    "ec-p256" => (256, Some(oid::P256)),
                    "ec-p384" => (384, Some(oid::P384)),
                    k => panic!("{k}"),
                };
                assert_eq!(info.key.len, len, "{}", a.id);
                assert_eq!(info.key.curve.as_deref(), curve, "{}", a.id);
                assert_eq!(info.key.status, "enabled");
                if curve.is_some() {
                    assert!(info.key.algos.iter().any(|x| x == oid::ECDSA_WITH_SHA256));
                } else {
                    assert!(info.key.algos.iter().any(|x| x == oid::SHA256_WITH_RSA));
                    assert!(info.key.algos.iter().any(|x| x == oid::RSASSA_PSS));
                }
                assert!(info.certificates.len() >= 2, "leaf and CA: {}", a.id);
                assert_eq!(info.multisign, d.multisign, "{}", a.id);
                let scal = if d.scal == 2 { Scal::Two } else { Scal::One };
                assert_eq!(info.scal, scal, "{}", a.id);
                assert_eq!(info.auth.mode, AuthMode::Explicit);
                assert!(info.auth.pin.is_some(), "{} needs a PIN", a.id);
                if d.otp == "approval" || d.otp == "none" {
                    // Approved out of band on the approval page (tests/approval.rs), or the PIN
                    // alone (the e-seals): no OTP.
                    assert!(info.auth.otp.is_none(), "{} takes no OTP", a.id);
                } else {
                    let otp = info.auth.otp.as_ref().expect("needs an OTP");
                    let kind = if d.otp == "sms" {
                        OtpType::Online
                    } else {
                        OtpType::Offline
                    };
                    assert_eq!(otp.otp_type, kind, "{} OTP kind", a.id);
                    assert_eq!(otp.factor.length, Some(6), "{} OTP length", a.id);
                }
                assert!(info.subject_dn.is_some() && info.issuer_dn.is_some());
            }
            // v1 and v2 describe the same credential.
            assert_eq!(a.certificates, b.certificates, "{}", a.id);
            assert_eq!(a.key.algos, b.key.algos);
            assert_eq!(a.subject_dn, b.subject_dn);
            assert_eq!(a.description, b.description);
            assert_eq!(
                a.auth.pin.as_ref().unwrap().length,
                b.auth.pin.as_ref().unwrap().length
            );
            // The leaf is a DER certificate openssl reads.
            let out = std::process::Command::new("openssl")
                .args(["x509", "-inform", "DER", "-noout", "-subject"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write;
                    child.stdin.take().unwrap().write_all(&a.certificates[0])?;
                    child.wait_with_output()
                })
                .unwrap();
            assert!(out.status.success(), "{}: leaf is a DER certificate", a.id);
        }
    }
}

/// The organisation's e-seals authorize with the PIN alone (v1 and v2), for large batches, and sign
/// in the HSM: PKCS#1 v1.5, PSS and ECDSA, verified by openssl.
#[test]
fn eseals_authorize_with_the_pin_alone_on_both_versions() {
    let svc = Service::shared();
    for version in [ApiVersion::V1, ApiVersion::V2] {
        let c = client_for(svc, version);
        let at = access(svc, &c, "seal");
        let tag = format!("seal {version:?}");
        for (id, algos) in [
            ("seal-rsa2048", &[Algo::RsaPkcs1, Algo::RsaPss][..]),
            ("seal-p256", &[Algo::Ecdsa][..]),
        ] {
            assert_eq!(cred(svc, id).otp, "none");
            let cert = leaf_cert(&c, &at, id);
            let sad = authorize(
                &c,
                &at,
                AuthReq {
                    id,
                    n: 10_000,
                    hashes: vec![],
                    hash_alg: None,
                    pin: Some(pin_of(svc, "seal")),
                    otp: None,
                },
            )
            .unwrap_or_else(|e| panic!("authorize {id}: {e}"));
            assert_eq!(sad.expires_in, Duration::from_secs(3600), "{id}");
            for algo in algos {
                sign_and_verify(
                    &c,
                    &at,
                    id,
                    &cert,
                    &sad.value,
                    &docs(4, "sha256", &tag),
                    "sha256",
                    *algo,
                );
            }
        }
    }
}

/// RSA-2048, TOTP: PKCS#1 v1.5 and PSS on both versions; a batch of hashes in one signHash call.
#[test]
fn rsa2048_pkcs1_and_pss_with_totp_on_both_versions() {
    let svc = Service::shared();
    let id = "alice-rsa2048";
    for version in [ApiVersion::V1, ApiVersion::V2] {
        let c = client_for(svc, version);
        let at = access(svc, &c, "alice");
        let cert = leaf_cert(&c, &at, id);
        let sad = authorize_ok(svc, &c, &at, "alice", id, 6);
        let tag = format!("{version:?}");
        sign_and_verify(
            &c,
            &at,
            id,
            &cert,
            &sad.value,
            &docs(3, "sha256", &tag),
            "sha256",
            Algo::RsaPkcs1,
        );
        sign_and_verify(
            &c,
            &at,
            id,
            &cert,
            &sad.value,
            &docs(1, "sha256", &tag),
            "sha256",
            Algo::RsaPss,
        );
        sign_and_verify(
            &c,
            &at,
            id,
            &cert,
            &sad.value,
            &docs(1, "sha384", &tag),
            "sha384",
            Algo::RsaPss,
        );
        sign_and_verify(
            &c,
            &at,
            id,
            &cert,
            &sad.value,
            &docs(1, "sha512", &tag),
            "sha512",
            Algo::RsaPkcs1,
        );
        // Six signatures were authorized and six made: the SAD is used up.
        let e = assert_reason(
            sign(
                &c,
                &at,
                id,
                &sad.value,
                &docs(1, "sha256", "seventh"),
                "sha256",
                Algo::RsaPkcs1,
            ),
            Reason::SadExpired,
            "exhausted SAD",
        );
        assert_no_secret(&[e], &[sad.value.expose(), at.expose()]);
    }
}

/// RSA-3072, SMS: both versions, and extendTransaction.
#[test]
fn rsa3072_with_sms_on_both_versions_and_extend_transaction() {
    let svc = Service::shared();
    let id = "alice-rsa3072";
    for version in [ApiVersion::V1, ApiVersion::V2] {
        let c = client_for(svc, version);
        let at = access(svc, &c, "alice");
        let cert = leaf_cert(&c, &at, id);
        let sad = authorize_ok(svc, &c, &at, "alice", id, 2);
        let tag = format!("{version:?}");
        sign_and_verify(
            &c,
            &at,
            id,
            &cert,
            &sad.value,
            &docs(1, "sha256", &tag),
            "sha256",
            Algo::RsaPkcs1,
        );
        let extended = c
            .extend_transaction(&at, id, &[], None, &sad.value)
            .expect("extendTransaction");
        assert!(!extended.value.is_empty());
        assert!(extended.expires_in > Duration::ZERO);
        sign_and_verify(
            &c,
            &at,
            id,
            &cert,
            &extended.value,
            &docs(1, "sha384", &tag),
            "sha384",
            Algo::RsaPss,
        );
    }
}

/// P-256, TOTP: both versions; numSignatures is enforced.
#[test]
fn p256_ecdsa_with_totp_on_both_versions() {
    let svc = Service::shared();
    let id = "alice-p256";
    for version in [ApiVersion::V1, ApiVersion::V2] {
        let c = client_for(svc, version);
        let at = access(svc, &c, "alice");
        let cert = leaf_cert(&c, &at, id);
        let sad = authorize_ok(svc, &c, &at, "alice", id, 2);
        let tag = format!("{version:?}");
        // Asking for more than is left signs nothing.
        let e = assert_reason(
            sign(
                &c,
                &at,
                id,
                &sad.value,
                &docs(3, "sha256", &tag),
                "sha256",
                Algo::Ecdsa,
            ),
            Reason::SadExpired,
            "three signatures on a SAD for two",
        );
        assert_no_secret(&[e], &[sad.value.expose()]);
        sign_and_verify(
            &c,
            &at,
            id,
            &cert,
            &sad.value,
            &docs(2, "sha256", &tag),
            "sha256",
            Algo::Ecdsa,
        );
        assert_reason(
            sign(
                &c,
                &at,
                id,
                &sad.value,
                &docs(1, "sha256", "third"),
                "sha256",
                Algo::Ecdsa,
            ),
            Reason::SadExpired,
            "exhausted SAD",
        );
    }
}

/// P-384, SMS: both versions; an SMS code works once.
#[test]
fn p384_ecdsa_with_sms_on_both_versions_and_sms_codes_are_single_use() {
    let svc = Service::shared();
    let id = "alice-p384";
    let pin = pin_of(svc, "alice");
    for version in [ApiVersion::V1, ApiVersion::V2] {
        let c = client_for(svc, version);
        let at = access(svc, &c, "alice");
        let cert = leaf_cert(&c, &at, id);
        let code = otp(svc, &c, &at, id);
        let req = |code: &Secret| AuthReq {
            id,
            n: 1,
            hashes: vec![],
            hash_alg: None,
            pin: Some(pin.clone()),
            otp: Some(code.clone()),
        };
        let sad = authorize(&c, &at, req(&code)).expect("authorize with the SMS code");
        let tag = format!("{version:?}");
        // bob cannot use alice's SAD on alice's credential.
        let bob = access(svc, &c, "bob");
        let e = assert_reason(
            sign(
                &c,
                &bob,
                id,
                &sad.value,
                &docs(1, "sha384", "bob"),
                "sha384",
                Algo::Ecdsa,
            ),
            Reason::InvalidRequest,
            "bob uses alice's SAD",
        );
        assert_no_secret(&[e], &[sad.value.expose(), bob.expose()]);
        sign_and_verify(
            &c,
            &at,
            id,
            &cert,
            &sad.value,
            &docs(1, "sha384", &tag),
            "sha384",
            Algo::Ecdsa,
        );
        let e = assert_reason(
            authorize(&c, &at, req(&code)),
            Reason::OtpIncorrect,
            "the same SMS code a second time",
        );
        assert_no_secret(&[e], &[code.expose(), pin.expose(), at.expose()]);
    }
}

/// SCAL 2: the SAD covers exactly the authorized hashes.
#[test]
fn scal2_binds_the_sad_to_the_authorized_hashes() {
    let svc = Service::shared();
    for (id, algo, alg, versions) in [
        (
            "bob-rsa2048-scal2",
            Algo::RsaPkcs1,
            "sha256",
            &[ApiVersion::V1, ApiVersion::V2][..],
        ),
        (
            "bob-p256-scal2",
            Algo::Ecdsa,
            "sha256",
            &[ApiVersion::V2][..],
        ),
    ] {
        for &version in versions {
            let c = client_for(svc, version);
            let at = access(svc, &c, "bob");
            let cert = leaf_cert(&c, &at, id);
            let tag = format!("{id} {version:?}");
            let authorized = docs(2, alg, &tag);
            let otp = otp(svc, &c, &at, id);
            let sad = authorize(
                &c,
                &at,
                AuthReq {
                    id,
                    n: 2,
                    hashes: authorized.clone(),
                    hash_alg: Some(alg),
                    pin: Some(pin_of(svc, "bob")),
                    otp: Some(otp),
                },
            )
            .unwrap_or_else(|e| panic!("authorize {tag}: {e}"));
            let e = assert_reason(
                sign(
                    &c,
                    &at,
                    id,
                    &sad.value,
                    &docs(1, alg, "not authorized"),
                    alg,
                    algo,
                ),
                Reason::HashNotAuthorized,
                &tag,
            );
            assert_no_secret(&[e], &[sad.value.expose()]);
            // A batch with one unauthorized hash is refused as a whole.
            let mixed = vec![authorized[0].clone(), sha(alg, b"smuggled")];
            assert_reason(
                sign(&c, &at, id, &sad.value, &mixed, alg, algo),
                Reason::HashNotAuthorized,
                &tag,
            );
            sign_and_verify(&c, &at, id, &cert, &sad.value, &authorized, alg, algo);
        }
    }
}

/// bob-p256-single: multisign 1; a TOTP code is refused the second time.
#[test]
fn replayed_totp_and_multisign_limit() {
    let svc = Service::shared();
    let id = "bob-p256-single";
    let c = client_for(svc, ApiVersion::V2);
    let at = access(svc, &c, "bob");
    let info = c.credential_info(&at, id).unwrap();
    assert_eq!(info.multisign, 1);
    let code = Secret::new(totp_code(cred(svc, id)));
    let pin = pin_of(svc, "bob");
    let req = |n: u32| AuthReq {
        id,
        n,
        hashes: vec![],
        hash_alg: None,
        pin: Some(pin.clone()),
        otp: Some(code.clone()),
    };
    let mut errors = vec![assert_reason(
        authorize(&c, &at, req(2)),
        Reason::InvalidRequest,
        "numSignatures above multisign",
    )];
    let sad = authorize(&c, &at, req(1)).expect("authorize");
    let cert = leaf_cert(&c, &at, id);
    sign_and_verify(
        &c,
        &at,
        id,
        &cert,
        &sad.value,
        &docs(1, "sha256", id),
        "sha256",
        Algo::Ecdsa,
    );
    errors.push(assert_reason(
        authorize(&c, &at, req(1)),
        Reason::OtpIncorrect,
        "replayed TOTP code",
    ));
    assert_no_secret(&errors, &[code.expose(), pin.expose(), at.expose()]);
}

/// carol (for destructive tests): wrong password, wrong PIN, wrong OTP, then the PIN locks.
#[test]
fn wrong_secrets_are_refused_and_the_pin_locks() {
    let svc = Service::shared();
    let carol = svc.demo.token_of("carol");
    let c = client_for(svc, ApiVersion::V2);
    let mut errors = Vec::new();

    let wrong_password = Secret::new(format!("{}-wrong", carol.password));
    errors.push(assert_reason(
        c.login("carol", &wrong_password, false),
        Reason::WrongPassword,
        "wrong password",
    ));
    let at = c
        .login("carol", &Secret::new(carol.password.clone()), false)
        .expect("carol's password")
        .access_token;

    // carol-p256 (TOTP): wrong OTP with the right PIN, then the right OTP with a wrong PIN.
    let id = "carol-p256";
    let pin = pin_of(svc, "carol");
    let wrong_pin = Secret::new(if pin.expose() == "999999" {
        "999998"
    } else {
        "999999"
    });
    let bad_otp = Secret::new(wrong_totp(cred(svc, id)));
    let req = |pin: &Secret, otp: &Secret| AuthReq {
        id,
        n: 1,
        hashes: vec![],
        hash_alg: None,
        pin: Some(pin.clone()),
        otp: Some(otp.clone()),
    };
    errors.push(assert_reason(
        authorize(&c, &at, req(&pin, &bad_otp)),
        Reason::OtpIncorrect,
        "wrong OTP",
    ));
    let good_otp = Secret::new(totp_code(cred(svc, id)));
    errors.push(assert_reason(
        authorize(&c, &at, req(&wrong_pin, &good_otp)),
        Reason::PinIncorrect,
        "wrong PIN",
    ));

    // carol-p256-sms: wrong PINs until the service locks, after which even the right PIN is refused.
    let id = "carol-p256-sms";
    let mut locked = false;
    for _ in 0..20 {
        let code = otp(svc, &c, &at, id);
        let r = authorize(
            &c,
            &at,
            AuthReq {
                id,
                n: 1,
                hashes: vec![],
                hash_alg: None,
                pin: Some(wrong_pin.clone()),
                otp: Some(code),
            },
        );
        let e = r.expect_err("a wrong PIN is never accepted");
        match e.reason() {
            Reason::PinIncorrect => {}
            Reason::Locked => {
                locked = true;
                errors.push(e);
                break;
            }
            other => panic!("unexpected {other:?}: {e}"),
        }
        errors.push(e);
    }
    assert!(locked, "the PIN never locked");
    let code = otp(svc, &c, &at, id);
    errors.push(assert_reason(
        authorize(
            &c,
            &at,
            AuthReq {
                id,
                n: 1,
                hashes: vec![],
                hash_alg: None,
                pin: Some(pin.clone()),
                otp: Some(code.clone()),
            },
        ),
        Reason::Locked,
        "right PIN after the lock",
    ));
    assert_no_secret(
        &errors,
        &[
            pin.expose(),
            wrong_pin.expose(),
            bad_otp.expose(),
            good_otp.expose(),
            code.expose(),
            wrong_password.expose(),
            &carol.password,
            at.expose(),
        ],
    );
}

/// alice's token cannot reach bob's credentials: not their info, not an authorization, not a signature.
#[test]
fn other_users_credentials_are_out_of_reach() {
    let svc = Service::shared();
    for version in [ApiVersion::V1, ApiVersion::V2] {
        let c = client_for(svc, version);
        let alice = access(svc, &c, "alice");
        let bob = access(svc, &c, "bob");
        let ids = c.list_credentials(&alice).unwrap();
        assert!(ids.iter().all(|i| i.starts_with("alice-")), "{ids:?}");
        let id = "bob-p256-scal2";
        assert_reason(
            c.credential_info(&alice, id),
            Reason::InvalidRequest,
            "alice reads bob's credential",
        );
        assert_reason(
            authorize(
                &c,
                &alice,
                AuthReq {
                    id,
                    n: 1,
                    hashes: vec![sha("sha256", b"x")],
                    hash_alg: Some("sha256"),
                    pin: Some(pin_of(svc, "bob")),
                    otp: Some(Secret::new("123456")),
                },
            ),
            Reason::InvalidRequest,
            "alice authorizes bob's credential",
        );
        // bob's token with a made-up SAD on alice's credential.
        let e = sign(
            &c,
            &bob,
            "alice-p256",
            &Secret::new("forged-sad-value"),
            &docs(1, "sha256", "x"),
            "sha256",
            Algo::Ecdsa,
        )
        .expect_err("bob signs with alice's credential");
        assert!(matches!(e, Error::Csc { status: 400, .. }), "{e:?}");
        assert_reason(
            c.credential_info(&alice, "no-such-credential"),
            Reason::InvalidRequest,
            "unknown credential",
        );
    }
}

#[test]
fn expired_sad_is_refused() {
    // A service of its own with one-second SADs; an SMS credential, so no TOTP step is spent.
    let svc = Service::start_fresh_with(&["--sad-lifetime", "1"]);
    let id = "alice-p384";
    for version in [ApiVersion::V1, ApiVersion::V2] {
        let c = client_for(&svc, version);
        let at = access(&svc, &c, "alice");
        let sad = authorize_ok(&svc, &c, &at, "alice", id, 5);
        assert!(
            sad.expires_in <= Duration::from_secs(1),
            "{:?}",
            sad.expires_in
        );
        std::thread::sleep(Duration::from_millis(2100));
        let e = assert_reason(
            sign(
                &c,
                &at,
                id,
                &sad.value,
                &docs(1, "sha256", "late"),
                "sha256",
                Algo::Ecdsa,
            ),
            Reason::SadExpired,
            "expired SAD",
        );
        assert_no_secret(&[e], &[sad.value.expose(), at.expose()]);
    }
}

#[test]
fn plain_http_is_refused_by_the_client() {
    let svc = Service::shared();
    let http_url = svc.url.replacen("https://", "http://", 1);
    assert!(http_url.starts_with("http://"));
    let cfg = ClientConfig::new(http_url.clone());
    assert!(matches!(CscClient::new(&cfg), Err(Error::Config(_))));
    // Even with the loopback exception, a non-loopback host is refused.
    let mut cfg = ClientConfig::new("http://192.0.2.10:8080");
    cfg.allow_loopback_http = true;
    assert!(matches!(CscClient::new(&cfg), Err(Error::Config(_))));
    // The loopback exception over a TLS port gets no usable answer, and never a signature.
    let mut cfg = ClientConfig::new(http_url);
    cfg.allow_loopback_http = true;
    cfg.api_version = ApiVersion::V2;
    let c = CscClient::new(&cfg).unwrap();
    assert!(c.info().is_err());
}

fn throwaway_ca(dir: &Path) -> std::path::PathBuf {
    let pem = dir.join("other-ca.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=Not the service CA", "-days", "1", "-keyout"])
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&pem)
        .output()
        .expect("openssl req");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pem
}

#[test]
fn wrong_ca_is_a_tls_error() {
    let svc = Service::shared();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ClientConfig::new(svc.url.clone());
    cfg.ca_file = Some(throwaway_ca(dir.path()));
    cfg.api_version = ApiVersion::V2;
    let c = CscClient::new(&cfg).unwrap();
    let alice = svc.demo.token_of("alice");
    let password = Secret::new(alice.password.clone());
    let e = c.login("alice", &password, false).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Transport {
                kind: TransportKind::Tls,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.reason(), Reason::Transport);
    assert!(!e.is_retryable());
    assert_no_secret(&[e], &[password.expose()]);
}

#[test]
fn unreachable_service_is_a_transport_error() {
    let svc = Service::shared();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = ClientConfig::new(format!("https://127.0.0.1:{port}"));
    cfg.ca_file = Some(svc.ca_file());
    cfg.connect_timeout = Duration::from_secs(2);
    let c = CscClient::new(&cfg).unwrap();
    for r in [c.api_version().map(|_| ()), c.info().map(|_| ())] {
        let e = r.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Transport {
                    kind: TransportKind::Unreachable,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.is_retryable());
    }
}

#[test]
fn one_client_serves_many_threads() {
    let svc = Service::shared();
    let c = client_for(svc, ApiVersion::Auto);
    let at = access(svc, &c, "alice");
    let want = c.list_credentials(&at).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..5 {
                        assert_eq!(c.list_credentials(&at).unwrap(), want);
                        c.credential_info(&at, "alice-p256").unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

#[test]
fn debug_output_of_requests_and_results_hides_secrets() {
    let req = AuthorizeRequest {
        credential_id: "c".into(),
        num_signatures: 1,
        hashes: vec![],
        hash_algorithm_oid: None,
        pin: Some(Secret::new("pin-4711-secret")),
        otp: Some(Secret::new("otp-0815-secret")),
        description: None,
        client_data: None,
    };
    let sign = SignHashRequest {
        credential_id: "c".into(),
        sad: Secret::new("sad-abc-secret"),
        hashes: vec![vec![0; 32]],
        hash_algorithm_oid: oid::SHA256.into(),
        sign_algorithm_oid: oid::ECDSA_WITH_SHA256.into(),
        sign_algorithm_params: None,
    };
    let tokens = Tokens {
        access_token: Secret::new("at-secret-value"),
        refresh_token: Some(Secret::new("rt-secret-value")),
        expires_in: None,
    };
    let text = format!(
        "{req:?} {sign:?} {tokens:?} {:?}",
        Authorization::Pending {
            handle: Secret::new("handle-secret-value")
        }
    );
    for s in [
        "4711",
        "0815",
        "sad-abc",
        "at-secret",
        "rt-secret",
        "handle-secret",
    ] {
        assert!(!text.contains(s), "{s} in {text}");
    }
    assert!(text.contains("<redacted>"));
}
