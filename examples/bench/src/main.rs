//! cloudtoken-bench: the measurements behind examples/bench.sh, which installs the packages, builds,
//! starts and stops the servers and calls this program twice:
//!
//! ```text
//! cloudtoken-bench softhsm-init DIR
//! cloudtoken-bench run --softhsm-dir DIR --p11kit-address ADDR --cloudtoken-module SO
//!                      --cloudtoken-config FILE --csc-state DIR --out FILE [--quick]
//!                      [--softhsm-module SO] [--p11kit-module SO] [--cloudtoken-token LABEL]
//!                      [--cloudtoken-bulk-token LABEL]
//! ```
//!
//! Modules: `softhsm` (the SoftHSM token of the direct paths), `token` (a PKCS#11 module as applications
//! use it), `direct` (remote-client's signHash, the baseline of the module's overhead), `alg` (the two
//! signature schemes), `verify` (the check of every timed signature), `measure` (latency and
//! throughput runs, statistics), `run` (the sequence of measurements), `report` (the table and
//! summary.json). Any failure ends the program with status 1 and no summary: it never reports a
//! number it did not measure.

mod alg;
mod direct;
mod measure;
mod report;
mod run;
mod softhsm;
mod token;
mod verify;

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, String>;

/// Debian's paths of the modules.
const SOFTHSM_MODULE: &str = hsm_store::softhsm::DEFAULT_MODULE;
const P11KIT_CLIENT_MODULE: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so";

fn usage() -> ! {
    eprintln!(
        "usage: cloudtoken-bench softhsm-init DIR\n       \
         cloudtoken-bench run --softhsm-dir DIR --p11kit-address ADDR --cloudtoken-module SO \
         --cloudtoken-config FILE --csc-state DIR --out FILE [--quick] [--softhsm-module SO] \
         [--p11kit-module SO] [--cloudtoken-token LABEL] [--cloudtoken-bulk-token LABEL]"
    );
    std::process::exit(2)
}

fn parse_run(mut args: impl Iterator<Item = String>) -> run::Setup {
    let mut s = run::Setup {
        softhsm_dir: PathBuf::new(),
        softhsm_module: PathBuf::from(SOFTHSM_MODULE),
        p11kit_module: PathBuf::from(P11KIT_CLIENT_MODULE),
        p11kit_address: String::new(),
        cloudtoken_module: PathBuf::new(),
        cloudtoken_config: PathBuf::new(),
        cloudtoken_token: "Seal".to_owned(),
        cloudtoken_bulk_token: "Seal Bulk".to_owned(),
        csc_state: PathBuf::new(),
        out: PathBuf::new(),
        quick: false,
    };
    while let Some(flag) = args.next() {
        if flag == "--quick" {
            s.quick = true;
            continue;
        }
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--softhsm-dir" => s.softhsm_dir = value.into(),
            "--softhsm-module" => s.softhsm_module = value.into(),
            "--p11kit-module" => s.p11kit_module = value.into(),
            "--p11kit-address" => s.p11kit_address = value,
            "--cloudtoken-module" => s.cloudtoken_module = value.into(),
            "--cloudtoken-config" => s.cloudtoken_config = value.into(),
            "--cloudtoken-token" => s.cloudtoken_token = value,
            "--cloudtoken-bulk-token" => s.cloudtoken_bulk_token = value,
            "--csc-state" => s.csc_state = value.into(),
            "--out" => s.out = value.into(),
            _ => usage(),
        }
    }
    let missing = |p: &PathBuf| p.as_os_str().is_empty();
    if missing(&s.softhsm_dir)
        || s.p11kit_address.is_empty()
        || missing(&s.cloudtoken_module)
        || missing(&s.cloudtoken_config)
        || missing(&s.csc_state)
        || missing(&s.out)
    {
        usage()
    }
    s
}

fn main() {
    let mut args = std::env::args().skip(1);
    let outcome = match args.next().as_deref() {
        Some("softhsm-init") => match (args.next(), args.next()) {
            (Some(dir), None) => softhsm::init(&PathBuf::from(dir)),
            _ => usage(),
        },
        Some("run") => run::run(&parse_run(args)),
        _ => usage(),
    };
    if let Err(e) = outcome {
        eprintln!("cloudtoken-bench: {e}");
        std::process::exit(1);
    }
}
