#!/usr/bin/env python3
"""Writes expected.txt: attribute values of the fixture certificates as computed by pyca/cryptography (an
implementation independent of the module's x509-cert/der parsing). Format: `file.key=hex` per line."""
import hashlib, os
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

def int_der(n):
    body = n.to_bytes((n.bit_length() + 8) // 8, "big")  # room for the sign bit
    while len(body) > 1 and body[0] == 0 and body[1] < 0x80:
        body = body[1:]
    return bytes([0x02, len(body)]) + body

out = []
for name in sorted(f for f in os.listdir(".") if f.endswith(".der")):
    der = open(name, "rb").read()
    c = x509.load_der_x509_certificate(der)
    pub = c.public_key()
    vals = {
        "subject": c.subject.public_bytes(),
        "issuer": c.issuer.public_bytes(),
        "serial": int_der(c.serial_number),
        "check_value": hashlib.sha1(der).digest()[:3],
        "start": c.not_valid_before_utc.strftime("%Y%m%d").encode(),
        "end": c.not_valid_after_utc.strftime("%Y%m%d").encode(),
        "spki": pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
    }
    if isinstance(pub, rsa.RSAPublicKey):
        n = pub.public_numbers()
        vals["modulus"] = n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")
        vals["exponent"] = n.e.to_bytes((n.e.bit_length() + 7) // 8, "big")
        vals["bits"] = str(pub.key_size).encode()
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        vals["point"] = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        vals["curve"] = pub.curve.name.encode()
    # pyca re-encodes the key (rsassaPss → rsaEncryption, compressed → uncompressed): keep only the faithful ones.
    if vals["spki"] not in der:
        del vals["spki"]
    try:
        vals["ski"] = c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        pass
    for k, v in vals.items():
        out.append(f"{name}.{k}={v.hex()}")
open("expected.txt", "w").write("\n".join(out) + "\n")
