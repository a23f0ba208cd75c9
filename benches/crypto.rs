//! Function-level costs on the hot paths: JWT signing and verification per algorithm, sealing,
//! token minting and digests, redirect-URI matching, and argon2 with the production parameters.
//!
//! `cargo bench --bench crypto` (figures in docs/BENCHMARKS.md).

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{DecodingKey, Validation};
use portico::clients::RedirectUri;
use portico::crypto::{MasterKey, PasswordHasher, SealTarget, Sealer, TokenDigest, random_token};
use portico::keys::jwt::{self, JwtType};
use portico::keys::{GeneratedKey, SigningAlg};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

fn claims() -> Value {
    json!({
        "iss": "https://id.example.com", "sub": "8f14e45f-ceea-467f-a0e6-5d1c3c8b2a11",
        "aud": "app", "client_id": "app", "scope": "openid email profile",
        "jti": "4c6f6e67207374726167676c6572", "iat": 1_700_000_000, "exp": 4_000_000_000u64,
    })
}

fn jwt_sign_and_verify(c: &mut Criterion) {
    // Verification as Portico runs it: ring behind jsonwebtoken (see keys::ring_verify).
    portico::keys::ring_verify::install();
    for alg in SigningAlg::ALL {
        let generated = GeneratedKey::generate(alg).unwrap();
        let signer = generated.signing_key().unwrap();
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(generated.public_jwk.clone()).unwrap();
        let decoding = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = Validation::new(alg.jsonwebtoken());
        validation.set_audience(&["app"]);
        let claims = claims();
        c.bench_function(&format!("jwt sign {alg}"), |b| {
            b.iter(|| jwt::encode(&signer, JwtType::AccessToken, &claims))
        });
        let token = jwt::encode(&signer, JwtType::AccessToken, &claims);
        c.bench_function(&format!("jwt verify {alg}"), |b| {
            b.iter(|| jsonwebtoken::decode::<Value>(&token, &decoding, &validation).unwrap())
        });
    }
}

/// The same 2048-bit RSA key signing RS256 through each constant-time library at hand: the
/// figures behind `keys::signing_key` signing RSA with OpenSSL rather than ring.
fn rsa_by_library(c: &mut Criterion) {
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::sign::Signer;
    use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

    let generated = GeneratedKey::generate(SigningAlg::RS256).unwrap();
    let der = generated.pkcs8.expose_secret();
    let message = [b'a'; 300];
    let ring_key = RsaKeyPair::from_pkcs8(der).unwrap();
    let rng = ring::rand::SystemRandom::new();
    c.bench_function("rsa2048 sign ring", |b| {
        b.iter(|| {
            let mut sig = vec![0u8; ring_key.public().modulus_len()];
            ring_key
                .sign(&RSA_PKCS1_SHA256, &rng, &message, &mut sig)
                .unwrap();
            sig
        })
    });
    let openssl_key = PKey::private_key_from_pkcs8(der).unwrap();
    c.bench_function("rsa2048 sign openssl", |b| {
        b.iter(|| {
            let mut signer = Signer::new(MessageDigest::sha256(), &openssl_key).unwrap();
            signer.sign_oneshot_to_vec(&message).unwrap()
        })
    });
}

fn sealing(c: &mut Criterion) {
    let sealer = Sealer::new(&MasterKey::generate());
    let target = SealTarget::new(
        "identities",
        "refresh_token",
        "3d0b7f3c-2c43-4d59-9f8e-1b1d4d2a9e77",
    );
    let secret = vec![7u8; 256];
    c.bench_function("seal 256 B", |b| b.iter(|| sealer.seal(&secret, target)));
    let envelope = sealer.seal(&secret, target);
    c.bench_function("open 256 B", |b| {
        b.iter(|| sealer.open(&envelope, target).unwrap())
    });
}

fn tokens(c: &mut Criterion) {
    c.bench_function("mint a 256-bit token", |b| b.iter(|| random_token("rt_")));
    let token = random_token("rt_");
    c.bench_function("digest a token (SHA-256)", |b| {
        b.iter(|| TokenDigest::of(token.expose_secret()))
    });
}

/// What `/authorize` does with the `redirect_uri` it is given: parse it, and compare it with
/// each registered one (exactly; loopback registrations ignore the port, RFC 8252).
fn redirect_uris(c: &mut Criterion) {
    let registered: Vec<RedirectUri> = [
        "https://app.example.com/auth/callback",
        "https://staging.app.example.com/auth/callback",
        "http://127.0.0.1/callback",
    ]
    .iter()
    .map(|r| RedirectUri::parse(r).unwrap())
    .collect();
    let find = |candidate: &str| registered.iter().find(|r| r.matches(candidate)).cloned();
    c.bench_function("redirect_uri parse", |b| {
        b.iter(|| RedirectUri::parse("https://app.example.com/auth/callback?x=1").unwrap())
    });
    c.bench_function("redirect_uri match, exact (first of 3)", |b| {
        b.iter(|| find("https://app.example.com/auth/callback").unwrap())
    });
    c.bench_function("redirect_uri match, loopback any port (third of 3)", |b| {
        b.iter(|| find("http://127.0.0.1:53127/callback").unwrap())
    });
    c.bench_function("redirect_uri refuse, no match", |b| {
        b.iter(|| assert!(find("https://app.example.com.evil.example/auth/callback").is_none()))
    });
}

fn argon2(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hasher = PasswordHasher::new(1);
    let phc = runtime
        .block_on(hasher.hash(SecretString::from("correct horse battery staple")))
        .unwrap();
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(10);
    group.bench_function("verify (m=19 MiB, t=2, p=1)", |b| {
        b.iter(|| {
            runtime
                .block_on(hasher.verify(
                    SecretString::from("correct horse battery staple"),
                    phc.clone(),
                ))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    jwt_sign_and_verify,
    rsa_by_library,
    sealing,
    tokens,
    redirect_uris,
    argon2
);
criterion_main!(benches);
