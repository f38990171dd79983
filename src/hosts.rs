//! libpq's multi-host URLs (`postgres://h1:p1,h2:p2/db`) and `target_session_attrs`: which
//! host a new PostgreSQL connection goes to.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};

/// libpq's `target_session_attrs`: what a host must be for a session to stay on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SessionAttrs {
    /// The first host that accepts the connection.
    #[default]
    Any,
    /// Read-write by default (`transaction_read_only` off): the primary.
    ReadWrite,
    /// Read-only by default: a standby, or a primary set read-only.
    ReadOnly,
    /// Not in recovery.
    Primary,
    /// In recovery (a hot standby).
    Standby,
    /// A standby if any host is one, else any host.
    PreferStandby,
}

impl SessionAttrs {
    fn parse(s: &str) -> Result<SessionAttrs, String> {
        Ok(match s {
            "any" => SessionAttrs::Any,
            "read-write" => SessionAttrs::ReadWrite,
            "read-only" => SessionAttrs::ReadOnly,
            "primary" => SessionAttrs::Primary,
            "standby" => SessionAttrs::Standby,
            "prefer-standby" => SessionAttrs::PreferStandby,
            other => {
                return Err(format!(
                    "target_session_attrs={other}: expected any, read-write, read-only, \
                     primary, standby or prefer-standby"
                ));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            SessionAttrs::Any => "any",
            SessionAttrs::ReadWrite => "read-write",
            SessionAttrs::ReadOnly => "read-only",
            SessionAttrs::Primary => "primary",
            SessionAttrs::Standby => "standby",
            SessionAttrs::PreferStandby => "prefer-standby",
        }
    }

    /// Whether a server in this state will do.
    fn accepts(self, in_recovery: bool, read_only: bool) -> bool {
        match self {
            SessionAttrs::Any | SessionAttrs::PreferStandby => true,
            SessionAttrs::ReadWrite => !read_only,
            SessionAttrs::ReadOnly => read_only,
            SessionAttrs::Primary => !in_recovery,
            SessionAttrs::Standby => in_recovery,
        }
    }
}

/// The hosts of a PostgreSQL URL, in order, and what a session needs of its host.
#[derive(Debug, Clone)]
pub(crate) struct Hosts {
    pub(crate) options: Vec<PgConnectOptions>,
    pub(crate) attrs: SessionAttrs,
    /// The URL's TLS files (`sslrootcert`, `sslcert`, `sslkey`), as `(parameter, path)`:
    /// the driver reports one it cannot read without its name.
    pub(crate) tls_files: Vec<(String, String)>,
}

impl Hosts {
    /// `host:port` of each host, for names and messages.
    pub(crate) fn addresses(&self) -> String {
        self.options
            .iter()
            .map(|o| match (o.get_socket(), o.get_host()) {
                // A Unix socket's directory (the port names the socket file in it).
                (Some(dir), _) => format!("{}:{}", dir.display(), o.get_port()),
                // An IPv6 address in brackets, as in the URL, so its port stays apart.
                (None, h) if h.contains(':') => format!("[{h}]:{}", o.get_port()),
                (None, h) => format!("{h}:{}", o.get_port()),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Splits `url` (without `target_session_attrs`, already taken out as `attrs`) into one
/// URL per host, each parsed by sqlx. The reason is for [`Error::InvalidUrl`](crate::Error).
pub(crate) fn parse(url: &str, attrs: Option<&str>) -> Result<Hosts, String> {
    let attrs = attrs
        .map(SessionAttrs::parse)
        .transpose()?
        .unwrap_or_default();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "the URL has no `://`".to_owned())?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostlist) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let mut options = Vec::new();
    for host in hostlist.split(',') {
        if host.is_empty() && hostlist.contains(',') {
            return Err(format!("an empty host in the host list `{hostlist}`"));
        }
        let one = if host.is_empty() && !userinfo.is_empty() {
            credentials_in_query(scheme, &userinfo, tail)
        } else {
            format!("{scheme}://{userinfo}{host}{tail}")
        };
        let mut o = one.parse::<PgConnectOptions>().map_err(|e| e.to_string())?;
        // sqlx keeps an IPv6 literal's brackets (`[::1]`), and then cannot resolve it.
        if let Some(ip) = o
            .get_host()
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
        {
            let ip = ip.to_owned();
            o = o.host(&ip);
        }
        options.push(o);
    }
    Ok(Hosts {
        options,
        attrs,
        tls_files: tls_files(tail),
    })
}

/// The TLS file parameters of a URL's query, under any of the names sqlx takes.
fn tls_files(tail: &str) -> Vec<(String, String)> {
    let Some((_, query)) = tail.split_once('?') else {
        return Vec::new();
    };
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| {
            matches!(
                k.as_ref(),
                "sslrootcert"
                    | "ssl-root-cert"
                    | "ssl-ca"
                    | "sslcert"
                    | "ssl-cert"
                    | "sslkey"
                    | "ssl-key"
            )
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The driver's connect error, with what it leaves out: which TLS file could not be read,
/// and why rustls refused a certificate that libpq takes.
fn explain(e: sqlx::Error, tls_files: &[(String, String)]) -> sqlx::Error {
    use std::io::ErrorKind;
    match e {
        sqlx::Error::Io(io)
            if matches!(io.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied) =>
        {
            // Only on this error path: a blocking open of a few small local files.
            let unreadable = tls_files
                .iter()
                .find_map(|(k, path)| std::fs::File::open(path).err().map(|err| (k, path, err)));
            match unreadable {
                Some((k, path, err)) => sqlx::Error::Io(std::io::Error::new(
                    err.kind(),
                    format!("cannot read the TLS file {k}={path}: {err}"),
                )),
                None => sqlx::Error::Io(io),
            }
        }
        sqlx::Error::Io(io) if io.kind() == ErrorKind::InvalidData && refused_certificate(&io) => {
            let cert = tls_files
                .iter()
                .find(|(k, _)| k == "sslcert" || k == "ssl-cert")
                .map(|(k, path)| format!("the client certificate {k}={path}"))
                .unwrap_or_else(|| "a client certificate (none was given: sslcert=)".into());
            sqlx::Error::Io(std::io::Error::new(
                io.kind(),
                format!(
                    "{io}: the server refused {cert} (not signed by a CA it trusts, or not valid)"
                ),
            ))
        }
        sqlx::Error::Tls(err) if err.to_string().contains("UnsupportedCertVersion") => {
            sqlx::Error::Tls(
                format!(
                    "{err}: a certificate (the client's sslcert, or the server's) is X.509 \
                     version 1, which rustls refuses though libpq takes it; reissue it as \
                     version 3 (openssl x509 -req … -extfile with `basicConstraints=CA:FALSE`)"
                )
                .into(),
            )
        }
        e => e,
    }
}

/// Whether a TLS error is the server's alert refusing the client's certificate.
fn refused_certificate(io: &std::io::Error) -> bool {
    let shown = format!("{io:?}");
    ["UnknownCA", "BadCertificate", "CertificateRequired"]
        .iter()
        .any(|alert| shown.contains(&format!("AlertReceived({alert})")))
}

/// libpq's `postgres://user:pass@/db?host=/socket/dir` (Cloud SQL's socket form, among
/// others): the URL parser sqlx uses refuses credentials without a host, so they move to
/// the query as `user=` and `password=`. Their percent-escapes carry over; the characters
/// a query gives another meaning (`+`, `&`, `=`) are escaped.
fn credentials_in_query(scheme: &str, userinfo: &str, tail: &str) -> String {
    let escape = |s: &str| {
        s.replace('+', "%2B")
            .replace('&', "%26")
            .replace('=', "%3D")
    };
    let userinfo = userinfo.trim_end_matches('@');
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    let mut url = format!("{scheme}://{tail}");
    url.push(if tail.contains('?') { '&' } else { '?' });
    url.push_str(&format!("user={}", escape(user)));
    if let Some(p) = password {
        url.push_str(&format!("&password={}", escape(p)));
    }
    url
}

/// Connects to the first host that satisfies the attributes, trying each in order (for
/// `prefer-standby`, the standbys first), each within `per_host`. Returns the connection
/// and the host's index.
pub(crate) async fn connect(
    hosts: &Hosts,
    per_host: Duration,
) -> Result<(PgConnection, usize), sqlx::Error> {
    let passes = match hosts.attrs {
        SessionAttrs::PreferStandby => vec![SessionAttrs::Standby, SessionAttrs::Any],
        a => vec![a],
    };
    let mut last: Option<sqlx::Error> = None;
    // Whether some host answered but did not fit the attributes.
    let mut rejected = false;
    for pass in passes {
        for (i, o) in hosts.options.iter().enumerate() {
            let mut conn = match tokio::time::timeout(per_host, o.connect()).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    last = Some(explain(e, &hosts.tls_files));
                    continue;
                }
                Err(_) => {
                    last = Some(sqlx::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "{}:{} did not answer in {per_host:?}",
                            o.get_host(),
                            o.get_port()
                        ),
                    )));
                    continue;
                }
            };
            if pass == SessionAttrs::Any {
                return Ok((conn, i));
            }
            match state(&mut conn).await {
                Ok((in_recovery, read_only)) if pass.accepts(in_recovery, read_only) => {
                    return Ok((conn, i));
                }
                Ok(_) => {
                    rejected = true;
                    let _ = conn.close().await;
                }
                Err(e) => last = Some(e),
            }
        }
    }
    // Every host failed to connect: the driver's own error, so it is classified as such
    // (too many connections, authentication…).
    if let (false, Some(e)) = (rejected, last.take()) {
        return Err(e);
    }
    let reason = format!(
        "no host of {} is {} (target_session_attrs){}",
        hosts.addresses(),
        hosts.attrs.name(),
        last.map(|e| format!("; last error: {e}"))
            .unwrap_or_default()
    );
    Err(sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        reason,
    )))
}

/// Whether the server is in recovery, and read-only by default. One simple-protocol
/// statement, so it works through a transaction pooler too.
async fn state(conn: &mut PgConnection) -> Result<(bool, bool), sqlx::Error> {
    let row =
        sqlx::raw_sql("SELECT pg_is_in_recovery()::text, current_setting('transaction_read_only')")
            .fetch_one(&mut *conn)
            .await?;
    let in_recovery: String = row.try_get(0)?;
    let read_only: String = row.try_get(1)?;
    Ok((in_recovery == "true", read_only == "on"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_per_host() {
        let h = parse(
            "postgres://u:p%2Fw@h1:5432,h2:6543,h3/db?sslmode=disable",
            None,
        )
        .unwrap();
        assert_eq!(h.attrs, SessionAttrs::Any);
        // A host without a port takes sqlx's default (5432, or PGPORT).
        let default = "postgres://h3"
            .parse::<PgConnectOptions>()
            .unwrap()
            .get_port();
        assert_eq!(h.addresses(), format!("h1:5432,h2:6543,h3:{default}"));
        assert_eq!(h.options[1].get_database(), Some("db"));
        assert_eq!(h.options[2].get_username(), "u");
        let h = parse("postgres://h1,h2", Some("read-write")).unwrap();
        assert_eq!(h.attrs, SessionAttrs::ReadWrite);
        assert_eq!(h.options.len(), 2);
    }

    #[test]
    fn credentials_without_a_host_and_bracketed_ipv6_hosts() {
        // libpq's socket form with credentials: user and password move to the query.
        let h = parse("postgres://ann:p%2Bw+x&y@/db?host=/run/pg&port=6000", None).unwrap();
        let o = &h.options[0];
        assert_eq!(o.get_username(), "ann");
        assert_eq!(o.get_database(), Some("db"));
        assert_eq!(o.get_port(), 6000);
        assert_eq!(o.get_socket().map(|p| p.to_str().unwrap()), Some("/run/pg"));
        assert_eq!(h.addresses(), "/run/pg:6000");
        assert_eq!(
            credentials_in_query("postgres", "ann:p%2Bw+x&y@", "/db?host=/run/pg"),
            "postgres:///db?host=/run/pg&user=ann&password=p%2Bw%2Bx%26y"
        );
        assert_eq!(
            credentials_in_query("postgres", "ann@", "/db"),
            "postgres:///db?user=ann"
        );
        // IPv6 literals lose their brackets, alone or in a host list.
        let h = parse("postgres://u@[::1]:5433,[fe80::1]/db", None).unwrap();
        assert_eq!(h.options[0].get_host(), "::1");
        assert_eq!(h.options[0].get_port(), 5433);
        assert_eq!(h.options[1].get_host(), "fe80::1");
        assert_eq!(h.addresses().split(',').next(), Some("[::1]:5433"));
    }

    #[test]
    fn tls_file_parameters_are_read_under_every_name() {
        let h = parse(
            "postgres://u@h1,h2/db?sslmode=verify-full&sslcert=%2Ftmp%2Fa.crt&ssl-key=/k&x=1",
            None,
        )
        .unwrap();
        assert_eq!(
            h.tls_files,
            vec![
                ("sslcert".to_owned(), "/tmp/a.crt".to_owned()),
                ("ssl-key".to_owned(), "/k".to_owned())
            ]
        );
        assert!(parse("postgres://h/db", None).unwrap().tls_files.is_empty());
    }

    #[test]
    fn unknown_attributes_and_empty_hosts_are_refused() {
        assert!(parse("postgres://h1/db", Some("master")).is_err());
        assert!(parse("postgres://h1/db", Some("")).is_err());
        assert!(parse("postgres://h1,,h2/db", None).is_err());
        assert!(parse("postgres://h1:notaport/db", None).is_err());
    }
}
