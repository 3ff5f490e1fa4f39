//! The `csc-server` binary's state folder and its HSM: `init` with the default SoftHSM token inside
//! the state folder and with an existing token of a module, the keys only in the token, and `serve`
//! refusing folders it cannot use. A process of its own: it points SoftHSM at the state folders.

use hsm_store::{softhsm, Module};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_csc-server"));
    c.stdin(Stdio::null()).env_remove("SOFTHSM2_CONF");
    c
}

fn run(c: &mut Command) -> Output {
    let out = c.output().expect("run csc-server");
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Starts `serve`, waits for server.url, stops it; or returns the error output of a failed start.
fn serve(state: &Path, env: &[(&str, &Path)]) -> Result<String, String> {
    let _ = std::fs::remove_file(state.join("server.url"));
    let mut child = bin()
        .args(["serve", "--state"])
        .arg(state)
        .args(["--listen", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(url) = std::fs::read_to_string(state.join("server.url")) {
            child.kill().unwrap();
            child.wait().unwrap();
            return Ok(url);
        }
        if let Some(_status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        assert!(
            Instant::now() < deadline,
            "serve neither started nor failed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The HSM key labels the database names (credentials and CA).
fn key_labels(state: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open(state.join("state.db")).unwrap();
    let mut labels: Vec<String> = db
        .prepare("SELECT key_label FROM credentials")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let ca: Vec<u8> = db
        .query_row(
            "SELECT value FROM meta WHERE name = 'ca_key_label'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    labels.push(String::from_utf8(ca).unwrap());
    labels
}

fn pin(state: &Path) -> String {
    std::fs::read_to_string(state.join("hsm.pin")).unwrap()
}

#[test]
fn init_puts_every_key_into_the_hsm_and_serve_uses_it() {
    let dir = tempfile::tempdir().unwrap();

    // 1. The default: a SoftHSM token whose files live in the state folder.
    let state = dir.path().join("state");
    run(bin().args(["init", "--state"]).arg(&state));
    assert_eq!(mode(&state.join("softhsm2.conf")), 0o600);
    assert_eq!(mode(&state.join("softhsm-tokens")), 0o700);
    assert_eq!(mode(&state.join("hsm.pin")), 0o600);
    let config = std::fs::read_to_string(state.join("hsm.toml")).unwrap();
    assert!(config.contains("token = \"csc-server\""), "{config}");
    assert!(
        config.contains("softhsm2_conf = \"softhsm2.conf\""),
        "{config}"
    );
    assert!(serve(&state, &[])
        .unwrap()
        .starts_with("https://127.0.0.1:"));

    // 2. An existing token of a module, named on the command line, its PIN in a 0600 file.
    let hsm_dir = dir.path().join("hsm");
    std::fs::create_dir(&hsm_dir).unwrap();
    let conf = softhsm::create(&hsm_dir).unwrap();
    let made = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "shared",
            "--so-pin",
            "12345678",
        ])
        .args(["--pin", "87654321"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util (Debian package softhsm2)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pin_file = dir.path().join("token.pin");
    std::fs::write(&pin_file, "87654321\n").unwrap();
    let other = dir.path().join("other");
    let init_other = |c: &mut Command| {
        c.args(["init", "--state"])
            .arg(&other)
            .args([
                "--hsm-module",
                softhsm::DEFAULT_MODULE,
                "--hsm-token",
                "shared",
            ])
            .arg("--hsm-pin-file")
            .arg(&pin_file)
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap()
    };
    // A PIN file others can read is refused.
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = init_other(&mut bin());
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("chmod 600"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let _ = std::fs::remove_dir_all(&other);
    let ok = init_other(&mut bin());
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(!other.join("softhsm2.conf").exists());
    assert_eq!(pin(&other), "87654321");
    let config = std::fs::read_to_string(other.join("hsm.toml")).unwrap();
    assert!(!config.contains("softhsm2_conf"), "{config}");
    serve(&other, &[("SOFTHSM2_CONF", &conf)]).unwrap();

    // 3. The keys are in the tokens, sensitive and not extractable; nothing else holds them.
    softhsm::use_config(&conf).unwrap();
    let module = Module::load(Path::new(softhsm::DEFAULT_MODULE)).unwrap();
    let labels = key_labels(&other);
    let store = hsm_store::Store::open(module, "shared", "87654321", 1).unwrap();
    for label in &labels {
        store.key(label).unwrap_or_else(|e| panic!("{label}: {e}"));
    }
    let columns: String = rusqlite::Connection::open(other.join("state.db"))
        .unwrap()
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'credentials'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!columns.contains("sealed_key"), "{columns}");

    // 4. serve refuses what it cannot use, and says why.
    let db = rusqlite::Connection::open(state.join("state.db")).unwrap();
    db.execute(
        "UPDATE meta SET value = CAST('2' AS BLOB) WHERE name = 'schema_version'",
        [],
    )
    .unwrap();
    drop(db);
    let err = serve(&state, &[]).unwrap_err();
    assert!(
        err.contains("schema version 2 is not this csc-server's (4)")
            && err.contains("csc-server init"),
        "{err}"
    );
    let moved: PathBuf = other.join("hsm.toml");
    std::fs::remove_file(&moved).unwrap();
    let err = serve(&other, &[("SOFTHSM2_CONF", &conf)]).unwrap_err();
    assert!(
        err.contains("hsm.toml") && err.contains("csc-server init"),
        "{err}"
    );
}
