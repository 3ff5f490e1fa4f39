//! The key model: what kind of key a credential holds, as far as signing is concerned (RSA of some size,
//! EC on a named prime curve, or GOST R 34.10-2012 with its parameter set), and the sizes that follow
//! from it.
//!
//! Calls the family files only for their OID tables.

use super::gost::{GostSize, ParamSet};
use super::{ecdsa, pkcs1};
use cryptoki_sys::*;
use remote_client::{oid, KeyInfo};

/// A named prime curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    pub const ALL: [Curve; 3] = [Curve::P256, Curve::P384, Curve::P521];

    /// Bytes of one field element (and of r and s in a raw ECDSA signature): 32, 48, 66.
    pub fn field_len(self) -> usize {
        (self.bits() as usize).div_ceil(8)
    }

    /// Bits of the order / field: 256, 384, 521 (the "key size" PKCS#11 reports for EC).
    pub fn bits(self) -> u32 {
        match self {
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }

    /// Dotted OID of the named curve.
    pub fn oid(self) -> &'static str {
        match self {
            Curve::P256 => oid::P256,
            Curve::P384 => oid::P384,
            Curve::P521 => oid::P521,
        }
    }

    pub fn from_oid(oid: &str) -> Option<Self> {
        let oid = oid.trim();
        Self::ALL.into_iter().find(|c| c.oid() == oid)
    }

    fn from_bits(bits: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.bits() == bits)
    }

    /// CKA_EC_PARAMS: DER `ECParameters` as the namedCurve choice (an OBJECT IDENTIFIER).
    pub fn ec_params_der(self) -> Vec<u8> {
        // Constants rather than a runtime encode that could only fail on a programming error; the unit tests
        // compare them with the der crate's encoding of `oid()`.
        match self {
            Curve::P256 => vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            Curve::P384 => vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
            Curve::P521 => vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
        }
    }
}

/// What kind of key a credential holds, as far as signing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        bits: u32,
    },
    Ec {
        curve: Curve,
    },
    /// GOST R 34.10-2012; the parameter set names the size.
    Gost {
        params: ParamSet,
    },
}

impl KeyKind {
    /// From the service's key description alone (used when no certificate is available; the certificate's
    /// SPKI, see `object::key_kind_of_certificate`, is authoritative otherwise). `None` when the key is
    /// neither a recognisable RSA key nor an EC key on a supported curve (a GOST key is only ever known from
    /// its certificate, which names its parameter set).
    pub fn from_key_info(key: &KeyInfo) -> Option<Self> {
        let listed = |o: &str| key.algos.iter().any(|a| a.trim() == o);
        let is_rsa = listed(oid::RSA_ENCRYPTION)
            || listed(oid::RSASSA_PSS)
            || pkcs1::OIDS.iter().any(|(_, o)| listed(o));
        let is_ec = listed(oid::EC_PUBLIC_KEY)
            || ecdsa::OIDS.iter().any(|(_, o)| listed(o))
            || key.curve.is_some();
        match (is_rsa, is_ec) {
            (true, false) if key.len >= pkcs1::MIN_RSA_BITS => Some(KeyKind::Rsa { bits: key.len }),
            (false, true) => {
                let curve = match key.curve.as_deref() {
                    Some(c) => Curve::from_oid(c)?,
                    // CSC v1 makes `curve` optional; the key length then names the curve.
                    None => Curve::from_bits(key.len)?,
                };
                Some(KeyKind::Ec { curve })
            }
            _ => None,
        }
    }

    /// The key size PKCS#11 reports: modulus bits for RSA, field bits for EC.
    pub fn bits(&self) -> u32 {
        match self {
            KeyKind::Rsa { bits } => *bits,
            KeyKind::Ec { curve } => curve.bits(),
            KeyKind::Gost { params } => params.size.bits(),
        }
    }

    /// The GOST key size, for a GOST key.
    pub fn gost_size(&self) -> Option<GostSize> {
        match self {
            KeyKind::Gost { params } => Some(params.size),
            _ => None,
        }
    }

    /// CKA_KEY_TYPE.
    pub fn ck_key_type(&self) -> CK_KEY_TYPE {
        match self {
            KeyKind::Rsa { .. } => CKK_RSA,
            KeyKind::Ec { .. } => CKK_EC,
            KeyKind::Gost { params } => params.size.ck_key_type(),
        }
    }

    /// Length of every signature this key makes, in PKCS#11 form: modulus bytes for RSA, 2 × field bytes for
    /// ECDSA (r||s), 2 × half for GOST (s||r).
    pub fn signature_len(&self) -> usize {
        match self {
            KeyKind::Rsa { bits } => (*bits as usize).div_ceil(8),
            KeyKind::Ec { curve } => 2 * curve.field_len(),
            KeyKind::Gost { params } => 2 * params.size.half_len(),
        }
    }
}
