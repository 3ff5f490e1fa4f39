//! The `support` crate: what the integration and real-client tests share. A real `csc-server` on
//! 127.0.0.1 with its demo data and audit trail, the built module loaded as applications load it,
//! one-time codes, independent signature checks with `openssl`, the shipped test prompt, the approval
//! page and headless Chromium, the CryptoPro DSS emulator, the `cloudtoken` tool and NSS, a fault proxy
//! between module and service, child processes with deadlines, visible skips, and the PKCS#11
//! return-value table of the specification.
//!
//! Modules, each owning one subject: `paths` (where binaries and repository files are), `service`,
//! `globalsign` (the GlobalSign DSS emulator), `cryptopro` (the CryptoPro DSS emulator), `audit`,
//! `totp`, `verify` (with GOST through OpenSSL's engine), `config` (module configurations and secret
//! files), `prompt`, `page`, `browser` (Chromium), `oauth2_page`, `tls`, `tools`, `uri` (pkcs11: URIs),
//! `pdf`, `p11` (the module's C API; `p11::flow` holds the open → log in → find → sign → verify
//! helper), `fault_proxy`, `child`, `spec`, `skip`. Tests usually `use support::prelude::*`.

pub mod audit;
pub mod browser;
pub mod child;
pub mod config;
pub mod cryptopro;
pub mod fault_proxy;
pub mod globalsign;
pub mod oauth2_page;
pub mod p11;
pub mod page;
pub mod paths;
pub mod pdf;
pub mod prompt;
pub mod service;
pub mod skip;
pub use pkcs11_returns as spec;
pub mod tls;
pub mod tools;
pub mod totp;
pub mod uri;
pub mod verify;

pub use audit::{audit_entries, AuditEntry};
pub use paths::{
    cloudtoken_bin, cryptopro_emulator_bin, csc_server_bin, globalsign_emulator_bin, module_path,
    repo_root, target_profile_dir,
};
pub use service::{Demo, DemoClient, DemoCredential, DemoToken, Service};
pub use totp::{account_code, totp_code};
pub use verify::{openssl_verify, Scheme};

/// What the PKCS#11 tests use: the module's wrappers, mechanisms and cases, keys, the shared service.
pub mod prelude {
    pub use crate::config::{
        endpoint_toml, mode_of, seal_token_toml, secret_file, token_toml, write_config,
        write_private,
    };
    pub use crate::p11::flow::{
        initialize_on, isolated, serial, setup, sign_verified, token_lock, with_env, KeySession,
    };
    pub use crate::p11::mech::{cases_for, digest_info, hash_by_len, sha, Case, Mech, HASHES};
    pub use crate::p11::objects::{bool_attr, find_labelled, key_of, ulong, ulongs, Key};
    pub use crate::p11::rv::{assert_rv, ok, rv_name};
    pub use crate::p11::{init_args, p11, reserved_config, P11};
    pub use crate::prompt::{own_process_name, PromptDir, Question};
    pub use crate::service::{lasting, Service};
    pub use crate::skip::{is_root, skip};
    pub use crate::totp::totp_code;
}
