//! Random sequences of PKCS#11 calls against the built module, for tests/abi_random.rs: every function
//! of the function list and the interface functions, with NULL pointers, lengths from zero to huge,
//! valid, stale and made-up handles, calls in any order, random mechanisms, parameters and attribute
//! templates, and now and then the way applications go (a session, the right PIN, a private key,
//! C_SignInit) so that the signing state machine and the service are reached. Every return value is
//! checked against the function's list in the specification (support/spec.rs). The arguments are
//! always memory-safe for a correct module (args.rs), so a crash is the module's.
//!
//!   p11-abi-fuzz CONFIG PIN SEED FIRST COUNT
//!
//! Sequence i uses a generator seeded from SEED and i only, so any sequence can be run alone. Output,
//! one line each: `S i` (sequence i starts), `E i` (it ended), `V i k FUNCTION RV ARGS` (call k of
//! sequence i answered RV, which the specification does not list for FUNCTION), `N FUNCTION` (it
//! answered CKR_FUNCTION_NOT_SUPPORTED once and CKR_OK another time: neither a stub nor supported).
//! With CT_ABI_VERBOSE set, every call goes to standard error.

mod args;
mod operations;

use args::{Gen, Rng, MECHS};
use cryptoki_sys::*;
use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::io::Write;
use std::ptr::null_mut;
use support::prelude::*;
use support::spec;

/// A call made: function, return value, what its arguments were.
pub(crate) type Call = (&'static str, CK_RV, String);

pub(crate) struct Fuzz {
    p: P11,
    g: Gen,
    config: CString,
    /// C_Finalize calls so far: each makes the next sequence fetch the credentials again.
    finalizes: u32,
    /// Calls a multi-step arm made on the way, checked like the others.
    steps: Vec<Call>,
}

impl Fuzz {
    /// Makes sure the module is initialized (the previous sequence may have finalized it).
    fn initialize(&mut self) -> CK_RV {
        let config = std::path::PathBuf::from(self.config.to_str().unwrap());
        let rv = self.p.initialize_with_config(&config);
        if rv == CKR_OK {
            self.g.sessions.clear();
            self.g.objects.clear();
        }
        if let Ok(s) = self.p.slots() {
            self.g.slots = s;
        }
        rv
    }

    fn call(&mut self) -> Call {
        match self.g.rng.below(100) {
            0..=27 => self.general_slot_and_session(),
            28..=59 => self.objects_and_login(),
            _ => self.cryptography(),
        }
    }

    /// C_Initialize to C_GetOperationState, the interface functions and C_WaitForSlotEvent.
    fn general_slot_and_session(&mut self) -> Call {
        let (f, g) = (self.p.f, &mut self.g);
        // SAFETY: in every arm, each pointer passed is NULL or points to a live value or buffer at least
        // as long as the length passed with it; the rest is the module's contract.
        unsafe {
            match g.rng.below(28) {
                0 => {
                    let mut a = init_args(null_mut());
                    a.flags = g.rng.pick(&[
                        0,
                        CKF_OS_LOCKING_OK,
                        CKF_LIBRARY_CANT_CREATE_OS_THREADS,
                        0xff,
                    ]);
                    let junk = CString::new(format!("junk={}", g.rng.next())).unwrap();
                    a.pReserved = match g.rng.below(4) {
                        0 => self.config.as_ptr() as *mut c_void,
                        1 => junk.as_ptr() as *mut c_void,
                        // Not NULL and pointing to nothing (issue 11, item 8).
                        2 if g.rng.chance(10) => std::ptr::dangling_mut::<c_void>(),
                        _ => null_mut(),
                    };
                    let rv = if g.rng.chance(20) {
                        (f.C_Initialize.unwrap())(null_mut())
                    } else {
                        (f.C_Initialize.unwrap())(&mut a as *mut _ as *mut c_void)
                    };
                    ("C_Initialize", rv, format!("flags 0x{:x}", a.flags))
                }
                1 if self.finalizes < 20 => {
                    self.finalizes += 1;
                    let mut x = 0u8;
                    let arg = g.or_null(&mut x, 20) as *mut c_void;
                    let rv = (f.C_Finalize.unwrap())(arg);
                    if rv == CKR_OK {
                        g.closed.append(&mut g.sessions);
                    }
                    (
                        "C_Finalize",
                        rv,
                        format!("reserved NULL: {}", arg.is_null()),
                    )
                }
                2 => {
                    let mut info = CK_INFO::default();
                    (
                        "C_GetInfo",
                        (f.C_GetInfo.unwrap())(g.or_null(&mut info, 80)),
                        String::new(),
                    )
                }
                3 => {
                    let mut l: *mut CK_FUNCTION_LIST = null_mut();
                    let p = g.or_null(&mut l, 80);
                    (
                        "C_GetFunctionList",
                        self.p.lib.C_GetFunctionList(p),
                        String::new(),
                    )
                }
                4..=6 => {
                    let mut slots = vec![0 as CK_SLOT_ID; g.rng.below(5) as usize];
                    let mut n = g.rng.below(slots.len() as u64 + 1) as CK_ULONG;
                    let list = if g.rng.chance(40) {
                        null_mut()
                    } else {
                        slots.as_mut_ptr()
                    };
                    let count = g.or_null(&mut n, 90);
                    let rv = (f.C_GetSlotList.unwrap())(g.rng.below(2) as CK_BBOOL, list, count);
                    (
                        "C_GetSlotList",
                        rv,
                        format!("buffer {} claimed {n}", slots.len()),
                    )
                }
                7 => {
                    let mut si = CK_SLOT_INFO::default();
                    let slot = g.slot();
                    (
                        "C_GetSlotInfo",
                        (f.C_GetSlotInfo.unwrap())(slot, g.or_null(&mut si, 85)),
                        String::new(),
                    )
                }
                8..=9 => {
                    let mut ti = CK_TOKEN_INFO::default();
                    let slot = g.slot();
                    (
                        "C_GetTokenInfo",
                        (f.C_GetTokenInfo.unwrap())(slot, g.or_null(&mut ti, 85)),
                        String::new(),
                    )
                }
                10 => {
                    let mut m = vec![0 as CK_MECHANISM_TYPE; g.rng.below(30) as usize];
                    let mut n = g.rng.below(m.len() as u64 + 1) as CK_ULONG;
                    let list = if g.rng.chance(40) {
                        null_mut()
                    } else {
                        m.as_mut_ptr()
                    };
                    let (slot, count) = (g.slot(), g.or_null(&mut n, 90));
                    (
                        "C_GetMechanismList",
                        (f.C_GetMechanismList.unwrap())(slot, list, count),
                        String::new(),
                    )
                }
                11 => {
                    let mut mi = CK_MECHANISM_INFO::default();
                    let (slot, ty) = (g.slot(), g.rng.pick(MECHS));
                    let rv = (f.C_GetMechanismInfo.unwrap())(slot, ty, g.or_null(&mut mi, 85));
                    ("C_GetMechanismInfo", rv, format!("0x{ty:x}"))
                }
                12 => {
                    let mut pin = g.pin();
                    let mut label = [b' '; 32];
                    let slot = g.slot();
                    (
                        "C_InitToken",
                        (f.C_InitToken.unwrap())(slot, pin.ptr(), pin.len, label.as_mut_ptr()),
                        String::new(),
                    )
                }
                13 => {
                    let (h, mut pin) = (g.session(), g.pin());
                    (
                        "C_InitPIN",
                        (f.C_InitPIN.unwrap())(h, pin.ptr(), pin.len),
                        String::new(),
                    )
                }
                14 => {
                    let (h, mut a, mut b) = (g.session(), g.pin(), g.pin());
                    (
                        "C_SetPIN",
                        (f.C_SetPIN.unwrap())(h, a.ptr(), a.len, b.ptr(), b.len),
                        String::new(),
                    )
                }
                15..=19 => {
                    let mut h = 0;
                    let flags = g.rng.pick(&[
                        CKF_SERIAL_SESSION,
                        CKF_SERIAL_SESSION | CKF_RW_SESSION,
                        0,
                        0xffff,
                    ]);
                    let slot = g.slot();
                    let rv = (f.C_OpenSession.unwrap())(
                        slot,
                        flags,
                        null_mut(),
                        None,
                        g.or_null(&mut h, 90),
                    );
                    if rv == CKR_OK {
                        g.sessions.push(h);
                    }
                    ("C_OpenSession", rv, format!("flags 0x{flags:x}"))
                }
                20 => {
                    let h = g.session();
                    let rv = (f.C_CloseSession.unwrap())(h);
                    if rv == CKR_OK {
                        g.sessions.retain(|s| *s != h);
                        g.closed.push(h);
                    }
                    ("C_CloseSession", rv, String::new())
                }
                21 => (
                    "C_CloseAllSessions",
                    (f.C_CloseAllSessions.unwrap())(g.slot()),
                    String::new(),
                ),
                22 => {
                    let mut si = CK_SESSION_INFO::default();
                    let h = g.session();
                    (
                        "C_GetSessionInfo",
                        (f.C_GetSessionInfo.unwrap())(h, g.or_null(&mut si, 85)),
                        String::new(),
                    )
                }
                23 => {
                    let (h, mut out) = (g.session(), g.output());
                    let (buf, len) = out.ptrs();
                    (
                        "C_GetOperationState",
                        (f.C_GetOperationState.unwrap())(h, buf, len),
                        String::new(),
                    )
                }
                24 => {
                    let (h, mut d, k1, k2) = (g.session(), g.input(), g.object(), g.object());
                    (
                        "C_SetOperationState",
                        (f.C_SetOperationState.unwrap())(h, d.ptr(), d.len, k1, k2),
                        String::new(),
                    )
                }
                25 => {
                    let mut slot: CK_SLOT_ID = 0;
                    // Never blocking: a blocking wait with no event to come is correct behaviour.
                    let flags = CKF_DONT_BLOCK | (g.rng.below(4) << 4) as CK_FLAGS;
                    let p = g.or_null(&mut slot, 85);
                    (
                        "C_WaitForSlotEvent",
                        (f.C_WaitForSlotEvent.unwrap())(flags, p, null_mut()),
                        String::new(),
                    )
                }
                26 => {
                    let mut list = vec![CK_INTERFACE::default(); g.rng.below(3) as usize];
                    let mut n = g.rng.below(list.len() as u64 + 1) as CK_ULONG;
                    let lp = if g.rng.chance(50) {
                        null_mut()
                    } else {
                        list.as_mut_ptr()
                    };
                    let np = g.or_null(&mut n, 90);
                    (
                        "C_GetInterfaceList",
                        self.p.lib.C_GetInterfaceList(lp, np),
                        String::new(),
                    )
                }
                _ => {
                    let name = CString::new(g.rng.pick(&["PKCS 11", "Vendor", ""])).unwrap();
                    let mut v = CK_VERSION {
                        major: g.rng.below(4) as u8,
                        minor: g.rng.pick(&[0, 40, 20]),
                    };
                    let mut iface: *mut CK_INTERFACE = null_mut();
                    let np = if g.rng.chance(50) {
                        null_mut()
                    } else {
                        name.as_ptr() as *mut u8
                    };
                    let (vp, ip) = (g.or_null(&mut v, 50), g.or_null(&mut iface, 90));
                    (
                        "C_GetInterface",
                        self.p.lib.C_GetInterface(np, vp, ip, g.rng.below(2)),
                        String::new(),
                    )
                }
            }
        }
    }

    /// The way applications go: a session on a token, often the right PIN, a private key found,
    /// C_SignInit with a random mechanism; the random calls that follow then act on a real operation.
    pub(crate) fn toward_a_signature(&mut self) -> Call {
        let f = self.p.f;
        if self.g.sessions.is_empty() || self.g.rng.chance(30) {
            let (slot, mut h) = (self.g.slot(), 0);
            // SAFETY: a valid out pointer.
            let rv = unsafe {
                (f.C_OpenSession.unwrap())(slot, CKF_SERIAL_SESSION, null_mut(), None, &mut h)
            };
            if rv != CKR_OK {
                return ("C_OpenSession", rv, "toward a signature".into());
            }
            self.steps.push(("C_OpenSession", rv, String::new()));
            self.g.sessions.push(h);
        }
        let h = self.g.rng.pick(&self.g.sessions);
        if self.g.rng.chance(60) {
            let pin = self.g.pin.clone();
            self.steps.push((
                "C_Login",
                self.p.login(h, CKU_USER, &pin),
                "the right PIN".into(),
            ));
        }
        match self.p.find(h, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]) {
            Ok(keys) if !keys.is_empty() => {
                self.g.objects.extend_from_slice(&keys);
                let key = self.g.rng.pick(&keys);
                let mut m = self.g.mechanism();
                // SAFETY: a mechanism that lives for the call, or NULL.
                let rv = unsafe { (f.C_SignInit.unwrap())(h, m.ptr(), key) };
                (
                    "C_SignInit",
                    rv,
                    format!("mechanism {:?} on a found key", m.m.map(|m| m.mechanism)),
                )
            }
            Ok(_) => (
                "C_FindObjectsFinal",
                CKR_OK,
                "no private key visible".into(),
            ),
            Err(rv) => ("C_FindObjectsInit", rv, "finding private keys".into()),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, pin, seed, first, count] = &args[..] else {
        eprintln!("usage: p11-abi-fuzz CONFIG PIN SEED FIRST COUNT");
        std::process::exit(2);
    };
    let (seed, first, count): (u64, u64, u64) = (
        seed.parse().expect("SEED"),
        first.parse().expect("FIRST"),
        count.parse().expect("COUNT"),
    );
    let verbose = std::env::var_os("CT_ABI_VERBOSE").is_some();
    let mut fz = Fuzz {
        p: p11(),
        g: Gen {
            rng: Rng(seed),
            pin: pin.clone(),
            sessions: Vec::new(),
            closed: Vec::new(),
            objects: Vec::new(),
            slots: Vec::new(),
        },
        config: CString::new(config.as_str()).unwrap(),
        finalizes: 0,
        steps: Vec::new(),
    };
    // Per function: answered CKR_FUNCTION_NOT_SUPPORTED, answered CKR_OK.
    let mut support: HashMap<&'static str, (bool, bool)> = HashMap::new();
    let mut out = std::io::stdout().lock();
    for i in first..first + count {
        fz.g.rng = Rng(seed ^ i.wrapping_mul(0xd1b5_4a32_d192_ed03));
        let _ = writeln!(out, "S {i}");
        let _ = out.flush();
        let rv = fz.initialize();
        if rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED {
            let _ = writeln!(
                out,
                "V {i} 0 C_Initialize {} the sequence's own initialization",
                rv_name(rv)
            );
        }
        for k in 1..=5 + fz.g.rng.below(36) {
            let last = fz.call();
            let mut calls = std::mem::take(&mut fz.steps);
            calls.push(last);
            for (name, rv, what) in calls {
                if verbose {
                    eprintln!("{i}.{k} {name} -> {} ({what})", rv_name(rv));
                }
                let seen = support.entry(name).or_default();
                seen.0 |= rv == CKR_FUNCTION_NOT_SUPPORTED;
                seen.1 |= rv == CKR_OK;
                if rv != CKR_FUNCTION_NOT_SUPPORTED && !spec::allowed(name, rv) {
                    let _ = writeln!(out, "V {i} {k} {name} {} {what}", rv_name(rv));
                }
            }
        }
        let _ = writeln!(out, "E {i}");
        let _ = out.flush();
    }
    for (name, (not_supported, ok)) in &support {
        if *not_supported && *ok {
            let _ = writeln!(out, "N {name}");
        }
    }
}
