//! Real applications sign through cloudtoken (issues #4, #12): OpenSC pkcs11-tool, OpenSSL 3 with the
//! libp11 engine and with pkcs11-provider, NSS (modutil, certutil, cmsutil), poppler's pdfsig, p11-kit's
//! proxy, GnuTLS (p11tool, certtool) and S/MIME mail from OpenSSL and NSS drive the built module against
//! a fresh reference service on 127.0.0.1, with RSA-2048, RSA-3072, ECDSA P-256 and P-384 credentials;
//! pkcs11-spy shows which PKCS#11 interface a 3.0 and a 2.40 client take. Every signature is verified with `openssl` against the
//! credential's certificate, itself checked against the demo CA. The suite prints a table (client,
//! operation, key, authentication, result) and fails if any row failed: a client that cannot sign is
//! a failure, never a skip.
//!
//! Authentication: `PIN+TOTP`/`PIN+SMS` rows give the client the passcode (PIN and one-time code)
//! where it takes a PIN. The second-factor modes run with a module configuration of the row's own
//! (`cloudtoken.toml`, 0600, in its folder) that puts the demo user's token in that mode with the shipped
//! test prompt (examples/prompt/test-prompt.sh answering the PIN from a file and the code with
//! `csc-server demo-otp`) as the only source of codes: `login-free+prompt` rows give the client no PIN
//! at all (pkcs11-tool without --login, libp11 and pkcs11-provider without a PIN, NSS cmsutil and pdfsig
//! without a password, openssl through p11-kit's proxy); `protected+prompt` rows log in with a NULL PIN
//! (pkcs11-tool --login without --pin, libp11 and pkcs11-provider without a PIN, cmsutil without a
//! password file, pdfsig with a placeholder password that is not the PIN). Those rows also check what
//! the prompt was asked: the PIN, and the code of the row's credential only.
//!
//! Needs the client packages `tests/run.sh` installs (tests/interop/install-packages.sh). Rows run in
//! parallel, one queue per credential (each client process needs a one-time code of its own), each client
//! process under a deadline. Alone, after `cargo build --release`:
//! `cargo test --release -p cloudtoken-tests --test interop` (about 110 s; the table is also written to
//! target/release/interop-report.txt, and a failed run keeps every row's files for inspection).

mod case;
mod clients;
mod env;
mod process;
mod report;
mod verify;

use std::sync::Arc;

/// Rows a module bug is known to break, with the finding. They still fail the suite; an entry only
/// explains the failure next to the row. Remove an entry when the module is fixed.
const KNOWN_MODULE_ISSUES: &[report::KnownIssue] = &[];

/// The client programs the rows run, and the Debian package of each (tests/run.sh installs them).
const TOOLS: &[(&str, &str)] = &[
    ("/usr/bin/pkcs11-tool", "opensc"),
    ("/usr/bin/openssl", "openssl"),
    (clients::libp11::ENGINE, "libengine-pkcs11-openssl"),
    (
        clients::provider::PROVIDER,
        "pkcs11-provider (bookworm-backports)",
    ),
    ("/usr/bin/modutil", "libnss3-tools"),
    ("/usr/bin/pdfsig", "poppler-utils"),
    ("/usr/bin/p11-kit", "p11-kit"),
    ("/usr/bin/p11tool", "gnutls-bin"),
    ("/usr/bin/certtool", "gnutls-bin"),
    (clients::interface::SPY, "opensc"),
    (clients::p11kit::PROXY, "p11-kit-modules"),
];

#[test]
fn real_clients_sign_through_cloudtoken() {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(path, _)| !std::path::Path::new(path).exists())
        .map(|(path, pkg)| {
            eprintln!("missing {path}");
            *pkg
        })
        .collect();
    assert!(
        missing.is_empty(),
        "client packages missing (tests/run.sh installs them as root): {missing:?}"
    );

    let work = tempfile::Builder::new()
        .prefix("interop-")
        .tempdir_in(support::target_profile_dir())
        .expect("work dir");
    let env = env::Env::start(work.path().to_path_buf());
    let registration = Arc::new(clients::p11kit::Registration::new(&env));

    let mut cases = Vec::new();
    cases.extend(clients::pkcs11_tool::cases(&env));
    cases.extend(clients::libp11::cases(&env));
    cases.extend(clients::provider::cases(&env));
    cases.extend(clients::nss::cases(&env));
    cases.extend(clients::pdfsig::cases(&env));
    cases.extend(clients::p11kit::cases(&env, &registration));
    cases.extend(clients::gnutls::cases(&env));
    cases.extend(clients::interface::cases(&env));
    cases.extend(clients::smime::cases(&env));

    let started = std::time::Instant::now();
    let rows = case::run_all(&env, cases);
    drop(registration);

    let table = report::render(&rows, KNOWN_MODULE_ISSUES);
    let _ = std::fs::write(
        support::target_profile_dir().join("interop-report.txt"),
        &table,
    );
    report::show(&format!(
        "cloudtoken interop suite ({:.0} s)\n{table}",
        started.elapsed().as_secs_f64()
    ));

    let failed = rows.iter().filter(|r| r.outcome.is_err()).count();
    if failed > 0 {
        // Keep the clients' files (inputs, outputs, logs) for the failures the table points to.
        let kept = work.keep();
        panic!(
            "{failed} of {} interop rows failed (table above; files in {})",
            rows.len(),
            kept.display()
        );
    }
    assert!(
        KNOWN_MODULE_ISSUES.is_empty(),
        "KNOWN_MODULE_ISSUES lists rows that pass now: remove them"
    );
}
