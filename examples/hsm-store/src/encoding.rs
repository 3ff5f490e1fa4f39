//! The DER the store reads from and hands to the token, all built with the RustCrypto `der`, `spki`
//! and `pkcs1` crates: SubjectPublicKeyInfo from a public key's attributes, curve parameters
//! (CKA_EC_PARAMS), the PKCS#1 v1.5 DigestInfo, and ECDSA's `Ecdsa-Sig-Value` from PKCS#11's r||s.

use crate::{Curve, Error, Hash, Result};
use const_oid::db::{rfc5912, rfc5912::SECP_384_R_1};
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, BitString, OctetStringRef, UintRef};
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifier, AlgorithmIdentifierRef, SubjectPublicKeyInfo};

fn curve_oid(curve: Curve) -> ObjectIdentifier {
    match curve {
        Curve::P256 => rfc5912::SECP_256_R_1,
        Curve::P384 => SECP_384_R_1,
    }
}

fn hash_oid(hash: Hash) -> ObjectIdentifier {
    match hash {
        Hash::Sha1 => rfc5912::ID_SHA_1,
        Hash::Sha224 => rfc5912::ID_SHA_224,
        Hash::Sha256 => rfc5912::ID_SHA_256,
        Hash::Sha384 => rfc5912::ID_SHA_384,
        Hash::Sha512 => rfc5912::ID_SHA_512,
    }
}

fn malformed(what: &'static str) -> impl Fn(der::Error) -> Error {
    move |_| Error::Malformed(what)
}

/// CKA_EC_PARAMS of a named curve: the DER of its OID.
pub fn ec_params(curve: Curve) -> Vec<u8> {
    curve_oid(curve)
        .to_der()
        .expect("an OID encodes into a vector")
}

/// The curve a CKA_EC_PARAMS names, if it is one the store knows.
pub fn curve_of(ec_params: &[u8]) -> Option<Curve> {
    let oid = ObjectIdentifier::from_der(ec_params).ok()?;
    [Curve::P256, Curve::P384]
        .into_iter()
        .find(|c| curve_oid(*c) == oid)
}

fn spki_der(
    algorithm: ObjectIdentifier,
    parameters: AnyRef<'_>,
    key: &[u8],
    what: &'static str,
) -> Result<Vec<u8>> {
    SubjectPublicKeyInfo {
        algorithm: AlgorithmIdentifier {
            oid: algorithm,
            parameters: Some(parameters),
        },
        subject_public_key: BitString::from_bytes(key).map_err(malformed(what))?,
    }
    .to_der()
    .map_err(malformed(what))
}

/// SubjectPublicKeyInfo of an RSA key (rsaEncryption, NULL parameters) from CKA_MODULUS and
/// CKA_PUBLIC_EXPONENT (big-endian, as PKCS#11 gives them).
pub fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>> {
    let what = "RSA public key";
    let key = pkcs1::RsaPublicKey {
        modulus: UintRef::new(modulus).map_err(malformed(what))?,
        public_exponent: UintRef::new(exponent).map_err(malformed(what))?,
    }
    .to_der()
    .map_err(malformed(what))?;
    spki_der(rfc5912::RSA_ENCRYPTION, AnyRef::NULL, &key, what)
}

/// SubjectPublicKeyInfo of an EC key (id-ecPublicKey with the named curve) from CKA_EC_POINT, which
/// PKCS#11 defines as the DER OCTET STRING of the point; a bare uncompressed point (some modules
/// return that) is accepted too.
pub fn ec_spki(curve: Curve, ec_point: &[u8]) -> Result<Vec<u8>> {
    let what = "EC public key";
    let field = match curve {
        Curve::P256 => 32,
        Curve::P384 => 48,
    };
    let uncompressed = |p: &[u8]| p.len() == 1 + 2 * field && p[0] == 0x04;
    let point = match <&OctetStringRef>::from_der(ec_point) {
        Ok(os) if uncompressed(os.as_bytes()) => os.as_bytes(),
        _ if uncompressed(ec_point) => ec_point,
        _ => return Err(Error::Malformed(what)),
    };
    let oid = curve_oid(curve);
    let params = AnyRef::from(&oid);
    spki_der(rfc5912::ID_EC_PUBLIC_KEY, params, point, what)
}

/// RFC 8017 §9.2 DigestInfo.
#[derive(Sequence)]
struct DigestInfo<'a> {
    algorithm: AlgorithmIdentifierRef<'a>,
    digest: &'a OctetStringRef,
}

/// The DigestInfo CKM_RSA_PKCS signs for RSASSA-PKCS1-v1_5 (hash parameters NULL, as RFC 8017
/// writes them).
pub fn digest_info(hash: Hash, value: &[u8]) -> Result<Vec<u8>> {
    if value.len() != hash.size() {
        return Err(Error::Input(
            "the hash value does not have the hash algorithm's length",
        ));
    }
    DigestInfo {
        algorithm: AlgorithmIdentifier {
            oid: hash_oid(hash),
            parameters: Some(AnyRef::NULL),
        },
        digest: OctetStringRef::new(value).map_err(malformed("DigestInfo"))?,
    }
    .to_der()
    .map_err(malformed("DigestInfo"))
}

#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// CKM_ECDSA's fixed-width r||s as DER `Ecdsa-Sig-Value` (RFC 3279).
pub fn ecdsa_der(raw: &[u8]) -> Result<Vec<u8>> {
    let what = "ECDSA signature";
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(Error::Malformed(what));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    EcdsaSigValue {
        r: UintRef::new(r).map_err(malformed(what))?,
        s: UintRef::new(s).map_err(malformed(what))?,
    }
    .to_der()
    .map_err(malformed(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_info_matches_rfc8017_prefixes() {
        // RFC 8017 §9.2 note 1: the DER prefixes of the DigestInfo values.
        let cases = [
            (Hash::Sha1, "3021300906052b0e03021a05000414"),
            (Hash::Sha224, "302d300d06096086480165030402040500041c"),
            (Hash::Sha256, "3031300d060960864801650304020105000420"),
            (Hash::Sha384, "3041300d060960864801650304020205000430"),
            (Hash::Sha512, "3051300d060960864801650304020305000440"),
        ];
        for (hash, prefix) in cases {
            let value = vec![0xab; hash.size()];
            let der = digest_info(hash, &value).unwrap();
            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(
                hex,
                format!("{prefix}{}", "ab".repeat(hash.size())),
                "{hash:?}"
            );
        }
        assert!(digest_info(Hash::Sha256, &[0; 20]).is_err());
    }

    #[test]
    fn ecdsa_signatures_become_minimal_der_integers() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero byte
        raw[33] = 0x01; // s has a leading zero to strip
        let der = ecdsa_der(&raw).unwrap();
        assert_eq!(&der[..5], &[0x30, 0x44, 0x02, 0x21, 0x00]);
        assert_eq!(der[5], 0x80);
        // s: 31 significant bytes after dropping one leading zero.
        assert_eq!(&der[37..40], &[0x02, 0x1f, 0x01]);
        assert!(ecdsa_der(&[1, 2, 3]).is_err());
        assert!(ecdsa_der(&[]).is_err());
    }

    #[test]
    fn curve_parameters_round_trip_and_points_are_checked() {
        for curve in [Curve::P256, Curve::P384] {
            assert_eq!(curve_of(&ec_params(curve)), Some(curve));
        }
        assert_eq!(curve_of(b"\x06\x03\x2b\x65\x70"), None); // Ed25519
        let mut point = vec![0x04];
        point.extend([7u8; 64]);
        let wrapped = OctetStringRef::new(&point).unwrap().to_der().unwrap();
        let a = ec_spki(Curve::P256, &wrapped).unwrap();
        assert_eq!(a, ec_spki(Curve::P256, &point).unwrap());
        assert!(ec_spki(Curve::P384, &wrapped).is_err());
        assert!(ec_spki(Curve::P256, &point[..40]).is_err());
    }
}
