//! For tests of the services built on this crate: a new SoftHSM token per call, all in one SoftHSM
//! configuration of the test process, under a temporary folder removed when the process exits.

use crate::{softhsm, Module, Result};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use zeroize::Zeroizing;

/// A token made for one test.
pub struct ScratchToken {
    pub module: Arc<Module>,
    pub label: String,
    pub pin: Zeroizing<String>,
}

static DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_dir() {
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn configured() -> &'static PathBuf {
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("hsm-store-test-")
            .tempdir()
            .expect("a temporary folder for SoftHSM")
            .keep();
        let conf = softhsm::create(&dir).expect("the SoftHSM configuration");
        // Tests run on many threads; this runs once, before any SoftHSM is loaded, and only the
        // standard library (which serialises its own environment access) reads the variable
        // meanwhile.
        softhsm::use_config(&conf).expect("SOFTHSM2_CONF");
        // SAFETY: `remove_dir` is a plain `extern "C" fn` that stays valid for the process's life.
        unsafe {
            libc::atexit(remove_dir);
        }
        dir
    })
}

/// A fresh token of the SoftHSM module at `softhsm::DEFAULT_MODULE` (or `HSM_STORE_TEST_MODULE`).
pub fn scratch_token() -> Result<ScratchToken> {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    configured();
    let path = std::env::var_os("HSM_STORE_TEST_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(softhsm::DEFAULT_MODULE));
    let module = Module::load(&path)?;
    let label = format!(
        "test {} {}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    );
    let pin = Zeroizing::new("test-user-pin".to_owned());
    module.init_token(&label, "so-pin-of-a-test", &pin)?;
    Ok(ScratchToken { module, label, pin })
}
