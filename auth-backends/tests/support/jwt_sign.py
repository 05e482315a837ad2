"""Keys and tokens for the jwt backend's tests, made by an independent library (PyJWT with
`cryptography`), so the Rust verifier is checked against what another implementation signs.

    jwt_sign.py keys   -> {"rsa"|"rsa2"|"ec"|"ed": {"private": PEM, "public": PEM, "jwk": JWK}}
    jwt_sign.py sign   <- [{"alg", "key" (private PEM), "headers", "claims"}] on stdin
                       -> [token, ...]

A sign request with `"alg": "none"` makes an unsigned token; one with `"forge_hmac": PEM` makes
the classic key-confusion token: HS256 whose HMAC secret is the issuer's *public* key PEM (PyJWT
refuses to do that, so it is assembled here with the standard library).
"""
import base64
import hashlib
import hmac
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


def pem(private):
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(private):
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def keys():
    made = {
        "rsa": (rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
        "rsa2": (rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
        "ec": (ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
        "ed": (ed25519.Ed25519PrivateKey.generate(), OKPAlgorithm),
    }
    out = {}
    for name, (private, algorithm) in made.items():
        jwk = algorithm.to_jwk(private.public_key(), as_dict=True)
        jwk["kid"] = name
        jwk["use"] = "sig"
        out[name] = {"private": pem(private), "public": public_pem(private), "jwk": jwk}
    return out


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_hmac(secret, headers, claims):
    header = dict(headers, alg="HS256", typ="JWT")
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(mac)


def sign(request):
    headers = request.get("headers", {})
    claims = request["claims"]
    if "forge_hmac" in request:
        return forge_hmac(request["forge_hmac"], headers, claims)
    if request["alg"] == "none":
        return jwt.encode(claims, None, algorithm="none", headers=headers)
    return jwt.encode(claims, request["key"], algorithm=request["alg"], headers=headers)


if __name__ == "__main__":
    if sys.argv[1] == "keys":
        print(json.dumps(keys()))
    else:
        print(json.dumps([sign(r) for r in json.load(sys.stdin)]))
