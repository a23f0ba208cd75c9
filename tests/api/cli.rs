use portico::crypto::MasterKey;

use crate::helpers::{Backend, TestDb, portico_command};

#[tokio::test]
async fn config_check_prints_effective_settings_with_secrets_redacted() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let key = MasterKey::generate();
    let out = portico_command(&db, &key)
        .args(["config", "check"])
        .env("PORTICO_BOOTSTRAP_ADMIN_EMAIL", "admin@example.com")
        .env("PORTICO_BOOTSTRAP_ADMIN_PASSWORD", "hunter2hunter2")
        .env("PORTICO_ISSUER", "https://id.example.com/")
        .env("PORTICO_METRICS_BEARER_TOKEN", "scrape-token-scrape-token")
        .env("PORTICO_SERVER_TRUSTED_PROXIES", "10.0.0.0/8,192.0.2.7")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let parsed: toml::Value = toml::from_str(&text).expect("the output is TOML");
    assert_eq!(
        parsed["server"]["issuer"].as_str(),
        Some("https://id.example.com")
    );
    assert_eq!(
        parsed["bootstrap"]["admin_email"].as_str(),
        Some("admin@example.com")
    );
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("scrape-token"), "{text}");
    assert_eq!(
        parsed["metrics"]["bearer_token"].as_str(),
        Some("<redacted>")
    );
    assert_eq!(parsed["admin"]["sign_in_per_sec"].as_integer(), Some(5));
    let proxies = parsed["server"]["trusted_proxies"].as_array().unwrap();
    assert_eq!(proxies[1].as_str(), Some("192.0.2.7/32"));
    assert!(!text.contains(&key.to_base64()), "{text}");
    assert_eq!(parsed["secrets"]["master_key"].as_str(), Some("<redacted>"));
    db.cleanup().await;
}

#[tokio::test]
async fn a_bad_setting_stops_the_start_with_one_line_naming_the_key() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let key = MasterKey::generate();
    for (var, value, expected) in [
        ("PORTICO_LISTEN", "nowhere", "listen"),
        ("PORTICO_ISSUER", "ftp://x", "issuer"),
        ("PORTICO_DATABASE_URL", "mysql://x", "database"),
        ("PORTICO_LOG_FORMAT", "yaml", "format"),
        ("PORTICO_SERVER_NO_SUCH_KEY", "1", "no_such_key"),
        (
            "PORTICO_SERVER_TRUSTED_PROXIES",
            "10.0.0.1, proxy.example",
            "trusted_proxies",
        ),
        ("PORTICO_METRICS_LISTEN", "nowhere", "metrics"),
        (
            "PORTICO_METRICS_BEARER_TOKEN",
            "short",
            "metrics.bearer_token",
        ),
        (
            "PORTICO_ADMIN_SIGN_IN_PER_SEC",
            "0",
            "admin.sign_in_per_sec",
        ),
    ] {
        let out = portico_command(&db, &key).env(var, value).output().unwrap();
        assert!(!out.status.success(), "{var}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{var}: {stderr}");
        assert!(stderr.starts_with("portico: "), "{stderr}");
        assert!(stderr.to_lowercase().contains(expected), "{var}: {stderr}");
    }
    let out = portico_command(&db, &key)
        .args(["--config", "/nonexistent/portico.toml", "config", "check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("/nonexistent/portico.toml")
    );
    db.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_database_fails_with_one_line() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let out = portico_command(&db, &MasterKey::generate())
        .arg("migrate")
        .env("PORTICO_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    db.cleanup().await;
}

#[tokio::test]
async fn config_file_values_apply_and_environment_overrides_them() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let file = db.dir.join("portico.toml");
    std::fs::write(
        &file,
        "[server]\nissuer = \"https://from-file.example.com\"\nlisten = \"127.0.0.1:9999\"\n",
    )
    .unwrap();
    let out = portico_command(&db, &MasterKey::generate())
        .args(["config", "check"])
        .env("PORTICO_CONFIG", &file)
        .env("PORTICO_LISTEN", "127.0.0.1:7777")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: toml::Value = toml::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(
        parsed["server"]["issuer"].as_str(),
        Some("https://from-file.example.com")
    );
    assert_eq!(parsed["server"]["listen"].as_str(), Some("127.0.0.1:7777"));
    db.cleanup().await;
}
