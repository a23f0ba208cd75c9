use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portico::crypto::MasterKey;
use portico::keys::jwt::{self, Expect, JwtType};
use portico::keys::{JwtError, SigningAlg};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDb, portico_command, spawn_app_with};
use crate::on_both_backends;

// A rotation reaching other instances on the same database:
// `scale_out::a_key_rotation_at_one_instance_reaches_every_instance`.

on_both_backends!(
    jwks_publishes_one_key_per_algorithm,
    keys_rotate_keeps_the_old_kid_and_signs_with_the_new,
);

async fn jwks(app: &TestApp) -> Vec<Value> {
    let res = app.get("/jwks.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    doc["keys"].as_array().unwrap().clone()
}

fn kids(keys: &[Value]) -> BTreeSet<String> {
    keys.iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn claims(app: &TestApp) -> Value {
    let now = portico::store::now();
    json!({ "iss": app.address, "sub": "user-1", "aud": "client-1", "iat": now, "exp": now + 300 })
}

fn expect(app: &TestApp) -> Expect<'_> {
    Expect {
        issuer: &app.address,
        audience: Some("client-1"),
        typ: JwtType::Jwt,
        require_unexpired: true,
    }
}

async fn jwks_publishes_one_key_per_algorithm(db: &TestDb) {
    let app = spawn_app_with(db, MasterKey::generate(), |_| {}).await;
    let keys = jwks(&app).await;
    let algs: BTreeSet<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert_eq!(algs, BTreeSet::from(["RS256", "ES256", "EdDSA"]));
    for key in &keys {
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().unwrap().len() >= 43);
        assert!(key.get("d").is_none(), "no private parameters: {key}");
    }
    // Every algorithm signs a token that verifies against its published key.
    for alg in SigningAlg::ALL {
        let signer = app.state.keys.signer(alg).unwrap();
        let token = jwt::encode(&signer, JwtType::Jwt, &claims(&app));
        let verified: Value = app.state.keys.verify(&token, &expect(&app)).await.unwrap();
        assert_eq!(verified["sub"], "user-1");
    }
    app.stop();
}

async fn keys_rotate_keeps_the_old_kid_and_signs_with_the_new(db: &TestDb) {
    let key = MasterKey::generate();
    let app = spawn_app_with(db, key.clone(), |_| {}).await;
    let before = kids(&jwks(&app).await);
    let old_signer = app.state.keys.signer(SigningAlg::ES256).unwrap();
    let old_token = jwt::encode(&old_signer, JwtType::Jwt, &claims(&app));

    let out = portico_command(db, &key)
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.lines().count(), 3, "{printed}");

    app.state.keys.reload().await.unwrap();
    let after = kids(&jwks(&app).await);
    assert!(before.is_subset(&after), "old kids stay published");
    assert_eq!(after.len(), 6);
    let new_signer = app.state.keys.signer(SigningAlg::ES256).unwrap();
    assert_ne!(new_signer.kid(), old_signer.kid());
    assert!(printed.contains(new_signer.kid()));
    // Tokens signed before the rotation still verify.
    let verified: Value = app
        .state
        .keys
        .verify(&old_token, &expect(&app))
        .await
        .unwrap();
    assert_eq!(verified["sub"], "user-1");
    app.stop();
}

#[tokio::test]
async fn verification_refuses_forged_and_mistyped_tokens() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app_with(&db, MasterKey::generate(), |_| {}).await;
    let rsa = app.state.keys.signer(SigningAlg::RS256).unwrap();
    let good = jwt::encode(&rsa, JwtType::Jwt, &claims(&app));
    let (header_and_payload, _) = good.rsplit_once('.').unwrap();
    let payload = header_and_payload.split('.').nth(1).unwrap();

    // HS256 keyed with the RSA public key as published in the JWKS: the classic confusion.
    let jwks_text = app.get("/jwks.json").await.text().await.unwrap();
    let header = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"alg":"HS256","kid":"{}","typ":"JWT"}}"#,
        rsa.kid()
    ));
    let signing_input = format!("{header}.{payload}");
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, jwks_text.as_bytes()),
        signing_input.as_bytes(),
    );
    let forged = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
    let err = app
        .state
        .keys
        .verify::<Value>(&forged, &expect(&app))
        .await
        .unwrap_err();
    assert_eq!(err, JwtError::AlgorithmNotAllowed);

    // alg: none with an empty signature.
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, rsa.kid()));
    let none = format!("{header}.{payload}.");
    assert!(
        app.state
            .keys
            .verify::<Value>(&none, &expect(&app))
            .await
            .is_err()
    );

    // A header claiming ES256 for the RSA key's kid.
    let header = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"alg":"ES256","kid":"{}","typ":"JWT"}}"#,
        rsa.kid()
    ));
    let (_, sig) = good.rsplit_once('.').unwrap();
    let swapped = format!("{header}.{payload}.{sig}");
    assert_eq!(
        app.state
            .keys
            .verify::<Value>(&swapped, &expect(&app))
            .await
            .unwrap_err(),
        JwtError::AlgorithmNotAllowed
    );

    // A flipped signature byte, an unknown kid, a wrong audience, an expired token.
    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert!(
        app.state
            .keys
            .verify::<Value>(&tampered, &expect(&app))
            .await
            .is_err()
    );

    let other = portico::keys::GeneratedKey::generate(SigningAlg::ES256).unwrap();
    let stranger = jwt::encode(&other.signing_key().unwrap(), JwtType::Jwt, &claims(&app));
    assert_eq!(
        app.state
            .keys
            .verify::<Value>(&stranger, &expect(&app))
            .await
            .unwrap_err(),
        JwtError::UnknownKey
    );

    let wrong_aud = Expect {
        audience: Some("someone-else"),
        ..expect(&app)
    };
    assert!(
        app.state
            .keys
            .verify::<Value>(&good, &wrong_aud)
            .await
            .is_err()
    );

    let now = portico::store::now();
    let expired = jwt::encode(
        &rsa,
        JwtType::Jwt,
        &json!({ "iss": app.address, "sub": "u", "aud": "client-1", "iat": now - 600, "exp": now - 300 }),
    );
    assert_eq!(
        app.state
            .keys
            .verify::<Value>(&expired, &expect(&app))
            .await
            .unwrap_err(),
        JwtError::Expired
    );

    // An access token is not accepted where an ID token is expected, nor the reverse.
    let at = jwt::encode(&rsa, JwtType::AccessToken, &claims(&app));
    assert_eq!(
        app.state
            .keys
            .verify::<Value>(&at, &expect(&app))
            .await
            .unwrap_err(),
        JwtError::WrongType
    );
    let at_expect = Expect {
        typ: JwtType::AccessToken,
        ..expect(&app)
    };
    assert_eq!(
        app.state
            .keys
            .verify::<Value>(&good, &at_expect)
            .await
            .unwrap_err(),
        JwtError::WrongType
    );
    let _: Value = app.state.keys.verify(&at, &at_expect).await.unwrap();
    app.stop();
    db.cleanup().await;
}
