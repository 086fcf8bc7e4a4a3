//! The IPVS guest harness itself: exit status, argument quoting, files,
//! environment, the real IPVS table and ipvsadm inside, HTTP real servers on
//! loopback aliases behind a NAT virtual service, and the timeout.
//! (Two boots, about 2 s each.)

use lab::ipvs_vm::{Guest, GuestError};
use std::time::Duration;

fn script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn guest_runs_payload_with_args_files_env_and_real_ipvs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.txt");
    std::fs::write(&data, "host data\n").unwrap();
    let s = script(
        dir.path(),
        "payload.sh",
        r#"for a in "$@"; do echo "[$a]"; done
echo "env=$GREETING guest=$IPVS_GUEST"
cat /etc/lab/data.txt
ipvsadm -A -t 10.99.0.10:80 -s wrr && ipvsadm -a -t 10.99.0.10:80 -r 10.99.1.1:8080 -m -w 3 && ipvsadm -Ln
grep -q '^ip_vs ' /proc/modules && echo "ip_vs loaded"
# HTTP real servers on loopback aliases behind a NAT virtual service
ip addr add 10.99.0.20/32 dev lo
for n in 1 2; do
    ip addr add 10.99.2.$n/32 dev lo
    mkdir -p /tmp/www$n && echo "Test Page $n" >/tmp/www$n/test.html
    httpd -p 10.99.2.$n:80 -h /tmp/www$n
done
ipvsadm -A -t 10.99.0.20:80 -s rr
ipvsadm -a -t 10.99.0.20:80 -r 10.99.2.1:80 -m
ipvsadm -a -t 10.99.0.20:80 -r 10.99.2.2:80 -m
for i in 1 2; do printf 'GET /test.html HTTP/1.0\r\n\r\n' | nc -w 2 10.99.0.20 80 | tail -n 1; done
exit 7
"#,
    );
    let out = Guest::new(&s)
        .args(["a b", "it's", ""])
        .env("GREETING", "hello world")
        .file(&data, "/etc/lab/data.txt")
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("boot {:?}, total {:?}\n{}", out.boot, out.total, out.output);
    assert_eq!(out.status, 7, "{}", out.output);
    assert!(
        out.output
            .starts_with("[a b]\n[it's]\n[]\nenv=hello world guest=1\nhost data\n"),
        "{}",
        out.output
    );
    assert!(
        out.output
            .contains("TCP  10.99.0.10:80 wrr\n  -> 10.99.1.1:8080               Masq    3"),
        "{}",
        out.output
    );
    assert!(out.output.contains("ip_vs loaded"), "{}", out.output);
    // round robin over two local real servers through the VIP: one page each
    let mut last: Vec<&str> = out.output.lines().rev().take(2).collect();
    last.sort();
    assert_eq!(last, ["Test Page 1", "Test Page 2"], "{}", out.output);
}

#[test]
fn guest_that_hangs_is_killed_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "hang.sh", "echo hanging\nsleep 600\n");
    lab::ipvs_vm::image().unwrap_or_else(|e| panic!("{e}")); // a cold build is not part of the limit
    let t0 = std::time::Instant::now();
    let e = Guest::new(&s)
        .timeout(Duration::from_secs(4))
        .run()
        .unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t0.elapsed()
    );
    match e {
        GuestError::Timeout { output, .. } => assert!(output.contains("hanging"), "{output}"),
        other => panic!("expected a timeout, got {other}"),
    }
}
