//! TLS against a real server with certificates made by `openssl` for this test: every
//! `sslmode` encrypts (or not) and verifies (or not) as libpq does. Skipped, with a message,
//! when `openssl` is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use pgshift_db::{
    connect, ClusterOptions, ConnectFailure, DatabaseUrl, DbError, HostPort, SslMode, TempCluster,
};

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`<name>.pem`, `<name>.key`) valid for two days.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let key = format!("{name}.key");
    let pem = format!("{name}.pem");
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &key,
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &format!("/CN=pgshift test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(pem)
}

/// `server.crt`/`server.key` for `localhost` only, signed by the CA `ca`.
fn make_server_cert(dir: &Path) {
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "server.key",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn ssl_in_use(url: &DatabaseUrl) -> Result<bool, DbError> {
    let conn = connect(url).await?;
    let row = conn
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn ssl_modes_encrypt_and_verify_like_libpq() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipping: openssl is not installed");
        return;
    }
    let certs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ca = make_ca(certs.path(), "ca");
    let wrong_ca = make_ca(certs.path(), "other-ca");
    make_server_cert(certs.path());

    let options = ClusterOptions::default()
        .file_in_data_dir("server.crt", read(&certs.path().join("server.crt")))
        .file_in_data_dir("server.key", read(&certs.path().join("server.key")))
        .setting("ssl", "on")
        .setting("ssl_cert_file", "server.crt")
        .setting("ssl_key_file", "server.key");
    let cluster = tokio::task::spawn_blocking(move || TempCluster::start(options))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let by_ip = cluster.url();
    let by_name = by_ip.with_hosts(vec![HostPort {
        host: "localhost".to_owned(),
        port: cluster.port(),
    }]);

    let check = |url: DatabaseUrl| async move { ssl_in_use(&url).await };

    assert!(!check(by_ip.with_ssl_mode(SslMode::Disable))
        .await
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(check(by_ip.with_ssl_mode(SslMode::Prefer))
        .await
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(check(by_ip.with_ssl_mode(SslMode::Require))
        .await
        .unwrap_or_else(|e| panic!("{e}")));

    // verify-full: the CA signed it and "localhost" is in the certificate.
    let full = by_name
        .with_ssl_mode(SslMode::VerifyFull)
        .with_ssl_root_cert(Some(&ca));
    assert!(check(full.clone()).await.unwrap_or_else(|e| panic!("{e}")));

    // verify-full by IP: the certificate does not name 127.0.0.1.
    let err = match check(full.with_hosts(by_ip.hosts().to_vec())).await {
        Ok(_) => panic!("verify-full accepted a certificate without the host name"),
        Err(err) => err,
    };
    eprintln!("verify-full by IP: {err}");
    assert!(err.to_string().contains("not valid for name"), "{err}");
    assert!(
        matches!(
            &err,
            DbError::Connect {
                failure: ConnectFailure::Tls,
                ..
            }
        ),
        "{err}"
    );

    // verify-ca by IP: the chain is checked, the name is not.
    let ca_only = by_ip
        .with_ssl_mode(SslMode::VerifyCa)
        .with_ssl_root_cert(Some(&ca));
    assert!(check(ca_only.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}")));

    // verify-ca with a CA that did not sign the certificate.
    let err = match check(ca_only.with_ssl_root_cert(Some(&wrong_ca))).await {
        Ok(_) => panic!("verify-ca accepted a certificate from an unknown CA"),
        Err(err) => err,
    };
    eprintln!("verify-ca with the wrong CA: {err}");
    assert!(
        matches!(
            &err,
            DbError::Connect {
                failure: ConnectFailure::Tls,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("sslrootcert"), "{err}");

    // verify-full without sslrootcert uses the public roots, which did not sign our CA.
    let err = match check(by_name.with_ssl_mode(SslMode::VerifyFull)).await {
        Ok(_) => panic!("verify-full trusted a private CA without sslrootcert"),
        Err(err) => err,
    };
    assert!(
        matches!(
            &err,
            DbError::Connect {
                failure: ConnectFailure::Tls,
                ..
            }
        ),
        "{err}"
    );

    // require + sslrootcert behaves like verify-ca (libpq compatibility).
    let err = match check(
        by_ip
            .with_ssl_mode(SslMode::Require)
            .with_ssl_root_cert(Some(&wrong_ca)),
    )
    .await
    {
        Ok(_) => panic!("require with sslrootcert did not verify the chain"),
        Err(err) => err,
    };
    assert!(
        matches!(
            &err,
            DbError::Connect {
                failure: ConnectFailure::Tls,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn require_fails_against_a_server_without_tls_but_prefer_falls_back() {
    let cluster = tokio::task::spawn_blocking(|| TempCluster::start(ClusterOptions::default()))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url();
    assert!(!ssl_in_use(&url.with_ssl_mode(SslMode::Prefer))
        .await
        .unwrap_or_else(|e| panic!("{e}")));
    let err = match ssl_in_use(&url.with_ssl_mode(SslMode::Require)).await {
        Ok(_) => panic!("require connected to a server without TLS"),
        Err(err) => err,
    };
    assert!(
        matches!(
            &err,
            DbError::Connect {
                failure: ConnectFailure::Tls,
                ..
            }
        ),
        "{err}"
    );
    eprintln!("{err}");
}

/// PostgreSQL's documentation makes the server certificate self-signed (a CA:TRUE certificate
/// used as the server's) and hands it to the client as `sslrootcert`; psql accepts it with
/// `verify-ca` and `verify-full`. pgshift refused it with a Rust error text.
#[tokio::test]
async fn a_self_signed_server_certificate_given_as_sslrootcert_is_trusted_like_libpq() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipping: openssl is not installed");
        return;
    }
    let certs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The docs' recipe, with the CA:TRUE and the host name spelled out (openssl.cnf differs).
    openssl(
        certs.path(),
        &[
            "req",
            "-new",
            "-x509",
            "-days",
            "2",
            "-nodes",
            "-text",
            "-out",
            "server.crt",
            "-keyout",
            "server.key",
            "-subj",
            "/CN=localhost",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
    );
    let other_ca = make_ca(certs.path(), "other-ca");
    let options = ClusterOptions::default()
        .file_in_data_dir("server.crt", read(&certs.path().join("server.crt")))
        .file_in_data_dir("server.key", read(&certs.path().join("server.key")))
        .setting("ssl", "on")
        .setting("ssl_cert_file", "server.crt")
        .setting("ssl_key_file", "server.key");
    let cluster = tokio::task::spawn_blocking(move || TempCluster::start(options))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let by_ip = cluster.url();
    let by_name = by_ip.with_hosts(vec![HostPort {
        host: "localhost".to_owned(),
        port: cluster.port(),
    }]);
    let server_crt = certs.path().join("server.crt");

    let ca = by_ip
        .with_ssl_mode(SslMode::VerifyCa)
        .with_ssl_root_cert(Some(&server_crt));
    assert!(ssl_in_use(&ca).await.unwrap_or_else(|e| panic!("{e}")));
    let full = by_name
        .with_ssl_mode(SslMode::VerifyFull)
        .with_ssl_root_cert(Some(&server_crt));
    assert!(ssl_in_use(&full).await.unwrap_or_else(|e| panic!("{e}")));

    // The host name is still checked by verify-full.
    let err = match ssl_in_use(&full.with_hosts(by_ip.hosts().to_vec())).await {
        Ok(_) => panic!("verify-full accepted a certificate without the host name"),
        Err(err) => err,
    };
    assert!(err.to_string().contains("not valid for name"), "{err}");

    // Not in sslrootcert: refused, in words for people.
    let err = match ssl_in_use(&ca.with_ssl_root_cert(Some(&other_ca))).await {
        Ok(_) => panic!("verify-ca trusted a certificate that is not in sslrootcert"),
        Err(err) => err,
    };
    let text = err.to_string();
    assert!(text.contains("CA certificate (CA:TRUE)"), "{text}");
    for rust_words in [
        "Other(",
        "OtherError",
        "CaUsedAsEndEntity",
        "InvalidCertificate",
    ] {
        assert!(!text.contains(rust_words), "{text}");
    }
}
