#!/usr/bin/env bash
# Regenerates the fixtures and the signed seeds of the fuzz targets with fresh keys.
# Needs openssl, xmlsec1 (Debian package `xmlsec1`) and python3 with `cryptography`.
# Only public keys are kept (fixtures/); the private keys live in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p fixtures seeds/saml_response seeds/jwt_verify seeds/sealed_open

# --- SAML: an IdP key and certificate, its metadata, and a Response it signed. -------------
# Times are around the target's fixed clock, 1_800_000_000 (2027-01-15T08:00:00Z).
openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=fuzz idp" -days 36500 \
  -keyout "$tmp/idp.key" -out "$tmp/idp.crt" 2>/dev/null
cert_b64=$(openssl x509 -in "$tmp/idp.crt" -outform DER | base64 -w0)
cat >fixtures/idp-metadata.xml <<EOF
<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.test/entity"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>$cert_b64</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>
EOF

sig_template() { # $1: the ID the signature references
  echo "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/><ds:Reference URI=\"#$1\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/><ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue></ds:Signature>"
}
assertion() { # $1: signature template or empty
  echo "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_a1\" Version=\"2.0\" IssueInstant=\"2027-01-15T08:00:00Z\"><saml:Issuer>https://idp.test/entity</saml:Issuer>$1<saml:Subject><saml:NameID Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\">00u1abcd</saml:NameID><saml:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\"><saml:SubjectConfirmationData InResponseTo=\"_req1\" NotOnOrAfter=\"2027-01-15T08:05:00Z\" Recipient=\"https://portico.test/saml/acme/acs\"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore=\"2027-01-15T07:59:00Z\" NotOnOrAfter=\"2027-01-15T08:05:00Z\"><saml:AudienceRestriction><saml:Audience>https://portico.test/saml/acme/metadata</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant=\"2027-01-15T08:00:00Z\" SessionIndex=\"_s42\"/><saml:AttributeStatement><saml:Attribute Name=\"mail\"><saml:AttributeValue>ada@example.com</saml:AttributeValue></saml:Attribute><saml:Attribute Name=\"displayName\"><saml:AttributeValue>Ada Lovelace</saml:AttributeValue></saml:Attribute><saml:Attribute Name=\"groups\"><saml:AttributeValue>engineering</saml:AttributeValue><saml:AttributeValue>admins</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>"
}
response() { # $1: signature template or empty, $2: body
  echo "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_r1\" Version=\"2.0\" IssueInstant=\"2027-01-15T08:00:00Z\" Destination=\"https://portico.test/saml/acme/acs\" InResponseTo=\"_req1\"><saml:Issuer>https://idp.test/entity</saml:Issuer>$1<samlp:Status><samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/></samlp:Status>$2</samlp:Response>"
}
sign() { # $1: input file, $2: the element whose ID attribute is referenced
  xmlsec1 --sign --privkey-pem "$tmp/idp.key" --id-attr:ID "$2" --output "$1.signed" "$1" 2>/dev/null
  # Drop the XML declaration xmlsec1 adds (IdPs usually post without one).
  sed -e '1s/^<?xml[^>]*?>//' "$1.signed" | tr -d '\n'
}
response "$(sig_template _r1)" "$(assertion "")" >"$tmp/response.xml"
sign "$tmp/response.xml" "urn:oasis:names:tc:SAML:2.0:protocol:Response" >seeds/saml_response/signed-response.xml
response "" "$(assertion "$(sig_template _a1)")" >"$tmp/assertion.xml"
sign "$tmp/assertion.xml" "urn:oasis:names:tc:SAML:2.0:assertion:Assertion" >seeds/saml_response/signed-assertion.xml
# An IdP's error reply (unsigned), and the posted form value (base64) of the signed Response.
response "" "" | sed 's/status:Success/status:Requester/' >seeds/saml_response/error-status.xml
base64 -w 76 seeds/saml_response/signed-response.xml >seeds/saml_response/signed-response.b64

# --- JWT: one key per algorithm; a JWKS with kid and alg; tokens Portico would issue. -----
python3 - "$tmp" <<'EOF'
import base64, hashlib, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def num(n):
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))
def thumb(members):
    return b64(hashlib.sha256(json.dumps(members, sort_keys=True, separators=(",", ":")).encode()).digest())

rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pub = rsa_key.public_key().public_numbers()
rsa_m = {"e": num(pub.e), "kty": "RSA", "n": num(pub.n)}
ec_key = ec.generate_private_key(ec.SECP256R1())
p = ec_key.public_key().public_numbers()
ec_m = {"crv": "P-256", "kty": "EC", "x": b64(p.x.to_bytes(32, "big")), "y": b64(p.y.to_bytes(32, "big"))}
ed_key = ed25519.Ed25519PrivateKey.generate()
ed_raw = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
ed_m = {"crv": "Ed25519", "kty": "OKP", "x": b64(ed_raw)}

def sign_rs(msg): return rsa_key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
def sign_es(msg):
    r, s = decode_dss_signature(ec_key.sign(msg, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
def sign_ed(msg): return ed_key.sign(msg)

keys = []
signers = {}
for alg, members, signer in (("RS256", rsa_m, sign_rs), ("ES256", ec_m, sign_es), ("EdDSA", ed_m, sign_ed)):
    kid = thumb(members)
    keys.append(dict(members, kid=kid, alg=alg, use="sig"))
    signers[alg] = (kid, signer)
json.dump({"keys": keys}, open("fixtures/jwks.json", "w"), indent=1)

def token(alg, typ, claims):
    kid, signer = signers[alg]
    header = json.dumps({"alg": alg, "kid": kid, "typ": typ}, separators=(",", ":")).encode()
    signing_input = b64(header) + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
    return signing_input + "." + b64(signer(signing_input.encode()))

iss = "https://portico.test"
id_claims = {"iss": iss, "sub": "u1", "aud": "client-1", "exp": 4000000000, "iat": 1800000000,
             "auth_time": 1800000000, "nonce": "n-0S6_WzA2Mj", "azp": "client-1", "email": "ada@example.com"}
at_claims = {"iss": iss, "sub": "u1", "aud": "client-1", "client_id": "client-1", "scope": "openid profile",
             "jti": "j1", "iat": 1800000000, "exp": 4000000000}
for alg in signers:
    open(f"seeds/jwt_verify/id-{alg}", "w").write(token(alg, "JWT", id_claims))
    open(f"seeds/jwt_verify/at-{alg}", "w").write(token(alg, "at+jwt", at_claims))
open("seeds/jwt_verify/expired-ES256", "w").write(token("ES256", "JWT", dict(id_claims, exp=1000)))

# --- Sealed envelope: the fuzz target's fixed master key is 32 bytes of 0x07. ---------------
key = bytes([7] * 32)
key_id = hashlib.sha256(b"portico master key id\0" + key).digest()[:4]
nonce = bytes(range(12))
aad = b"portico-seal-v1\0providers\0client_secret\0google"
env = bytes([1]) + key_id + nonce + AESGCM(key).encrypt(nonce, b"upstream secret", aad)
# The target's first byte picks the row the envelope is opened for; 0 is the one sealed above.
open("seeds/sealed_open/providers-google", "wb").write(bytes([0]) + env)
EOF
echo "fixtures and seeds written"
