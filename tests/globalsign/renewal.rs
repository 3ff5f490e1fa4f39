//! A signing run across renewals of short-lived identities: the emulator's identities last
//! `LIFETIME` seconds, so a run of a little over three lifetimes sees at least two renewals. Two
//! applications sign side by side in this process:
//!
//! - one finds its certificate and key (paired by CKA_ID) in a new session for every signature, as
//!   short-lived processes do: it must never fail, and it sees the renewed identities;
//! - one keeps its session and handles as long as they work: its signatures verify under the
//!   certificate it read, until that certificate's identity ends; then its key is gone
//!   (CKR_KEY_HANDLE_INVALID, or the service's refusal of an identity that just ended), never
//!   replaced by a renewed one, and it finds the objects again.
//!
//! Every signature is verified by openssl under the certificate its application read
//! (`KeySession::sign_with`), so a signature made with a renewed key under an old certificate fails
//! the test.

use crate::world::{world, LIFETIME, RENEWING};
use cryptoki_sys::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::prelude::*;

/// A little over three lifetimes: identities issued at about 0, 12, 24, 36 s.
const RUN: Duration = Duration::from_secs(LIFETIME * 3 + 4);
const PAUSE: Duration = Duration::from_millis(400);

#[test]
fn signatures_across_renewals_verify_under_the_certificate_the_application_read() {
    let w = world();
    let p = w.p;
    let cn = w.renewing.demo.common_name.clone();
    let end = Instant::now() + RUN;
    std::thread::scope(|scope| {
        let fresh = scope.spawn(|| {
            let mut certs = BTreeSet::new();
            let mut n = 0;
            while Instant::now() < end {
                let ks = KeySession::open(p, RENEWING, None, &cn);
                if let Err(rv) = ks.sign_with(CKM_SHA256_RSA_PKCS, format!("fresh {n}").as_bytes())
                {
                    panic!(
                        "signature {n} with objects found just before: {}",
                        rv_name(rv)
                    );
                }
                certs.insert(ks.key.cert_der.clone());
                ks.close();
                n += 1;
                std::thread::sleep(PAUSE);
            }
            (certs.len(), n)
        });
        let held = scope.spawn(|| {
            let h = p.open(p.slot_of(RENEWING));
            let mut key = key_of(p, h, &cn);
            let mut certs = BTreeSet::from([key.cert_der.clone()]);
            let (mut signed, mut refound) = (0, 0);
            while Instant::now() < end {
                let case = Case::of(CKM_SHA256_RSA_PKCS, format!("held {signed}").as_bytes());
                match p.sign(h, &case.mech, key.private, &case.input) {
                    Ok(sig) => {
                        case.assert_verified(&key, &sig);
                        signed += 1;
                    }
                    Err(rv) => {
                        assert!(
                            rv == CKR_KEY_HANDLE_INVALID || rv == CKR_FUNCTION_FAILED,
                            "a kept key failed with {}",
                            rv_name(rv)
                        );
                        let again = key_of(p, h, &cn);
                        assert_ne!(
                            again.cert_der, key.cert_der,
                            "found the ended identity again"
                        );
                        key = again;
                        certs.insert(key.cert_der.clone());
                        refound += 1;
                    }
                }
                std::thread::sleep(PAUSE);
            }
            p.close(h);
            (certs.len(), signed, refound)
        });
        let (fresh_certs, fresh_n) = fresh.join().expect("the application finding its objects");
        let (held_certs, held_n, refound) = held.join().expect("the application keeping them");
        eprintln!(
            "renewal: {fresh_n} signatures with fresh lookups over {fresh_certs} identities; \
             {held_n} with kept handles over {held_certs} identities, found again {refound} times"
        );
        assert!(
            fresh_certs >= 3,
            "{fresh_certs} identities in {} s of {LIFETIME} s identities: fewer than two renewals",
            RUN.as_secs()
        );
        assert!(refound >= 2, "the kept key ended {refound} times");
        assert!(held_certs >= 3 && held_n > 0 && fresh_n > 0);
    });
    let log = w.log_text();
    assert!(log.contains("renewal in"), "{log}");
    assert!(
        !log.contains("renewing the short-lived credentials failed"),
        "{log}"
    );
}
