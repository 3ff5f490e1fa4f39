//! What the in-process tests share: one emulator per behaviour under test, and the module loaded in this
//! process (as applications load it) once, with a configuration that has one token on each, logging
//! into a file the tests read.

use cryptoki_sys::*;
use once_cell::sync::OnceCell;
use support::globalsign::Emulator;
use support::prelude::*;

/// Seconds an identity lasts on the renewal emulator: renewed at half (12 s), hidden from new
/// lookups 2.4 s before its end.
pub const LIFETIME: u64 = 24;

pub struct World {
    pub p: P11,
    pub log: std::path::PathBuf,
    /// Identities of `LIFETIME` seconds.
    pub renewing: Emulator,
    /// Two signatures of quota.
    pub quota: Emulator,
    /// One signature per hour.
    pub limited: Emulator,
    /// Access tokens of 3 s the module believes last 600 s (`session_lifetime_s` default).
    pub short_sessions: Emulator,
    /// Access tokens of 12 s, configured as such.
    pub known_sessions: Emulator,
    _dir: tempfile::TempDir,
}

pub const RENEWING: &str = "DSS renewing";
pub const QUOTA: &str = "DSS quota";
pub const LIMITED: &str = "DSS rate-limited";
pub const SHORT_SESSIONS: &str = "DSS short sessions";
pub const KNOWN_SESSIONS: &str = "DSS known sessions";

pub fn world() -> &'static World {
    static WORLD: OnceCell<World> = OnceCell::new();
    WORLD.get_or_init(|| {
        {
            // Side by side, each from a thread that lives as long as the process (`lasting`): an
            // emulator dies with the thread that started it.
            let start = |serve: &'static [&'static str]| {
                std::thread::spawn(move || lasting(move || Emulator::start(&[], serve)))
            };
            let renewing = start(&["--identity-lifetime", "24"]);
            let quota = start(&["--signature-quota", "2"]);
            let limited = start(&["--rate-signatures", "1/3600"]);
            let short_sessions = start(&["--session-lifetime", "3"]);
            let known_sessions = start(&["--session-lifetime", "12"]);
            let join = |h: std::thread::JoinHandle<Emulator>| h.join().expect("emulator started");
            let (renewing, quota, limited) = (join(renewing), join(quota), join(limited));
            let (short_sessions, known_sessions) = (join(short_sessions), join(known_sessions));
            let dir = tempfile::tempdir().expect("tempdir");
            let log = dir.path().join("module.log");
            // In-process tokens keep their identities to themselves: the test process is one application.
            let own = "identity_cache = false";
            let config = write_config(
                dir.path(),
                "info",
                &log,
                &[
                    renewing.token_toml(RENEWING, own),
                    quota.token_toml(QUOTA, own),
                    limited.token_toml(LIMITED, own),
                    short_sessions.token_toml(SHORT_SESSIONS, own),
                    known_sessions
                        .token_toml(KNOWN_SESSIONS, &format!("{own}\nsession_lifetime_s = 12")),
                ],
            );
            let p = p11();
            assert_rv(p.initialize_with_config(&config), CKR_OK, "C_Initialize");
            World {
                p,
                log,
                renewing,
                quota,
                limited,
                short_sessions,
                known_sessions,
                _dir: dir,
            }
        }
    })
}

impl World {
    /// The module's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Signs `message` with the key labelled `label` in a new session (found as applications find it:
    /// certificate by label, key by the certificate's CKA_ID); the signature verified by openssl
    /// under the certificate read. Returns that certificate, or the module's CK_RV.
    pub fn sign_once(&self, token: &str, label: &str, message: &[u8]) -> Result<Vec<u8>, CK_RV> {
        let ks = KeySession::open(self.p, token, None, label);
        let r = ks
            .sign_with(CKM_SHA256_RSA_PKCS, message)
            .map(|_| ks.key.cert_der.clone());
        ks.close();
        r
    }
}
