//! A small application that signs through the built module, for tests that need several processes:
//! loads the module (dlopen), initializes it on a configuration, waits until a given moment so that
//! several copies start signing together, signs `COUNT` messages with a key of a login-free token and
//! prints one line per result, then finalizes.
//!
//!   p11-signer CONFIG TOKEN_LABEL KEY_LABEL START_UNIX_MS COUNT MESSAGE_PREFIX
//!
//! Output: `CERT <hex DER>`, then per message `OK <hex signature>` or `ERR <CKR name>`. The signature is
//! ECDSA with SHA-256 (raw r||s) or RSA PKCS#1 v1.5 with SHA-256, by key type; the test verifies it.

use cryptoki_sys::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::prelude::*;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, token, key_label, start_ms, count, prefix] = &args[..] else {
        eprintln!(
            "usage: p11-signer CONFIG TOKEN_LABEL KEY_LABEL START_UNIX_MS COUNT MESSAGE_PREFIX"
        );
        std::process::exit(2);
    };
    let start_ms: u128 = start_ms.parse().expect("START_UNIX_MS");
    let count: usize = count.parse().expect("COUNT");
    let p = p11();
    let rv = p.initialize_with_config(std::path::Path::new(config));
    if rv != CKR_OK {
        println!("ERR {}", rv_name(rv));
        std::process::exit(1);
    }
    let s = KeySession::open(p, token, None, key_label);
    println!("CERT {}", hex(&s.key.cert_der));
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    if start_ms > now_ms {
        std::thread::sleep(Duration::from_millis((start_ms - now_ms) as u64));
    }
    for i in 0..count {
        let case = Case::of(s.key.sha256_mechanism(), format!("{prefix} {i}").as_bytes());
        match p.sign(s.h, &case.mech, s.key.private, &case.input) {
            Ok(sig) => println!("OK {}", hex(&sig)),
            Err(rv) => println!("ERR {}", rv_name(rv)),
        }
    }
    let _ = s.close();
    let _ = p.finalize();
}
