//! SoftHSM with its tokens inside a service's folder (a process of its own: SoftHSM reads its
//! configuration once per process).

use hsm_store::{softhsm, Curve, Error, KeySpec, Module, Store};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[test]
fn tokens_live_in_the_state_folder_and_the_configuration_is_fixed_once_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm::create(dir.path()).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(conf, dir.path().join(softhsm::CONF_FILE));
    assert_eq!(mode(&conf), 0o600);
    let tokens = dir.path().join(softhsm::TOKEN_DIR);
    assert_eq!(mode(&tokens), 0o700);
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(
        text.contains(&format!("directories.tokendir = {}", tokens.display())),
        "{text}"
    );
    // Nothing is overwritten.
    assert!(softhsm::create(dir.path()).is_err());

    softhsm::use_config(&conf).unwrap();
    let module = Module::load(Path::new(softhsm::DEFAULT_MODULE)).unwrap();
    module
        .init_token("state token", "so pin", "user pin")
        .unwrap();
    let store = Store::open(module.clone(), "state token", "user pin", 2).unwrap();
    store.generate("k", KeySpec::Ec(Curve::P256)).unwrap();
    let files = std::fs::read_dir(&tokens).unwrap().count();
    assert_eq!(files, 1, "one token folder under {}", tokens.display());

    // Loading the same module again is the same module; SoftHSM cannot be pointed elsewhere now.
    let again = Module::load(Path::new(softhsm::DEFAULT_MODULE)).unwrap();
    assert!(std::sync::Arc::ptr_eq(&module, &again));
    assert!(softhsm::use_config(&conf).is_ok());
    let other = dir.path().join("other.conf");
    assert!(matches!(softhsm::use_config(&other), Err(Error::Config(_))));
    assert!(matches!(
        Module::load(Path::new("/nonexistent/libpkcs11.so")),
        Err(Error::Load { .. })
    ));
}
