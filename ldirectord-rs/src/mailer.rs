//! Sending `emailalert` mails: SMTP to the `smtp=` host (Net::SMTP in the
//! Perl daemon), else the local `sendmail -t` (Mail::Send). Mails go out
//! from a short-lived thread so a slow mail server never delays checks.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::engine::Mail;
use crate::log::Logger;

const TIMEOUT: Duration = Duration::from_secs(30);

/// `user@host` of the daemon's user, the envelope sender.
fn sender(hostname: &str) -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".into());
    format!("{user}@{hostname}")
}

fn hostname() -> String {
    crate::config::Resolve::hostname(&crate::config::SystemResolver::default())
}

/// The message text (headers and body, LF line ends).
pub fn message(m: &Mail, from: &str) -> String {
    format!(
        "From: {}\nTo: {}\nSubject: {}\n\n{}",
        m.from.as_deref().unwrap_or(from),
        m.to,
        m.subject,
        m.body
    )
}

type Job = (Mail, Arc<Logger>);

/// Sends `m` in the background, one mail after the other from a single
/// thread (a burst of alerts does not make a burst of threads); failures
/// are logged like the Perl daemon's.
pub fn send_async(m: Mail, logger: Arc<Logger>) {
    static QUEUE: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    let q = QUEUE.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let _ = std::thread::Builder::new()
            .name("emailalert".into())
            .spawn(move || {
                let host = hostname();
                for (m, logger) in rx {
                    let r = match &m.smtp {
                        Some(server) => send_smtp(server, &m, &host)
                            .map_err(|e| format!("failed to send SMTP email message ({e})")),
                        None => send_sendmail(&m, &host)
                            .map_err(|e| format!("failed to send email message ({e})")),
                    };
                    if let Err(e) = r {
                        logger.log(&e);
                    }
                }
            });
        Mutex::new(tx)
    });
    let sent = q
        .lock()
        .map(|tx| tx.send((m, logger.clone())).is_ok())
        .unwrap_or(false);
    if !sent {
        logger.log("failed to send email message (no mail thread)");
    }
}

fn reply(r: &mut impl BufRead) -> Result<u16, String> {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("connection closed".into());
        }
        let code: u16 = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad reply {}", line.trim_end()))?;
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(code);
        }
    }
}

/// One SMTP transaction to `server` (`host` or `host:port`, port 25).
pub fn send_smtp(server: &str, m: &Mail, hostname: &str) -> Result<(), String> {
    let target = if server.contains(':') {
        server.to_string()
    } else {
        format!("{server}:25")
    };
    let addr = target
        .to_socket_addrs()
        .map_err(|e| format!("{target}: {e}"))?
        .next()
        .ok_or_else(|| format!("{target}: no address"))?;
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("{target}: {e}"))?;
    s.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    let from = sender(hostname);
    let mut cmd = |c: &str, ok: &[u16]| -> Result<(), String> {
        if !c.is_empty() {
            w.write_all(format!("{c}\r\n").as_bytes())
                .map_err(|e| e.to_string())?;
        }
        let code = reply(&mut r)?;
        if ok.contains(&(code / 100)) || ok.contains(&code) {
            Ok(())
        } else {
            Err(format!(
                "{} -> {code}",
                if c.is_empty() { "greeting" } else { c }
            ))
        }
    };
    cmd("", &[2])?;
    if cmd(&format!("EHLO {hostname}"), &[2]).is_err() {
        cmd(&format!("HELO {hostname}"), &[2])?;
    }
    cmd(&format!("MAIL FROM:<{from}>"), &[2])?;
    for to in m.to.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        cmd(&format!("RCPT TO:<{to}>"), &[2])?;
    }
    cmd("DATA", &[354])?;
    let mut data = String::new();
    for line in message(m, &from).lines() {
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    data.push('.');
    cmd(&data, &[2])?;
    let _ = cmd("QUIT", &[2]);
    Ok(())
}

fn send_sendmail(m: &Mail, hostname: &str) -> Result<(), String> {
    let mut child = Command::new("/usr/sbin/sendmail")
        .args(["-t", "-oi"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("/usr/sbin/sendmail: {e}"))?;
    let msg = message(m, &sender(hostname));
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(msg.as_bytes())
        .map_err(|e| e.to_string())?;
    let st = child.wait().map_err(|e| e.to_string())?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("sendmail {st}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn smtp_transaction_against_a_sink() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let sink = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let mut log = Vec::new();
            w.write_all(b"220 sink ESMTP\r\n").unwrap();
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                let l = line.trim_end().to_string();
                log.push(l.clone());
                if in_data {
                    if l == "." {
                        in_data = false;
                        w.write_all(b"250 queued\r\n").unwrap();
                    }
                    continue;
                }
                let resp: &[u8] = if l.starts_with("DATA") {
                    in_data = true;
                    b"354 go\r\n"
                } else if l.starts_with("QUIT") {
                    w.write_all(b"221 bye\r\n").unwrap();
                    break;
                } else {
                    b"250 ok\r\n"
                };
                w.write_all(resp).unwrap();
            }
            log
        });
        let m = Mail {
            to: "a@x, b@y".into(),
            subject: "Deleted real server: 10.0.0.2:80 (10.0.0.1:80)".into(),
            body: "ldirectord host: d\nLog-Message: x\n.dot line\n".into(),
            smtp: None,
            from: Some("ld@x".into()),
        };
        send_smtp(&format!("127.0.0.1:{port}"), &m, "director").unwrap();
        let log = sink.join().unwrap();
        assert_eq!(log[0], "EHLO director");
        assert!(
            log[1].starts_with("MAIL FROM:<") && log[1].ends_with("@director>"),
            "{}",
            log[1]
        );
        assert_eq!(&log[2..5], ["RCPT TO:<a@x>", "RCPT TO:<b@y>", "DATA"]);
        assert!(log.contains(&"From: ld@x".to_string()));
        assert!(
            log.contains(&"Subject: Deleted real server: 10.0.0.2:80 (10.0.0.1:80)".to_string())
        );
        assert!(
            log.contains(&"..dot line".to_string()),
            "dot stuffing: {log:?}"
        );
        assert_eq!(log.last().unwrap(), "QUIT");
    }
}
