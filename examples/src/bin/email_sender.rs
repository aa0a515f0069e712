//! Seed 000's background e-mail sender: the website's contact form and comment notifications
//! hand their e-mails to a queue and return at once; a queued service sends them over SMTP, one
//! by one, and retries a failed send after a backoff (about 1 s, doubling) instead of
//! busy-waiting or losing it.
//!
//! ```sh
//! cargo run -p hosted-examples --bin email_sender
//! ```
//!
//! Environment: `SMTP_HOST` (default `127.0.0.1`) and `SMTP_PORT` (default 2525) name a plain
//! SMTP server (no TLS); the example's test starts one of its own, late, so the first sends fail
//! and are retried.

use std::sync::Arc;

use anyhow::Context as _;
use hosted::{CancellationToken, Queue};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

/// The two kinds of e-mail the site sends (the seed's `ContactEmailModel` and
/// `CommentEmailModel`).
#[derive(Clone, Debug)]
enum EmailMessage {
    /// A visitor wrote through the contact form.
    Contact {
        sender_email: String,
        sender_name: String,
        comment: String,
    },
    /// A visitor commented on a post.
    Comment {
        sender_email: String,
        sender_name: String,
        post: String,
        comment: String,
    },
}

impl EmailMessage {
    fn sender_email(&self) -> &str {
        match self {
            Self::Contact { sender_email, .. } | Self::Comment { sender_email, .. } => sender_email,
        }
    }
}

/// The SMTP client, built once and shared (the seed's `EmailService`).
struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    site: Mailbox,
}

#[hosted::singleton]
fn mailer() -> anyhow::Result<Mailer> {
    let host = std::env::var("SMTP_HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port = match std::env::var("SMTP_PORT") {
        Ok(port) => port.parse().context("SMTP_PORT is not a port number")?,
        Err(_) => 2525,
    };
    Ok(Mailer {
        transport: AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .build(),
        site: "Site <site@example.com>".parse()?,
    })
}

impl Mailer {
    async fn send(&self, to: &str, subject: String, body: String) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.site.clone())
            .to(to.parse().with_context(|| format!("bad address `{to}`"))?)
            .subject(subject)
            .body(body)?;
        self.transport.send(message).await?;
        Ok(())
    }
}

/// Sends each e-mail; a failure is retried up to 10 times, about 1 s later and then doubling.
/// The seed's `DeliverAsync` loop, without its busy-wait and with its retries bounded.
#[hosted::queued(
    name = "EmailSender",
    capacity = 100,
    retries = 10,
    retry_backoff = "1s",
    retry_max_backoff = "8s",
    timeout = "30s"
)]
async fn deliver(message: EmailMessage, mailer: Arc<Mailer>) -> anyhow::Result<()> {
    match &message {
        EmailMessage::Contact {
            sender_name,
            comment,
            ..
        } => {
            let body = format!("{sender_name} wrote:\n\n{comment}");
            mailer
                .send(
                    "contact@example.com",
                    format!("Contact from {sender_name}"),
                    body,
                )
                .await
        }
        EmailMessage::Comment {
            sender_name,
            post,
            comment,
            ..
        } => {
            let body = format!("{sender_name} commented on {post}:\n\n{comment}");
            mailer
                .send(
                    "comments@example.com",
                    format!("New comment on {post}"),
                    body,
                )
                .await
        }
    }
    .with_context(|| format!("couldn't send an e-mail from {}", message.sender_email()))?;
    tracing::info!("Email from {} sent", message.sender_email());
    Ok(())
}

/// The website: a contact form and a comment arrive; each hands its e-mail to the queue and
/// goes on at once (the seed's `SendEmailAsync`).
#[hosted::hosted_service(after = deliver)]
async fn website(outbox: Queue<EmailMessage>, stop: CancellationToken) -> anyhow::Result<()> {
    outbox
        .send(EmailMessage::Contact {
            sender_email: "ada@example.com".to_owned(),
            sender_name: "Ada".to_owned(),
            comment: "Your queue drains on shutdown!".to_owned(),
        })
        .await?;
    tracing::info!("contact form submitted");
    outbox
        .send(EmailMessage::Comment {
            sender_email: "alan@example.com".to_owned(),
            sender_name: "Alan".to_owned(),
            post: "background-email".to_owned(),
            comment: "Nice post.".to_owned(),
        })
        .await?;
    tracing::info!("comment posted");
    stop.cancelled().await;
    Ok(())
}

fn main() {
    hosted::run!();
}
