//! Runs seed 000's e-mail sender against a local SMTP server that starts late: the first sends
//! fail (connection refused) and are retried after a backoff; once the server is up, both
//! e-mails are delivered, and the test reads what the server received.
//!
//! The server is a minimal SMTP sink written here (greeting, EHLO, MAIL, RCPT, DATA, QUIT): the
//! embeddable server crates either cannot be stopped and restarted or pull TLS stacks in, and
//! the test needs only to record messages on a port it controls.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hosted_tests::process::{HANG, Process};

/// One message as the server received it.
#[derive(Clone, Debug)]
struct Received {
    from: String,
    to: Vec<String>,
    data: String,
}

/// Accepts SMTP sessions on `listener` until the process ends, recording every message.
fn serve(listener: TcpListener, received: Arc<Mutex<Vec<Received>>>) {
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let received = Arc::clone(&received);
            thread::spawn(move || {
                let _ = session(stream, &received);
            });
        }
    });
}

fn session(stream: TcpStream, received: &Mutex<Vec<Received>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(HANG))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    writer.write_all(b"220 localhost test SMTP\r\n")?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => writer.write_all(b"250 localhost\r\n")?,
            "MAIL" => {
                command["MAIL FROM:".len()..].clone_into(&mut from);
                writer.write_all(b"250 OK\r\n")?;
            }
            "RCPT" => {
                to.push(command["RCPT TO:".len()..].to_owned());
                writer.write_all(b"250 OK\r\n")?;
            }
            "DATA" => {
                writer.write_all(b"354 end with <CRLF>.<CRLF>\r\n")?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 || line == ".\r\n" {
                        break;
                    }
                    data.push_str(&line);
                }
                received.lock().unwrap().push(Received {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                });
                writer.write_all(b"250 OK: queued\r\n")?;
            }
            "QUIT" => {
                writer.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => writer.write_all(b"250 OK\r\n")?,
        }
    }
}

#[test]
fn e_mails_are_retried_until_the_server_is_up_then_delivered() {
    // A free port, released for the example to fail on until the server takes it back.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Process::command(env!("CARGO_BIN_EXE_email_sender"));
    command.env("SMTP_PORT", port.to_string());
    let mut sender = Process::start(command);
    sender.wait_for_line("comment posted", HANG);
    sender.wait_for_line("attempt 1 of 11 failed; retrying after a backoff", HANG);

    let received = Arc::new(Mutex::new(Vec::new()));
    serve(
        TcpListener::bind(("127.0.0.1", port)).unwrap(),
        Arc::clone(&received),
    );
    let deadline = Instant::now() + HANG;
    while received.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "{}", sender.transcript());
        thread::sleep(Duration::from_millis(20));
    }
    sender.wait_for_line("Email from alan@example.com sent", HANG);
    sender.signal("TERM");
    assert_eq!(sender.wait_exit(HANG), 0, "{}", sender.transcript());

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "{received:?}");
    let contact = &received[0];
    assert_eq!(contact.from, "<site@example.com>");
    assert_eq!(contact.to, ["<contact@example.com>"]);
    assert!(
        contact.data.contains("Subject: Contact from Ada"),
        "{contact:?}"
    );
    assert!(
        contact.data.contains("Your queue drains on shutdown!"),
        "{contact:?}"
    );
    let comment = &received[1];
    assert_eq!(comment.to, ["<comments@example.com>"]);
    assert!(
        comment
            .data
            .contains("Subject: New comment on background-email"),
        "{comment:?}"
    );
    sender.assert_log_order(&[
        &[
            "item{service=EmailSender seq=1 attempt=1",
            "couldn't send an e-mail from ada@example.com",
        ],
        &[
            "item{service=EmailSender seq=1 attempt=2",
            "Email from ada@example.com sent",
        ],
        &["Email from alan@example.com sent"],
        &[
            "queue stopped",
            "processed=2",
            "dead_lettered=0",
            "left_undone=0",
        ],
    ]);
    sender.assert_no_log_line(&["dead-lettered"]);
}
