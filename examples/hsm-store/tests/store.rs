//! The store against a real SoftHSM token (one per test): keys cannot be read out, signatures
//! verify with an independent implementation, concurrent signers sign in parallel.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use hsm_store::testing::{scratch_token, ScratchToken};
use hsm_store::{Curve, Error, Hash, KeySpec, Signing, Store};
use sha2::Digest;

const SPECS: [KeySpec; 3] = [
    KeySpec::Rsa { bits: 2048 },
    KeySpec::Ec(Curve::P256),
    KeySpec::Ec(Curve::P384),
];

fn store(t: &ScratchToken, sessions: usize) -> Store {
    Store::open(t.module.clone(), &t.label, &t.pin, sessions).unwrap()
}

/// A session of our own on the token, logged in, as any application of the process would have.
fn inspect(t: &ScratchToken) -> Session {
    let ctx = t.module.context();
    let s = ctx
        .open_rw_session(t.module.token_slot(&t.label).unwrap())
        .unwrap();
    match s.login(UserType::User, Some(&AuthPin::from(t.pin.to_string()))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    s
}

fn private_handle(s: &Session, label: &str) -> ObjectHandle {
    let found = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(found.len(), 1, "{label}");
    found[0]
}

#[test]
fn private_keys_cannot_be_read_out_of_the_token() {
    let t = scratch_token().unwrap();
    let store = store(&t, 2);
    let s = inspect(&t);
    // An AES key that may wrap, to try to export the private keys with.
    let wrapping = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
            ],
        )
        .unwrap();
    for spec in SPECS {
        let label = format!("{spec:?}");
        store.generate(&label, spec).unwrap();
        let key = private_handle(&s, &label);
        let attrs = s
            .get_attributes(
                key,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                    AttributeType::Token,
                ],
            )
            .unwrap();
        assert_eq!(
            attrs.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
            [
                "Sensitive(true)",
                "Extractable(false)",
                "AlwaysSensitive(true)",
                "NeverExtractable(true)",
                "Token(true)"
            ],
            "{label}"
        );
        // C_GetAttributeValue of the private values is refused (CKR_ATTRIBUTE_SENSITIVE).
        let secret: &[AttributeType] = match spec {
            KeySpec::Rsa { .. } => &[
                AttributeType::PrivateExponent,
                AttributeType::Prime1,
                AttributeType::Prime2,
                AttributeType::Exponent1,
                AttributeType::Coefficient,
            ],
            KeySpec::Ec(_) => &[AttributeType::Value],
        };
        for info in s.get_attribute_info(key, secret).unwrap() {
            assert!(
                matches!(info, AttributeInfo::Sensitive),
                "{label}: {info:?}"
            );
        }
        assert!(s.get_attributes(key, secret).unwrap().is_empty(), "{label}");
        // Wrapping it out is refused, and so is making it extractable.
        let wrapped = s.wrap_key(&Mechanism::AesKeyWrapPad, wrapping, key);
        assert!(
            matches!(wrapped, Err(CkError::Pkcs11(RvError::KeyUnextractable, _))),
            "{label}: {wrapped:?}"
        );
        let made_extractable = s.update_attributes(key, &[Attribute::Extractable(true)]);
        assert!(made_extractable.is_err(), "{label}");
    }
}

fn verify(spki: &[u8], op: Signing, hash: &[u8], sig: &[u8]) {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::pkcs8::DecodePublicKey;
    match op {
        Signing::RsaPkcs1(h) => {
            let key = rsa::PublicKey::from_public_key_der(spki).unwrap();
            let scheme = match h {
                Hash::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                Hash::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                Hash::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                Hash::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                Hash::Sha224 => rsa::Pkcs1v15Sign::new::<sha2::Sha224>(),
            };
            key.verify(scheme, hash, sig).unwrap();
        }
        Signing::RsaPss { hash: h, salt_len } => {
            let key = rsa::PublicKey::from_public_key_der(spki).unwrap();
            match h {
                Hash::Sha256 => key
                    .verify(rsa::Pss::<sha2::Sha256>::new_with_salt(salt_len), hash, sig)
                    .unwrap(),
                Hash::Sha384 => key
                    .verify(rsa::Pss::<sha2::Sha384>::new_with_salt(salt_len), hash, sig)
                    .unwrap(),
                other => panic!("no PSS check for {other:?} here"),
            }
        }
        Signing::Ecdsa => {
            if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(spki) {
                let sig = p256::ecdsa::DerSignature::try_from(sig).unwrap();
                key.verify_prehash(hash, &sig).unwrap();
            } else {
                let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki).unwrap();
                let sig = p384::ecdsa::DerSignature::try_from(sig).unwrap();
                key.verify_prehash(hash, &sig).unwrap();
            }
        }
    }
}

#[test]
fn every_scheme_signs_and_the_signatures_verify() {
    let t = scratch_token().unwrap();
    let store = store(&t, 2);
    let rsa = store.generate("rsa", KeySpec::Rsa { bits: 2048 }).unwrap();
    let p256 = store.generate("p256", KeySpec::Ec(Curve::P256)).unwrap();
    let p384 = store.generate("p384", KeySpec::Ec(Curve::P384)).unwrap();
    let h256 = sha2::Sha256::digest(b"document").to_vec();
    let h384 = sha2::Sha384::digest(b"document").to_vec();
    let h512 = sha2::Sha512::digest(b"document").to_vec();
    let h1 = sha1::Sha1::digest(b"document").to_vec();
    let cases: Vec<(&hsm_store::Key, Signing, &[u8])> = vec![
        (&rsa, Signing::RsaPkcs1(Hash::Sha256), &h256),
        (&rsa, Signing::RsaPkcs1(Hash::Sha512), &h512),
        (&rsa, Signing::RsaPkcs1(Hash::Sha1), &h1),
        (
            &rsa,
            Signing::RsaPss {
                hash: Hash::Sha256,
                salt_len: 32,
            },
            &h256,
        ),
        (
            &rsa,
            Signing::RsaPss {
                hash: Hash::Sha384,
                salt_len: 0,
            },
            &h384,
        ),
        (&p256, Signing::Ecdsa, &h256),
        (&p384, Signing::Ecdsa, &h384),
        // ECDSA over a hash longer than the curve: truncated, as ECDSA defines.
        (&p256, Signing::Ecdsa, &h512),
    ];
    for (key, op, hash) in cases {
        let sig = store.sign(key, op, hash).unwrap();
        verify(key.spki_der(), op, hash, &sig);
        if let Signing::RsaPkcs1(_) | Signing::RsaPss { .. } = op {
            assert_eq!(sig.len(), 256);
        }
    }
    // What does not fit is refused before the token is asked.
    assert!(matches!(
        store.sign(&rsa, Signing::RsaPkcs1(Hash::Sha384), &h256),
        Err(Error::Input(_))
    ));
    assert!(matches!(
        store.sign(&rsa, Signing::Ecdsa, &h256),
        Err(Error::Input(_))
    ));
    assert!(matches!(
        store.sign(&p256, Signing::RsaPkcs1(Hash::Sha256), &h256),
        Err(Error::Input(_))
    ));
    // A salt the modulus cannot hold is the token's to refuse.
    let too_salty = Signing::RsaPss {
        hash: Hash::Sha256,
        salt_len: 223,
    };
    assert!(store.sign(&rsa, too_salty, &h256).is_err());
}

#[test]
fn keys_are_found_again_by_label_from_a_new_store() {
    let t = scratch_token().unwrap();
    let made = store(&t, 1)
        .generate("seal", KeySpec::Ec(Curve::P256))
        .unwrap();
    // With no store open the token is logged out again, and a wrong PIN does not open it. (The login
    // is the process's: while one store is open, another opens without checking its PIN.)
    let wrong = Store::open(t.module.clone(), &t.label, "not the PIN", 1);
    assert!(matches!(
        wrong.unwrap_err().rv(),
        Some(RvError::PinIncorrect)
    ));
    let again = store(&t, 1);
    let found = again.key("seal").unwrap();
    assert_eq!(found.spki_der(), made.spki_der());
    assert_eq!(found.spec(), KeySpec::Ec(Curve::P256));
    let h = sha2::Sha256::digest(b"x").to_vec();
    verify(
        made.spki_der(),
        Signing::Ecdsa,
        &h,
        &again.sign(&found, Signing::Ecdsa, &h).unwrap(),
    );
    assert!(matches!(again.key("nobody"), Err(Error::NoKey(_))));
    // An unknown token is named.
    assert!(matches!(
        again.generate("seal", KeySpec::Ec(Curve::P384)),
        Err(Error::KeyExists(_))
    ));
    assert!(matches!(
        Store::open(t.module.clone(), "no such token", &t.pin, 1),
        Err(Error::NoToken(_))
    ));
    assert!(matches!(
        t.module.init_token(&t.label, "so", "pin"),
        Err(Error::TokenExists(_))
    ));
}

#[test]
fn concurrent_signers_sign_in_parallel_on_their_own_sessions() {
    let t = scratch_token().unwrap();
    let store = store(&t, 4);
    let key = store.generate("busy", KeySpec::Ec(Curve::P256)).unwrap();
    let start = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let (store, key, start) = (&store, &key, &start);
            scope.spawn(move || {
                start.wait();
                for i in 0..50 {
                    let h = sha2::Sha256::digest(format!("{thread} {i}")).to_vec();
                    let sig = store.sign(key, Signing::Ecdsa, &h).unwrap();
                    verify(key.spki_der(), Signing::Ecdsa, &h, &sig);
                }
            });
        }
    });
    let stats = store.stats();
    assert_eq!(stats.sessions, 4);
    assert!(
        (2..=4).contains(&stats.peak_in_use),
        "sessions used at once: {}",
        stats.peak_in_use
    );
}
