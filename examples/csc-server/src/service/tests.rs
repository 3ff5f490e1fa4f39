//! The security logic end to end, on a real initialized state folder with a settable clock.

use super::*;
use crate::algorithms::{oid, AlgorithmRequest};
use crate::files::StateDir;
use crate::otp;
use crate::sad;
use crate::vault::purpose;
use serde::Deserialize;
use sha2::Digest;
use std::path::Path;
use zeroize::Zeroizing;

const T0: i64 = 1_800_000_000;

#[derive(Deserialize)]
struct Demo {
    tokens: Vec<DemoToken>,
}

#[derive(Deserialize)]
struct DemoToken {
    label: String,
    user: String,
    password: String,
    pin: String,
    approval_totp_secret: String,
    approval_totp_period: u64,
    credentials: Vec<DemoCredential>,
}

#[derive(Deserialize)]
struct DemoCredential {
    id: String,
    label: String,
    key: String,
    otp: String,
    totp_secret: Option<String>,
    totp_period: u64,
    scal: u8,
    multisign: u32,
    #[serde(default)]
    sad_lifetime: Option<i64>,
    usage: String,
}

/// `init` into a token of its own of the test process's SoftHSM (one SoftHSM configuration per
/// process, so the state folders do not get one each as `csc-server init` gives them).
fn init_options() -> crate::init::Options {
    let t = hsm_store::testing::scratch_token().unwrap();
    crate::init::Options {
        totp_period: 30,
        hsm: crate::hsm::Choice::Token {
            module: t.module.path().to_path_buf(),
            token: t.label,
            pin: t.pin,
        },
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    state: StateDir,
    service: Service,
    clock: Clock,
    demo: Demo,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_lifetimes(&[]).unwrap()
    }

    /// With `serve --credential-sad-lifetime ID=SECONDS` for each of `lifetimes`.
    fn with_lifetimes(lifetimes: &[(&str, i64)]) -> Result<Fixture, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        crate::init::run(&path, &init_options()).unwrap();
        let state = StateDir::new(path);
        let clock = Clock::fixed(T0);
        let hsm_config = crate::hsm::configure(&state).unwrap();
        let service = Service::new(
            Db::open(&state.database()).unwrap(),
            Vault::load(&state.master_key()).unwrap(),
            crate::hsm::open(&state, &hsm_config, 2).unwrap(),
            Settings {
                sad_lifetime: 300,
                credential_sad_lifetimes: lifetimes
                    .iter()
                    .map(|(id, s)| (id.to_string(), *s))
                    .collect(),
                access_token_lifetime: 3600,
                max_attempts: 5,
                approval_timeout: 120,
                accepted: crate::access::Accepted::default(),
            },
            clock.clone(),
            Outbox::new(state.sms_outbox()),
        )?;
        let demo = serde_json::from_slice(&std::fs::read(state.demo_json()).unwrap()).unwrap();
        Ok(Fixture {
            _dir: dir,
            state,
            service,
            clock,
            demo,
        })
    }

    fn user(&self, name: &str) -> &DemoToken {
        self.demo.tokens.iter().find(|t| t.user == name).unwrap()
    }

    fn cred(&self, id: &str) -> &DemoCredential {
        self.demo
            .tokens
            .iter()
            .flat_map(|t| &t.credentials)
            .find(|c| c.id == id)
            .unwrap()
    }

    fn caller(&self, user: &str) -> Caller {
        let t = self.user(user);
        let tokens = self
            .service
            .login_password(&t.user, t.password.as_bytes(), false)
            .unwrap();
        self.service
            .authenticate(Some(&tokens.access_token))
            .unwrap()
    }

    /// The TOTP code of `id` at the clock's time plus `steps` steps.
    fn totp(&self, id: &str, steps: i64) -> Zeroizing<String> {
        let c = self.cred(id);
        let secret = totp_rs::Secret::Encoded(c.totp_secret.clone().unwrap())
            .to_bytes()
            .unwrap();
        let totp =
            totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, c.totp_period, secret);
        Zeroizing::new(totp.generate((self.clock.now() + steps * c.totp_period as i64) as u64))
    }

    /// The code of `user`'s account authenticator (approval page login) at the clock's time plus
    /// `steps` steps.
    fn account_code(&self, user: &str, steps: i64) -> Zeroizing<String> {
        let t = self.user(user);
        let secret = totp_rs::Secret::Encoded(t.approval_totp_secret.clone())
            .to_bytes()
            .unwrap();
        let period = t.approval_totp_period;
        let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, period, secret);
        Zeroizing::new(totp.generate((self.clock.now() + steps * period as i64) as u64))
    }

    fn sms(&self, caller: &Caller, id: &str) -> Zeroizing<String> {
        self.service.send_otp(caller, id, Some("test")).unwrap();
        let text = std::fs::read_to_string(self.state.sms_outbox()).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["credential"], id);
        Zeroizing::new(last["code"].as_str().unwrap().to_owned())
    }

    fn authorize(
        &self,
        caller: &Caller,
        id: &str,
        n: u64,
        hashes: Option<Vec<Vec<u8>>>,
        pin: &str,
        otp: &str,
    ) -> CscResult<sad::Issued> {
        self.authorize_with(caller, id, n, hashes, pin, Some(otp))
    }

    /// `authorize`, with or without an OTP.
    fn authorize_with(
        &self,
        caller: &Caller,
        id: &str,
        n: u64,
        hashes: Option<Vec<Vec<u8>>>,
        pin: &str,
        otp: Option<&str>,
    ) -> CscResult<sad::Issued> {
        let a = self.service.authorize(
            caller,
            AuthorizeRequest {
                credential_id: id,
                num_signatures: n,
                hashes,
                hash_algo: None,
                pin: Some(Zeroizing::new(pin.to_owned())),
                otp: otp.map(|o| Zeroizing::new(o.to_owned())),
                description: None,
                client: None,
                can_poll: true,
            },
        )?;
        match a {
            Authorization::Granted(issued) => Ok(issued),
            pending => panic!("{id} answered {pending:?}"),
        }
    }

    fn sign(
        &self,
        caller: &Caller,
        id: &str,
        sad: &str,
        hashes: Vec<Vec<u8>>,
        sign_algo: &str,
    ) -> CscResult<Vec<Vec<u8>>> {
        self.service.sign_hash(
            caller,
            SignRequest {
                credential_id: id,
                sad: Zeroizing::new(sad.to_owned()),
                hashes,
                algorithm: AlgorithmRequest {
                    sign_algo,
                    hash_algo: None,
                    hash_field: "hashAlgo",
                    params: None,
                },
            },
        )
    }

    fn audit_ok(&self) -> u64 {
        match audit::verify(&self.service.db.lock()).unwrap() {
            audit::Verification::Ok { entries } => entries,
            broken => panic!("{broken:?}"),
        }
    }
}

fn digest(msg: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(msg).to_vec()
}

/// The DER SubjectPublicKeyInfo of a certificate.
fn cert_spki(cert_der: &[u8]) -> Vec<u8> {
    use der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(cert_der).unwrap();
    cert.tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap()
}

fn p256_verifies(cert_der: &[u8], hash: &[u8], der_sig: &[u8]) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::pkcs8::DecodePublicKey;
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(&cert_spki(cert_der)).unwrap();
    let Ok(sig) = p256::ecdsa::DerSignature::try_from(der_sig) else {
        return false;
    };
    key.verify_prehash(hash, &sig).is_ok()
}

/// RSASSA-PKCS1-v1_5 with SHA-256.
fn rsa_verifies(cert_der: &[u8], hash: &[u8], sig: &[u8]) -> bool {
    use rsa::pkcs8::DecodePublicKey;
    let key = rsa::PublicKey::from_public_key_der(&cert_spki(cert_der)).unwrap();
    key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), hash, sig)
        .is_ok()
}

/// A SHA-256 signature by the certificate's key: PKCS#1 v1.5 for RSA, ECDSA for P-256.
fn sha256_signature_verifies(cert_der: &[u8], hash: &[u8], sig: &[u8]) -> bool {
    use rsa::pkcs8::DecodePublicKey;
    if rsa::PublicKey::from_public_key_der(&cert_spki(cert_der)).is_ok() {
        rsa_verifies(cert_der, hash, sig)
    } else {
        p256_verifies(cert_der, hash, sig)
    }
}

fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with(prefix) {
            all.extend(std::fs::read(e.path()).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

mod approval;
mod seal;

#[test]
fn init_writes_the_demo_population_and_client_files() {
    let f = Fixture::new();
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: std::path::PathBuf| std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(f.state.master_key()), 0o600);
    assert_eq!(mode(f.state.demo_json()), 0o600);
    assert_eq!(mode(f.state.module_config()), 0o600);
    for u in ["alice", "bob", "carol", "seal", "dave"] {
        assert_eq!(mode(f.state.refresh_token(u)), 0o600);
        assert_eq!(mode(f.state.password(u)), 0o600);
        assert_eq!(
            std::fs::read_to_string(f.state.password(u)).unwrap(),
            f.user(u).password
        );
    }
    assert_eq!(f.demo.tokens.len(), 5);
    assert_eq!(f.user("alice").label, "Alice Example");
    assert_eq!(f.user("seal").label, "Example Organisation Seal");
    assert_eq!(f.user("bob").pin.len(), 6);
    for spec in crate::model::CREDENTIALS {
        let c = f.cred(spec.id);
        assert_eq!(c.label, spec.label);
        assert_eq!(c.key, spec.key.name());
        assert_eq!(c.otp, spec.otp.name());
        assert_eq!((c.scal, c.multisign), (spec.scal, spec.multisign));
        assert_eq!(c.sad_lifetime, spec.sad_lifetime);
        assert_eq!(c.usage, spec.usage.name());
        assert_eq!(c.totp_secret.is_some(), spec.otp == OtpKind::Totp);
        let tok = f
            .demo
            .tokens
            .iter()
            .find(|t| t.credentials.iter().any(|x| x.id == c.id))
            .unwrap();
        assert_eq!(tok.user, spec.user);
    }
    // Credential order and certificate subjects.
    let alice = f.caller("alice");
    let ids: Vec<&str> = f
        .service
        .credentials_of(&alice)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "alice-rsa2048",
            "alice-p256",
            "alice-rsa3072",
            "alice-p384",
            "alice-p256-approve",
            "alice-rsa2048-approve",
            "alice-auth-p256",
            "alice-auth-rsa2048"
        ]
    );
    // Every user has an authenticator secret for the approval page, distinct from the others.
    let account_secrets: std::collections::HashSet<&str> = f
        .demo
        .tokens
        .iter()
        .map(|t| t.approval_totp_secret.as_str())
        .collect();
    assert_eq!(account_secrets.len(), 5);
    let cred = f.service.credential(&alice, "alice-rsa3072").unwrap();
    assert_eq!(
        cred.cert.subject_dn,
        "CN=Alice Example,O=cloudtoken demo,C=DE"
    );
    assert_eq!(
        cred.cert.issuer_dn,
        "CN=cloudtoken demo CA,O=cloudtoken demo,C=DE"
    );

    // The module configuration parses and points at the state files.
    let cfg: toml::Value =
        toml::from_str(&std::fs::read_to_string(f.state.module_config()).unwrap()).unwrap();
    let tokens = cfg["token"].as_array().unwrap();
    assert_eq!(tokens.len(), 5);
    assert_eq!(tokens[3]["account"].as_str(), Some("seal"));
    // Only the token with a browser-authorized credential names the desktop's OAuth 2.0 client.
    assert_eq!(tokens[4]["client_id"].as_str(), Some("cloudtoken-desktop"));
    assert!(tokens[..4].iter().all(|t| t.get("client_id").is_none()));
    // demo.json's clients: alice's confidential client_credentials client, and a public one.
    let demo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.state.demo_json()).unwrap()).unwrap();
    let clients = demo["oauth2_clients"].as_array().unwrap();
    let grants = |c: &serde_json::Value| -> Vec<String> {
        serde_json::from_value(c["grant_types"].clone()).unwrap()
    };
    assert!(clients.iter().any(|c| c["account"] == "alice"
        && c["client_secret"].as_str().is_some_and(|s| s.len() >= 32)
        && grants(c) == ["client_credentials"]));
    assert!(clients
        .iter()
        .any(|c| c["client_secret"].is_null()
            && grants(c) == ["authorization_code", "refresh_token"]));
    assert_eq!(tokens[3]["batch_size"].as_integer(), Some(1000));
    assert_eq!(tokens[0]["batch_size"].as_integer(), Some(30));
    assert_eq!(tokens[1]["label"].as_str(), Some("Bob Example"));
    assert_eq!(tokens[1]["account"].as_str(), Some("bob"));
    assert_eq!(tokens[1]["api"].as_str(), Some("v2"));
    assert_eq!(
        tokens[1]["url_file"].as_str().map(Path::new),
        Some(f.state.server_url().as_path())
    );
    assert!(Path::new(tokens[1]["ca_file"].as_str().unwrap()).is_absolute());
    assert_eq!(tokens[1]["otp_length"].as_integer(), Some(6));
    let refresh =
        std::fs::read_to_string(tokens[1]["refresh_token_file"].as_str().unwrap()).unwrap();
    assert!(f.service.login_refresh(&refresh).is_ok());

    // A second init into the same folder is refused.
    assert!(matches!(
        crate::init::run(f.state.path(), &init_options()),
        Err(crate::init::InitError::NotEmpty(_))
    ));
}

#[test]
fn the_database_holds_no_plaintext_secret() {
    let f = Fixture::new();
    // Exercise the pending-SMS path too.
    let alice = f.caller("alice");
    let sms = f.sms(&alice, "alice-p384");
    drop(f.service.db.lock());
    let db_bytes = files_with_prefix(f.state.path(), "state.db");
    let vault = Vault::load(&f.state.master_key()).unwrap();
    let conn = f.service.db.lock();
    let mut stmt = conn
        .prepare("SELECT id, sealed_totp FROM credentials")
        .unwrap();
    type Row = (String, Option<Vec<u8>>);
    let rows: Vec<Row> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), crate::model::CREDENTIALS.len());
    for (id, sealed_totp) in rows {
        if let Some(t) = sealed_totp {
            let secret = vault.open(&purpose::totp_secret(&id), &t).unwrap();
            assert!(!contains(&db_bytes, &secret));
            let b32 = f.cred(&id).totp_secret.clone().unwrap();
            assert!(!contains(&db_bytes, b32.as_bytes()));
        }
    }
    let sealed = db::get_meta(&conn, "tls_key").unwrap().unwrap();
    let der = vault.open(purpose::TLS_KEY, &sealed).unwrap();
    assert!(!contains(&db_bytes, &der), "the TLS key in the clear");
    // Six digits can occur by chance in the certificates' validity dates, which are public anyway.
    let mut public: Vec<u8> = conn
        .prepare("SELECT certificate FROM credentials")
        .unwrap()
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .flatten()
        .flatten()
        .collect();
    public.extend(db::get_meta(&conn, "ca_cert").unwrap().unwrap());
    public.extend(db::get_meta(&conn, "tls_cert").unwrap().unwrap());
    let absent = |secret: &[u8]| contains(&public, secret) || !contains(&db_bytes, secret);
    for t in &f.demo.tokens {
        assert!(absent(t.pin.as_bytes()), "{}'s PIN in the database", t.user);
        assert!(!contains(&db_bytes, t.password.as_bytes()));
        let refresh = std::fs::read(f.state.refresh_token(&t.user)).unwrap();
        assert!(!contains(&db_bytes, &refresh));
        assert!(!contains(&db_bytes, t.approval_totp_secret.as_bytes()));
        let sealed: Vec<u8> = conn
            .query_row(
                "SELECT sealed_account_totp FROM users WHERE name = ?1",
                [&t.user],
                |r| r.get(0),
            )
            .unwrap();
        let secret = vault
            .open(&purpose::account_totp(&t.user), &sealed)
            .unwrap();
        assert!(
            !contains(&db_bytes, &secret),
            "{}'s account TOTP secret",
            t.user
        );
    }
    assert!(absent(sms.as_bytes()), "pending SMS code in the clear");
}

#[test]
fn every_signing_key_is_in_the_hsm_and_cannot_be_read_out() {
    use cryptoki::error::{Error as CkError, RvError};
    use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    let f = Fixture::new();
    let config = crate::hsm::configure(&f.state).unwrap();
    let pin = crate::hsm::read_pin_file(&f.state.hsm_pin()).unwrap();
    let module = hsm_store::Module::load(&config.module).unwrap();
    let session = module
        .context()
        .open_ro_session(module.token_slot(&config.token).unwrap())
        .unwrap();
    match session.login(UserType::User, Some(&AuthPin::from(pin.to_string()))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    let conn = f.service.db.lock();
    let mut labels: Vec<(String, String)> = conn
        .prepare("SELECT id, key_label FROM credentials")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let ca = db::get_meta(&conn, "ca_key_label").unwrap().unwrap();
    labels.push(("CA".into(), String::from_utf8(ca).unwrap()));
    assert_eq!(labels.len(), crate::model::CREDENTIALS.len() + 1);
    // Neither the database nor the vault holds a private key any more.
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('credentials')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        !columns.iter().any(|c| c.contains("sealed_key")),
        "{columns:?}"
    );
    assert_eq!(db::get_meta(&conn, "ca_key").unwrap(), None);
    for (id, label) in labels {
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .unwrap();
        assert_eq!(found.len(), 1, "{id}: {label}");
        let key = found[0];
        let flags = session
            .get_attributes(
                key,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Token,
                ],
            )
            .unwrap();
        assert_eq!(
            format!("{flags:?}"),
            "[Sensitive(true), Extractable(false), Token(true)]",
            "{id}"
        );
        let secret = if label.contains("rsa") {
            AttributeType::PrivateExponent
        } else {
            AttributeType::Value
        };
        let info = session.get_attribute_info(key, &[secret]).unwrap();
        assert!(
            matches!(info[0], AttributeInfo::Sensitive),
            "{id}: {info:?}"
        );
    }
}

#[test]
fn alice_logs_in_to_web_sites_with_client_auth_credentials() {
    use der::Decode;
    use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage};
    let f = Fixture::new();
    let alice = f.caller("alice");
    let pin = f.user("alice").pin.clone();
    for (id, algo) in [
        ("alice-auth-p256", oid::ECDSA_WITH_SHA256),
        ("alice-auth-rsa2048", oid::SHA256_WITH_RSA),
    ] {
        let c = f.cred(id);
        assert_eq!(
            (c.otp.as_str(), c.scal, c.usage.as_str()),
            ("totp", 1, "authentication")
        );
        let cred = f.service.credential(&alice, id).unwrap();
        let cert = x509_cert::Certificate::from_der(&cred.cert_der).unwrap();
        let tbs = cert.tbs_certificate();
        let ku = tbs.get_extension::<KeyUsage>().unwrap().unwrap().1;
        assert!(ku.digital_signature() && !ku.non_repudiation(), "{id}");
        let eku = tbs.get_extension::<ExtendedKeyUsage>().unwrap().unwrap().1;
        assert_eq!(eku.0, [const_oid::db::rfc5280::ID_KP_CLIENT_AUTH], "{id}");
        // A TLS handshake is one signature: a batch SAD serves several.
        let sad = f
            .authorize(&alice, id, 3, None, &pin, &f.totp(id, 0))
            .unwrap();
        let h = digest(b"TLS 1.3 CertificateVerify content");
        let sig = f.sign(&alice, id, &sad.sad, vec![h.clone()], algo).unwrap();
        let ok = sha256_signature_verifies(&cred.cert_der, &h, &sig[0]);
        assert!(ok, "{id}");
    }
    // The signing credentials keep their document key usage and no extended key usage.
    let signing = f.service.credential(&alice, "alice-p256").unwrap();
    let cert = x509_cert::Certificate::from_der(&signing.cert_der).unwrap();
    assert!(cert
        .tbs_certificate()
        .get_extension::<ExtendedKeyUsage>()
        .unwrap()
        .is_none());
}

#[test]
fn concurrent_signers_never_overspend_a_sad_and_each_signature_is_audited_before_it_returns() {
    let f = Fixture::new();
    let alice = f.caller("alice");
    let pin = f.user("alice").pin.clone();
    let sad = f
        .authorize(
            &alice,
            "alice-p256",
            50,
            None,
            &pin,
            &f.totp("alice-p256", 0),
        )
        .unwrap();
    let cert = f
        .service
        .credential(&alice, "alice-p256")
        .unwrap()
        .cert_der
        .clone();
    // What another process sees: committed audit entries of signHash for this hash.
    let committed = |hash: &[u8]| -> Vec<String> {
        let db = rusqlite::Connection::open_with_flags(
            f.state.database(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let outcomes = db
            .prepare(
                "SELECT outcome FROM audit WHERE event = 'signatures/signHash' AND hashes = ?1",
            )
            .unwrap()
            .query_map([format!("[\"{hex}\"]")], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        outcomes
    };
    let signed = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..8 {
            let (f, alice, sad, cert, signed, committed) =
                (&f, &alice, &sad, &cert, &signed, &committed);
            s.spawn(move || {
                for i in 0..10 {
                    let h = digest(format!("{t} {i}").as_bytes());
                    match f.sign(
                        alice,
                        "alice-p256",
                        &sad.sad,
                        vec![h.clone()],
                        oid::ECDSA_WITH_SHA256,
                    ) {
                        Ok(sigs) => {
                            assert!(p256_verifies(cert, &h, &sigs[0]));
                            assert_eq!(committed(&h), ["ok"], "audited before it returned");
                            signed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(e) => assert_eq!(e, CscError::sad_expired()),
                    }
                }
            });
        }
    });
    assert_eq!(signed.into_inner(), 50);
    f.audit_ok();
}

#[test]
fn totp_authorize_sign_and_replay() {
    let f = Fixture::new();
    let alice = f.caller("alice");
    let pin = f.user("alice").pin.clone();
    let code = f.totp("alice-p256", 0);
    let sad = f
        .authorize(&alice, "alice-p256", 2, None, &pin, &code)
        .unwrap();
    assert_eq!(sad.expires_in, 300);
    let h = [digest(b"one"), digest(b"two")];
    let sigs = f
        .sign(
            &alice,
            "alice-p256",
            &sad.sad,
            h.to_vec(),
            oid::ECDSA_WITH_SHA256,
        )
        .unwrap();
    let cert = &f.service.credential(&alice, "alice-p256").unwrap().cert_der;
    assert!(p256_verifies(cert, &h[0], &sigs[0]));
    assert!(p256_verifies(cert, &h[1], &sigs[1]));
    assert!(
        !p256_verifies(cert, &h[1], &sigs[0]),
        "signatures come back in input order"
    );
    // Used up.
    assert_eq!(
        f.sign(
            &alice,
            "alice-p256",
            &sad.sad,
            vec![digest(b"3")],
            oid::ECDSA_WITH_SHA256
        )
        .unwrap_err(),
        CscError::sad_expired()
    );
    // The same code again, and the previous step's code, are replays.
    assert_eq!(
        f.authorize(&alice, "alice-p256", 1, None, &pin, &code)
            .unwrap_err(),
        CscError::invalid_otp()
    );
    assert_eq!(
        f.authorize(
            &alice,
            "alice-p256",
            1,
            None,
            &pin,
            &f.totp("alice-p256", -1)
        )
        .unwrap_err(),
        CscError::invalid_otp()
    );
    // The next step's code works (one step of drift) and then the clock catches up.
    assert!(f
        .authorize(
            &alice,
            "alice-p256",
            1,
            None,
            &pin,
            &f.totp("alice-p256", 1)
        )
        .is_ok());
    f.clock.advance(30);
    assert_eq!(
        f.authorize(
            &alice,
            "alice-p256",
            1,
            None,
            &pin,
            &f.totp("alice-p256", 0)
        )
        .unwrap_err(),
        CscError::invalid_otp()
    );
    f.clock.advance(30);
    assert!(f
        .authorize(
            &alice,
            "alice-p256",
            1,
            None,
            &pin,
            &f.totp("alice-p256", 0)
        )
        .is_ok());
    // Replay protection is per credential: alice-rsa2048 has its own secret and steps.
    let sad = f
        .authorize(
            &alice,
            "alice-rsa2048",
            1,
            None,
            &pin,
            &f.totp("alice-rsa2048", 0),
        )
        .unwrap();
    let h = digest(b"rsa");
    let sig = f
        .sign(
            &alice,
            "alice-rsa2048",
            &sad.sad,
            vec![h.clone()],
            oid::SHA256_WITH_RSA,
        )
        .unwrap();
    let cert = &f
        .service
        .credential(&alice, "alice-rsa2048")
        .unwrap()
        .cert_der;
    assert!(rsa_verifies(cert, &h, &sig[0]));
    assert!(f.audit_ok() > 8);
}

#[test]
fn authorization_checks_and_their_order() {
    let f = Fixture::new();
    let alice = f.caller("alice");
    let pin = f.user("alice").pin.clone();
    let wrong_pin = if pin == "000000" { "111111" } else { "000000" };
    // numSignatures within 1..=multisign.
    for n in [0, 101] {
        assert_eq!(
            f.authorize(
                &alice,
                "alice-p256",
                n,
                None,
                &pin,
                &f.totp("alice-p256", 0)
            )
            .unwrap_err(),
            CscError::invalid_param("numSignatures")
        );
    }
    // Another user's credential reads like an unknown one.
    assert_eq!(
        f.authorize(&alice, "bob-p256-single", 1, None, &pin, "123456")
            .unwrap_err(),
        CscError::invalid_credential()
    );
    assert_eq!(
        f.authorize(&alice, "no-such-credential", 1, None, &pin, "123456")
            .unwrap_err(),
        CscError::invalid_credential()
    );
    // A wrong PIN does not spend the OTP.
    let code = f.totp("alice-p256", 0);
    assert_eq!(
        f.authorize(&alice, "alice-p256", 1, None, wrong_pin, &code)
            .unwrap_err(),
        CscError::invalid_pin()
    );
    assert!(f
        .authorize(&alice, "alice-p256", 1, None, &pin, &code)
        .is_ok());
    // Missing factors.
    let missing = f.service.authorize(
        &alice,
        AuthorizeRequest {
            credential_id: "alice-p256",
            num_signatures: 1,
            hashes: None,
            hash_algo: None,
            pin: Some(Zeroizing::new(pin.clone())),
            otp: None,
            description: None,
            client: None,
            can_poll: true,
        },
    );
    assert_eq!(missing.unwrap_err(), CscError::missing("string", "OTP"));
    // Users never see others' credentials.
    let bob = f.caller("bob");
    let ids: Vec<&str> = f
        .service
        .credentials_of(&bob)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["bob-rsa2048-scal2", "bob-p256-scal2", "bob-p256-single"]
    );
    assert_eq!(
        f.service.credential(&bob, "alice-p256").err(),
        Some(CscError::invalid_credential())
    );
    // A SAD is the caller's: bob cannot spend alice's SAD even on... his own credential.
    f.clock.advance(30);
    let sad = f
        .authorize(
            &alice,
            "alice-p256",
            5,
            None,
            &pin,
            &f.totp("alice-p256", 0),
        )
        .unwrap();
    assert_eq!(
        f.sign(
            &bob,
            "bob-p256-single",
            &sad.sad,
            vec![digest(b"x")],
            oid::ECDSA_WITH_SHA256
        )
        .unwrap_err(),
        CscError::sad_expired()
    );
    // ... nor with another credential of alice's.
    assert_eq!(
        f.sign(
            &alice,
            "alice-rsa2048",
            &sad.sad,
            vec![digest(b"x")],
            oid::SHA256_WITH_RSA
        )
        .unwrap_err(),
        CscError::sad_expired()
    );
    // A request refused for its algorithm spends nothing; an overdraw is refused whole.
    assert_eq!(
        f.sign(
            &alice,
            "alice-p256",
            &sad.sad,
            vec![digest(b"x")],
            oid::SHA256_WITH_RSA
        )
        .unwrap_err(),
        CscError::invalid_param("signAlgo")
    );
    let six: Vec<Vec<u8>> = (0..6u8).map(|i| digest(&[i])).collect();
    assert_eq!(
        f.sign(
            &alice,
            "alice-p256",
            &sad.sad,
            six.clone(),
            oid::ECDSA_WITH_SHA256
        )
        .unwrap_err(),
        CscError::sad_too_few()
    );
    assert_eq!(
        f.sign(
            &alice,
            "alice-p256",
            &sad.sad,
            six[..5].to_vec(),
            oid::ECDSA_WITH_SHA256
        )
        .unwrap()
        .len(),
        5
    );
    // Expiry.
    f.clock.advance(30);
    let sad = f
        .authorize(
            &alice,
            "alice-p256",
            1,
            None,
            &pin,
            &f.totp("alice-p256", 0),
        )
        .unwrap();
    f.clock.advance(300);
    assert_eq!(
        f.sign(
            &alice,
            "alice-p256",
            &sad.sad,
            vec![digest(b"late")],
            oid::ECDSA_WITH_SHA256
        )
        .unwrap_err(),
        CscError::sad_expired()
    );
    f.audit_ok();
}

#[test]
fn pin_lockout_is_per_user_and_reset_by_success() {
    let f = Fixture::new();
    let carol = f.caller("carol");
    let pin = f.user("carol").pin.clone();
    let wrong = if pin == "000000" { "111111" } else { "000000" };
    // Four failures, a success, four failures: still not locked (the counter counts consecutive ones).
    for _ in 0..4 {
        assert_eq!(
            f.authorize(&carol, "carol-p256", 1, None, wrong, "000000")
                .unwrap_err(),
            CscError::invalid_pin()
        );
    }
    assert!(f
        .authorize(
            &carol,
            "carol-p256",
            1,
            None,
            &pin,
            &f.totp("carol-p256", 0)
        )
        .is_ok());
    for _ in 0..4 {
        assert_eq!(
            f.authorize(&carol, "carol-p256", 1, None, wrong, "000000")
                .unwrap_err(),
            CscError::invalid_pin()
        );
    }
    // The fifth consecutive failure locks; from then on even the right PIN is refused, on every
    // credential of the user.
    assert_eq!(
        f.authorize(&carol, "carol-p256", 1, None, wrong, "000000")
            .unwrap_err(),
        CscError::invalid_pin()
    );
    f.clock.advance(30);
    assert_eq!(
        f.authorize(
            &carol,
            "carol-p256",
            1,
            None,
            &pin,
            &f.totp("carol-p256", 0)
        )
        .unwrap_err(),
        CscError::pin_locked()
    );
    let sms_code = f.sms(&carol, "carol-p256-sms");
    assert_eq!(
        f.authorize(&carol, "carol-p256-sms", 1, None, &pin, &sms_code)
            .unwrap_err(),
        CscError::pin_locked()
    );
    // Other users are unaffected.
    let alice = f.caller("alice");
    let alice_pin = f.user("alice").pin.clone();
    assert!(f
        .authorize(
            &alice,
            "alice-p256",
            1,
            None,
            &alice_pin,
            &f.totp("alice-p256", 0)
        )
        .is_ok());
    f.audit_ok();
}

#[test]
fn otp_lockout_is_per_credential() {
    let f = Fixture::new();
    let carol = f.caller("carol");
    let pin = f.user("carol").pin.clone();
    let good = f.totp("carol-p256", 0);
    let wrong = if *good == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        assert_eq!(
            f.authorize(&carol, "carol-p256", 1, None, &pin, wrong)
                .unwrap_err(),
            CscError::invalid_otp()
        );
    }
    assert_eq!(
        f.authorize(&carol, "carol-p256", 1, None, &pin, &good)
            .unwrap_err(),
        CscError::otp_locked()
    );
    // Locked stays locked, whatever the time; the lock state is checked before the PIN.
    f.clock.advance(3600);
    assert_eq!(
        f.authorize(
            &carol,
            "carol-p256",
            1,
            None,
            "999999",
            &f.totp("carol-p256", 0)
        )
        .unwrap_err(),
        CscError::otp_locked()
    );
    // The PIN counter was reset by the right PIN all along; the SMS credential still works.
    let code = f.sms(&carol, "carol-p256-sms");
    assert!(f
        .authorize(&carol, "carol-p256-sms", 1, None, &pin, &code)
        .is_ok());
}

#[test]
fn sms_codes_are_single_use_replaced_and_expire() {
    let f = Fixture::new();
    let alice = f.caller("alice");
    let pin = f.user("alice").pin.clone();
    // No code requested yet.
    assert_eq!(
        f.authorize(&alice, "alice-p384", 1, None, &pin, "123456")
            .unwrap_err(),
        CscError::invalid_otp()
    );
    let first = f.sms(&alice, "alice-p384");
    let second = f.sms(&alice, "alice-p384");
    if *first != *second {
        assert_eq!(
            f.authorize(&alice, "alice-p384", 1, None, &pin, &first)
                .unwrap_err(),
            CscError::invalid_otp()
        );
    }
    let sad = f
        .authorize(&alice, "alice-p384", 1, None, &pin, &second)
        .unwrap();
    assert_eq!(
        f.authorize(&alice, "alice-p384", 1, None, &pin, &second)
            .unwrap_err(),
        CscError::invalid_otp()
    );
    let h = sha2::Sha384::digest(b"p384").to_vec();
    assert_eq!(
        f.sign(
            &alice,
            "alice-p384",
            &sad.sad,
            vec![h],
            oid::ECDSA_WITH_SHA384
        )
        .unwrap()[0][0],
        0x30,
        "DER Ecdsa-Sig-Value"
    );
    let third = f.sms(&alice, "alice-p384");
    f.clock.advance(otp::SMS_LIFETIME);
    assert_eq!(
        f.authorize(&alice, "alice-p384", 1, None, &pin, &third)
            .unwrap_err(),
        CscError::invalid_otp()
    );
    // A TOTP credential has nothing to send; another user's credential is unknown.
    assert!(f.service.send_otp(&alice, "alice-p256", None).is_err());
    assert_eq!(
        f.service
            .send_otp(&alice, "bob-rsa2048-scal2", None)
            .unwrap_err(),
        CscError::invalid_credential()
    );
    let outbox = std::fs::read_to_string(f.state.sms_outbox()).unwrap();
    assert!(!outbox.contains("bob-rsa2048-scal2"));
}

#[test]
fn scal2_binds_the_sad_to_the_hashes() {
    let f = Fixture::new();
    let bob = f.caller("bob");
    let pin = f.user("bob").pin.clone();
    let h1 = digest(b"contract");
    let h2 = digest(b"annex");
    // The hashes must come with the authorization, one per signature.
    assert_eq!(
        f.authorize(
            &bob,
            "bob-p256-scal2",
            1,
            None,
            &pin,
            &f.totp("bob-p256-scal2", 0)
        )
        .unwrap_err(),
        CscError::invalid_param("hashes")
    );
    assert_eq!(
        f.authorize(
            &bob,
            "bob-p256-scal2",
            2,
            Some(vec![h1.clone()]),
            &pin,
            &f.totp("bob-p256-scal2", 0)
        )
        .unwrap_err(),
        CscError::invalid_param("hashes")
    );
    let sad = f
        .authorize(
            &bob,
            "bob-p256-scal2",
            2,
            Some(vec![h1.clone(), h2.clone()]),
            &pin,
            &f.totp("bob-p256-scal2", 0),
        )
        .unwrap();
    let other = digest(b"something else");
    assert_eq!(
        f.sign(
            &bob,
            "bob-p256-scal2",
            &sad.sad,
            vec![other],
            oid::ECDSA_WITH_SHA256
        )
        .unwrap_err(),
        CscError::hash_not_authorized()
    );
    let sig = f
        .sign(
            &bob,
            "bob-p256-scal2",
            &sad.sad,
            vec![h2.clone()],
            oid::ECDSA_WITH_SHA256,
        )
        .unwrap();
    let cert = &f
        .service
        .credential(&bob, "bob-p256-scal2")
        .unwrap()
        .cert_der;
    assert!(p256_verifies(cert, &h2, &sig[0]));
    // Each authorized hash signs once.
    assert_eq!(
        f.sign(
            &bob,
            "bob-p256-scal2",
            &sad.sad,
            vec![h2],
            oid::ECDSA_WITH_SHA256
        )
        .unwrap_err(),
        CscError::hash_not_authorized()
    );
    assert!(f
        .sign(
            &bob,
            "bob-p256-scal2",
            &sad.sad,
            vec![h1.clone()],
            oid::ECDSA_WITH_SHA256
        )
        .is_ok());
    assert_eq!(
        f.sign(
            &bob,
            "bob-p256-scal2",
            &sad.sad,
            vec![h1],
            oid::ECDSA_WITH_SHA256
        )
        .unwrap_err(),
        CscError::sad_expired()
    );
    // multisign 1 on bob-p256-single.
    assert_eq!(
        f.authorize(
            &bob,
            "bob-p256-single",
            2,
            None,
            &pin,
            &f.totp("bob-p256-single", 0)
        )
        .unwrap_err(),
        CscError::invalid_param("numSignatures")
    );
}

#[test]
fn login_lockout_and_tokens() {
    let f = Fixture::new();
    let carol = f.user("carol");
    assert!(f.service.login_password("nobody", b"x", false).is_err());
    for _ in 0..5 {
        assert_eq!(
            f.service
                .login_password("carol", b"wrong", false)
                .err()
                .unwrap(),
            CscError::bad_credentials()
        );
    }
    let locked = f
        .service
        .login_password("carol", carol.password.as_bytes(), false)
        .err()
        .unwrap();
    assert_eq!(locked, CscError::login_locked());
    assert!(locked.description.contains("locked"));
    // The enrollment refresh token still works.
    let refresh = std::fs::read_to_string(f.state.refresh_token("carol")).unwrap();
    let t = f.service.login_refresh(&refresh).unwrap();
    assert!(t.refresh_token.is_none());
    assert_eq!(
        f.service.authenticate(Some(&t.access_token)).unwrap().user,
        "carol"
    );
    // Access tokens expire; rememberMe yields a refresh token; revoking it ends its access tokens.
    let alice = f.user("alice");
    let t = f
        .service
        .login_password("alice", alice.password.as_bytes(), false)
        .unwrap();
    let remembered = f
        .service
        .login_password("alice", alice.password.as_bytes(), true)
        .unwrap();
    assert!(t.refresh_token.is_none());
    let r = remembered.refresh_token.unwrap();
    let via_refresh = f.service.login_refresh(&r).unwrap();
    let caller = f
        .service
        .authenticate(Some(&via_refresh.access_token))
        .unwrap();
    f.service.revoke(&caller, &r).unwrap();
    assert_eq!(
        f.service.login_refresh(&r).err(),
        Some(CscError::bad_refresh_token())
    );
    assert_eq!(
        f.service
            .authenticate(Some(&via_refresh.access_token))
            .err(),
        Some(CscError::invalid_token())
    );
    f.clock.advance(3600);
    assert_eq!(
        f.service.authenticate(Some(&t.access_token)).err(),
        Some(CscError::expired_token())
    );
    assert_eq!(
        f.service.authenticate(None).err(),
        Some(CscError::missing_token())
    );
    // Audit: the chain holds, and no secret went into it.
    let entries = f.audit_ok();
    assert!(entries >= 10);
    let conn = f.service.db.lock();
    let text: String = conn
        .query_row(
            "SELECT group_concat(event || user || outcome || ifnull(detail, ''), '|') FROM audit",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!text.contains(&carol.password) && !text.contains("wrong"));
    assert!(text.contains("account locked"));
}
