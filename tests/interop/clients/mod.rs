//! One module per client application; each lists its rows. The recipes are the ones in
//! ../shared/clients.md, measured on Debian 12 with pkcs11-spy.

pub mod gnutls;
pub mod interface;
pub mod libp11;
pub mod nss;
pub mod p11kit;
pub mod pdfsig;
pub mod pkcs11_tool;
pub mod provider;
pub mod smime;

use crate::case::Ctx;
use crate::env::Key;
use std::path::PathBuf;

/// A document unique to the row, written to `doc.txt` in its folder.
pub fn document(ctx: &Ctx, what: &str, key: &Key) -> (Vec<u8>, PathBuf) {
    let text = format!(
        "Invoice 2026-0042 for {} - signed by {what} with {}\nAmount due: 1,234.56 EUR\n",
        key.token, key.label
    )
    .into_bytes();
    let path = ctx.write("doc.txt", &text);
    (text, path)
}

/// Reads a file a client wrote, as a row error when it is missing.
pub fn read(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("the client wrote no {}: {e}", path.display()))
}

/// The PSS salt the suite asks for: the hash length, as PKCS#1 recommends and CSC services expect.
pub fn pss_salt(key: &Key) -> usize {
    key.hash.len()
}
