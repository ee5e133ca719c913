//! Real mail receivers for the email tests: an SMTP server speaking the protocol over TCP,
//! and an HTTP server that accepts what the Resend API accepts (and checks it).

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A message as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    /// The decoded text (headers and body).
    pub text: String,
}

impl Received {
    /// The value of the first `token=` in the message.
    pub fn token(&self) -> String {
        let start = self.text.find("token=").unwrap_or_else(|| panic!("no token in mail: {}", self.text)) + 6;
        self.text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
    }
}

/// Waits (at most 20 s) for the next message.
pub async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("a mail arrives within 20 s")
        .expect("the mail server is running")
}

/// Starts an SMTP server and points `s`'s mail settings at it (links to `https://app.example`);
/// returns the stream of received mail.
pub async fn use_smtp(s: &crate::harness::TestServer) -> mpsc::UnboundedReceiver<Received> {
    let (port, rx) = smtp_server().await;
    s.set_settings(json!({
        "email_provider": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none",
        "email_from": "noreply@ferrobase.test", "app_url": "https://app.example",
    }))
    .await;
    rx
}

/// An SMTP server on an ephemeral port; returns its port and the stream of received mail.
pub async fn smtp_server() -> (u16, mpsc::UnboundedReceiver<Received>) {
    smtp_server_with(None).await
}

/// An SMTP server that takes mail only from a client signed in (`AUTH PLAIN`) as `user` with
/// `password`, as a provider's relay does.
pub async fn smtp_server_requiring(
    user: &'static str,
    password: &'static str,
) -> (u16, mpsc::UnboundedReceiver<Received>) {
    smtp_server_with(Some((user, password))).await
}

async fn smtp_server_with(login: Option<(&'static str, &'static str)>) -> (u16, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = smtp_session(socket, tx, login).await;
            });
        }
    });
    (port, rx)
}

/// Whether an `AUTH PLAIN` response (base64 of `authzid\0user\0password`) names `login`.
fn plain_login_matches(response: &str, login: Option<(&str, &str)>) -> bool {
    use base64::Engine;
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(response.trim()) else { return false };
    let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
    match (login, parts.as_slice()) {
        (Some((user, password)), [_, u, p]) => *u == user.as_bytes() && *p == password.as_bytes(),
        (None, [_, _, _]) => true,
        _ => false,
    }
}

async fn smtp_session(
    socket: tokio::net::TcpStream,
    tx: mpsc::UnboundedSender<Received>,
    login: Option<(&str, &str)>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 localhost test SMTP\r\n").await?;
    let mut to = Vec::new();
    let mut signed_in = false;
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-localhost\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("AUTH PLAIN") {
            let response = match line.get(10..).map(str::trim).filter(|r| !r.is_empty()) {
                Some(initial) => initial.to_owned(),
                None => {
                    write.write_all(b"334 \r\n").await?;
                    lines.next_line().await?.unwrap_or_default()
                }
            };
            signed_in = plain_login_matches(&response, login);
            if signed_in {
                b"235 2.7.0 Authentication successful\r\n"
            } else {
                b"535 5.7.8 Authentication credentials invalid\r\n"
            }
        } else if upper.starts_with("MAIL FROM") && login.is_some() && !signed_in {
            b"530 5.7.0 Authentication required\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("MAIL FROM") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("RSET") {
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO") {
            to.push(line[8..].trim().trim_start_matches(':').trim().trim_matches(['<', '>']).to_owned());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CR><LF>.<CR><LF>\r\n").await?;
            let mut data = Vec::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                data.push(line.strip_prefix('.').map(str::to_owned).unwrap_or(line));
            }
            let _ = tx.send(Received { to: std::mem::take(&mut to), text: decode(&data.join("\r\n")) });
            b"250 OK queued\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

/// Undoes quoted-printable or base64 transfer encoding of the body, whichever was used.
fn decode(message: &str) -> String {
    let Some((headers, body)) = message.split_once("\r\n\r\n") else { return message.to_owned() };
    let lower = headers.to_ascii_lowercase();
    let body = if lower.contains("content-transfer-encoding: quoted-printable") {
        let joined = body.replace("=\r\n", "");
        let mut out = Vec::new();
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    } else if lower.contains("content-transfer-encoding: base64") {
        use base64::Engine;
        let compact: String = body.split_whitespace().collect();
        String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(compact).unwrap_or_default())
            .into_owned()
    } else {
        body.to_owned()
    };
    format!("{headers}\r\n\r\n{body}")
}

/// A server for `POST /emails` as the Resend API takes it: `Authorization: Bearer <key>` and
/// a JSON body with `from`, `to` (an array), `subject` and `text` or `html`. Anything else is
/// refused the way Resend refuses it, so a wrong request fails the test.
pub async fn resend_server(expected_key: &'static str) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/emails",
        post(move |headers: HeaderMap, Json(body): Json<Value>| {
            let tx = tx.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                if auth != format!("Bearer {expected_key}") {
                    return (StatusCode::UNAUTHORIZED, Json(json!({"message": "API key is invalid"})));
                }
                let to: Vec<String> = body["to"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                let ok = body["from"].as_str().is_some_and(|f| f.contains('@'))
                    && !to.is_empty()
                    && body["subject"].as_str().is_some_and(|s| !s.is_empty())
                    && (body["text"].is_string() || body["html"].is_string());
                if !ok {
                    return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"message": "invalid email"})));
                }
                let text = format!("{}\n{}", body["subject"].as_str().unwrap(), body["text"].as_str().unwrap_or(""));
                let _ = tx.send(Received { to, text });
                (StatusCode::OK, Json(json!({"id": uuid::Uuid::new_v4().to_string()})))
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, rx)
}
