//! Outgoing email. The provider is a runtime setting: `console` (the default, for
//! development: the message, links included, is written to the server log), `smtp` (via
//! `lettre`) or `resend` (its HTTP API).

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;

use crate::settings::Settings;

/// One email.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("email configuration: {0}")]
    Config(String),
    #[error("sending email failed: {0}")]
    Send(String),
}

/// Sends `mail` with the provider the settings name.
pub async fn send(settings: &Settings, mail: Mail) -> Result<(), MailError> {
    let provider = settings.get_str("email_provider");
    match provider.as_str() {
        "console" | "" => {
            tracing::info!(to = %mail.to, subject = %mail.subject, body = %mail.text, "email (console provider)");
            Ok(())
        }
        "smtp" => send_smtp(settings, mail).await,
        "resend" => send_resend(settings, mail).await,
        other => Err(MailError::Config(format!("unknown email_provider '{other}'"))),
    }
}

fn from_address(settings: &Settings) -> String {
    let from = settings.get_str("email_from");
    let name = settings.get_str("app_name");
    if name.is_empty() || from.contains('<') { from } else { format!("{name} <{from}>") }
}

async fn send_smtp(settings: &Settings, mail: Mail) -> Result<(), MailError> {
    let host = settings.get_str("smtp_host");
    if host.is_empty() {
        return Err(MailError::Config("smtp_host is not set".into()));
    }
    let port = u16::try_from(settings.get_i64("smtp_port")).map_err(|_| MailError::Config("smtp_port".into()))?;
    let mut builder = match settings.get_str("smtp_tls").as_str() {
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&host),
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host),
        "none" => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)),
        other => return Err(MailError::Config(format!("smtp_tls must be tls, starttls or none, not '{other}'"))),
    }
    .map_err(|e| MailError::Config(e.to_string()))?
    .port(port)
    .timeout(Some(MAIL_TIMEOUT));
    let username = settings.get_str("smtp_username");
    if !username.is_empty() {
        builder = builder.credentials(Credentials::new(username, settings.get_str("smtp_password")));
    }
    let from: Mailbox = from_address(settings).parse().map_err(|e| MailError::Config(format!("email_from: {e}")))?;
    let to: Mailbox = mail.to.parse().map_err(|e| MailError::Send(format!("recipient: {e}")))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text)
        .map_err(|e| MailError::Send(e.to_string()))?;
    // A server that accepts and never speaks must not hold the sender (or a request) for good.
    match tokio::time::timeout(MAIL_TIMEOUT, builder.build().send(message)).await {
        Ok(sent) => sent.map(|_| ()).map_err(|e| MailError::Send(e.to_string())),
        Err(_) => Err(MailError::Send(format!("the mail server did not answer within {}s", MAIL_TIMEOUT.as_secs()))),
    }
}

/// How long sending one mail may take, through SMTP or Resend.
const MAIL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

async fn send_resend(settings: &Settings, mail: Mail) -> Result<(), MailError> {
    let key = settings.get_str("resend_api_key");
    if key.is_empty() {
        return Err(MailError::Config("resend_api_key is not set".into()));
    }
    let url = format!("{}/emails", settings.get_str("resend_api_url").trim_end_matches('/'));
    let body = json!({ "from": from_address(settings), "to": [mail.to], "subject": mail.subject, "text": mail.text });
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .timeout(MAIL_TIMEOUT)
        .send()
        .await
        .map_err(|e| MailError::Send(e.to_string()))?;
    if !response.status().is_success() {
        return Err(MailError::Send(format!("Resend answered {}", response.status())));
    }
    Ok(())
}
