//! TLS to PostgreSQL, against a real server that refuses plain connections (as managed
//! services do) with a certificate from a throwaway CA (`scripts/lib/pg.sh`'s
//! `pg_tls_start`): each `sslmode` does what libpq's does, the certificate is checked when
//! asked, and the pool and the ADK service work over it.
mod common;

use session_pool::adk::{AdkConfig, Event, GetSessionConfig, SessionService};
use session_pool::{Database, ErrorKind};

use common::{TlsServer, unique};

/// Whether the session's connection is encrypted, as the server sees it.
async fn encrypted(db: &Database) -> bool {
    let mut s = db.session();
    s.create().await.unwrap();
    let ssl: bool = common::scalar(
        &mut s,
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )
    .await;
    ssl
}

/// Why a connection to `url` fails, at open or at the first session.
async fn connect_error(url: &str) -> session_pool::Error {
    match Database::open(url).await {
        Err(e) => e,
        Ok(db) => db.session().create().await.unwrap_err(),
    }
}

fn url(tls: &TlsServer, query: &str) -> String {
    format!("{}?{query}", tls.url)
}

#[tokio::test]
async fn require_and_the_default_prefer_connect_encrypted() {
    let Some(tls) = common::pg_tls() else {
        return;
    };
    for u in [url(&tls, "sslmode=require"), tls.url.clone()] {
        let db = Database::open(&u)
            .await
            .unwrap_or_else(|e| panic!("{u}: {e}"));
        assert!(encrypted(&db).await, "{u}");
    }
}

#[tokio::test]
async fn verify_full_accepts_the_right_ca_and_refuses_another() {
    let Some(tls) = common::pg_tls() else {
        return;
    };
    let good = url(&tls, &format!("sslmode=verify-full&sslrootcert={}", tls.ca));
    let db = Database::open(&good).await.unwrap();
    assert!(encrypted(&db).await);

    // Signed by another CA: refused before any query, as a connect error.
    let bad = url(
        &tls,
        &format!("sslmode=verify-full&sslrootcert={}", tls.other_ca),
    );
    let err = connect_error(&bad).await;
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    let text = format!("{err} {err:?}").to_lowercase();
    assert!(
        text.contains("certificate") || text.contains("unknownissuer"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_plain_connection_is_refused_with_the_servers_reason() {
    let Some(tls) = common::pg_tls() else {
        return;
    };
    let plain = url(&tls, "sslmode=disable");
    let err = connect_error(&plain).await;
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    assert!(err.to_string().contains("no encryption"), "{err}");
}

/// The second of two hosts, over TLS with the certificate checked: the multi-host URL
/// keeps the TLS parameters for every host.
#[tokio::test]
async fn every_host_of_a_multi_host_url_gets_the_tls_parameters() {
    let Some(tls) = common::pg_tls() else {
        return;
    };
    let port = tls
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    // Port 1 on loopback: nothing listens there.
    let u = format!(
        "postgres://postgres@127.0.0.1:1,127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={}",
        tls.ca
    );
    let db = Database::open(&u)
        .await
        .unwrap_or_else(|e| panic!("{u}: {e}"));
    assert!(encrypted(&db).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_and_the_adk_service_work_over_tls() {
    let Some(tls) = common::pg_tls() else {
        return;
    };
    let db = Database::open(&url(
        &tls,
        &format!("sslmode=verify-full&sslrootcert={}", tls.ca),
    ))
    .await
    .unwrap();
    // A pool of 4 over TLS under the store (common::adk_store builds it).
    let service = SessionService::new(common::adk_store(&db, AdkConfig::default()).await);
    let user = unique("tls_user");
    let mut session = service
        .create_session("tls_app", &user, None, None)
        .await
        .unwrap();
    let event = Event::new("user").with_state_delta("topic", serde_json::json!("tls"));
    service.append_event(&mut session, event).await.unwrap();
    let back = service
        .get_session("tls_app", &user, &session.id, &GetSessionConfig::default())
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(back.state["topic"], "tls");
    assert_eq!(back.events.len(), 1);
    service
        .delete_session("tls_app", &user, &session.id)
        .await
        .unwrap();
}

/// A password role over TLS (SCRAM, as managed servers ask), the password holding every
/// character a URL gives a meaning to: it connects percent-encoded, and a wrong one is a
/// Connect error (`28P01`) that does not repeat it.
#[tokio::test]
async fn a_scram_password_with_url_characters_connects_and_a_wrong_one_is_not_echoed() {
    let Some(tls) = common::pg_tls() else {
        return;
    };
    const PASSWORD: &str = "p@ss:w/rd+&=?#%x";
    let encoded: String = PASSWORD
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let address = tls.url.trim_start_matches("postgres://postgres@");
    let good = format!("postgres://scram:{encoded}@{address}?sslmode=require");
    let db = Database::open(&good)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut s = db.session();
    s.create().await.unwrap();
    let user: String = common::scalar(&mut s, "SELECT current_user::text", &[]).await;
    assert_eq!(user, "scram");

    let bad = format!("postgres://scram:wrong{encoded}@{address}?sslmode=require");
    let err = connect_error(&bad).await;
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("28P01"), "{text}");
    assert!(
        !text.contains(&encoded) && !text.contains(PASSWORD),
        "{text}"
    );
}

/// A file beside the test CA's certificate (`pg_tls_start` writes the client certificates
/// there).
fn tls_file(tls: &TlsServer, name: &str) -> String {
    std::path::Path::new(&tls.ca)
        .with_file_name(name)
        .display()
        .to_string()
}

/// `certuser`'s URL with `verify-full` against the test CA, and `sslcert`/`sslkey` when
/// given (paths).
fn cert_url(tls: &TlsServer, cert_and_key: Option<(&str, &str)>) -> String {
    let mut u = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        tls.url.replacen("postgres@", "certuser@", 1),
        tls.ca
    );
    if let Some((cert, key)) = cert_and_key {
        u += &format!("&sslcert={cert}&sslkey={key}");
    }
    u
}

/// `certuser` logs in by client certificate only (`cert` in pg_hba), as on servers that
/// require mutual TLS: libpq's `sslcert`/`sslkey` work, with the key as PKCS#8 or as the
/// PKCS#1 RSA key older tooling writes, in a one-host and a two-host URL.
#[tokio::test]
async fn a_client_certificate_logs_in() {
    let Some(tls) = common::pg_tls() else {
        return;
    };
    let cert_url =
        |cert: &str, key: &str| cert_url(&tls, Some((&tls_file(&tls, cert), &tls_file(&tls, key))));
    let (host_port, _) = tls.url["postgres://postgres@".len()..]
        .split_once('/')
        .unwrap();
    let two_hosts = cert_url("client.crt", "client.key").replacen(
        host_port,
        &format!("127.0.0.1:1,{host_port}"),
        1,
    );
    for u in [
        cert_url("client.crt", "client.key"),
        cert_url("client.crt", "client-rsa.key"),
        two_hosts,
    ] {
        let db = Database::open(&u)
            .await
            .unwrap_or_else(|e| panic!("{u}: {e}"));
        let mut s = db.session();
        s.create().await.unwrap_or_else(|e| panic!("{u}: {e}"));
        let who: String = common::scalar(
            &mut s,
            "SELECT current_user || ' ' || client_dn FROM pg_stat_ssl \
             WHERE pid = pg_backend_pid()",
            &[],
        )
        .await;
        assert_eq!(who, "certuser /CN=certuser", "{u}");
    }
}

/// Without a certificate, or with one another CA signed, `certuser` is refused as a
/// connect error with the server's reason.
#[tokio::test]
async fn a_missing_or_foreign_client_certificate_is_refused() {
    let Some(tls) = common::pg_tls() else {
        return;
    };
    let foreign = (
        tls_file(&tls, "intruder.crt"),
        tls_file(&tls, "intruder.key"),
    );
    for u in [
        cert_url(&tls, None),
        cert_url(&tls, Some((&foreign.0, &foreign.1))),
    ] {
        let err = connect_error(&u).await;
        assert_eq!(err.kind(), ErrorKind::Connect, "{u}: {err:?}");
        let text = format!("{err} {err:?}").to_lowercase();
        assert!(text.contains("certificate"), "{u}: {err:?}");
    }
}

/// A client key file that is not there is a connect error naming it, not a panic.
#[tokio::test]
async fn a_missing_client_key_file_is_named() {
    let Some(tls) = common::pg_tls() else {
        return;
    };
    let cert = tls_file(&tls, "client.crt");
    let u = cert_url(&tls, Some((&cert, "/nonexistent/client.key")));
    let err = connect_error(&u).await;
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    assert!(
        format!("{err} {err:?}").contains("/nonexistent/client.key"),
        "{err:?}"
    );
}

/// A version 1 client certificate (what PostgreSQL's manual's openssl recipe makes, and
/// libpq takes) is refused by rustls: the connect error says so and how to reissue it.
#[tokio::test]
async fn a_version_1_client_certificate_is_explained() {
    let Some(tls) = common::pg_tls() else {
        return;
    };
    let (cert, key) = (
        tls_file(&tls, "client-v1.crt"),
        tls_file(&tls, "client.key"),
    );
    let u = cert_url(&tls, Some((&cert, &key)));
    let err = connect_error(&u).await;
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    assert!(err.to_string().contains("version 1"), "{err}");
}
