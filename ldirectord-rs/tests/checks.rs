//! Every checktype and every built service against real servers in a
//! namespace: for each virtual service a real that answers right
//! (10.99.0.2) must be in the table, and one that does not (10.99.0.3: no
//! server, a wrong password, a wrong answer, a hung server, no TLS) must not.
//! HTTPS is served by `openssl s_server` (an independent TLS stack).

mod common;

use common::*;
use lab::servers::{self, DnsRecords, Page, Proto, UdpProto};
use lab::Netns;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

fn sa(s: &str) -> std::net::SocketAddr {
    s.parse().unwrap()
}

#[test]
fn every_checktype_and_service() {
    lab::require_root("the ldirectord check tests");
    lab::ensure_packages(&["openssl"]);
    let lb = Netns::new("ldclb");
    let rs = Netns::new("ldcrs");
    lab::veth(&lb, "lbv", "10.99.0.1/24", &rs, "rsv", "10.99.0.2/24");
    rs.ip(&["addr", "add", "10.99.0.3/24", "dev", "rsv"]);
    lb.ip(&["addr", "add", "fd00::1/64", "dev", "lbv", "nodad"]);
    rs.ip(&["addr", "add", "fd00::2/64", "dev", "rsv", "nodad"]);
    rs.ip(&["addr", "add", "fd00::3/64", "dev", "rsv", "nodad"]);
    // unprivileged ICMP datagram sockets for the ping check
    lb.sh("sysctl -qw net.ipv4.ping_group_range='0 2147483647'");
    let e = Env::new();
    let n = Some(rs.name());
    let mut keep = Vec::new();
    let tcp = |addr: &str, p: Proto| servers::tcp(n, &[sa(addr)], p, 1).unwrap();
    let pages = || {
        Proto::Http(vec![
            Page::ok("/test.html", "Test Page"),
            Page {
                path: "/broken.html".into(),
                status: 500,
                body: "Test Page".into(),
            },
        ])
    };
    keep.push(tcp("10.99.0.2:25", Proto::Smtp));
    keep.push(tcp("10.99.0.3:25", Proto::Silent));
    let acct = |p: &str| Proto::Pop3 {
        user: "u".into(),
        pass: p.into(),
    };
    keep.push(tcp("10.99.0.2:110", acct("p")));
    keep.push(tcp("10.99.0.3:110", acct("other")));
    let imap = |p: &str| Proto::Imap {
        user: "u".into(),
        pass: p.into(),
    };
    keep.push(tcp("10.99.0.2:143", imap("p")));
    keep.push(tcp("10.99.0.3:143", imap("other")));
    keep.push(tcp("10.99.0.2:119", Proto::Nntp));
    keep.push(tcp(
        "10.99.0.2:21",
        Proto::Ftp(vec![("welcome.msg".into(), "welcome to the lab\n".into())]),
    ));
    keep.push(tcp("10.99.0.3:21", Proto::Ftp(vec![])));
    let recs = |ip: &str| DnsRecords {
        a: vec![("www.lab".into(), ip.parse().unwrap())],
    };
    keep.push(servers::udp(n, sa("10.99.0.2:53"), UdpProto::Dns(recs("192.168.6.2"))).unwrap());
    keep.push(servers::udp(n, sa("10.99.0.3:53"), UdpProto::Dns(recs("192.168.6.3"))).unwrap());
    keep.push(tcp("10.99.0.2:5353", Proto::DnsTcp(recs("192.168.6.2"))));
    keep.push(servers::udp(n, sa("10.99.0.2:5060"), UdpProto::Sip).unwrap());
    let simple = |r: &str| Proto::SimpleTcp { reply: r.into() };
    keep.push(tcp("10.99.0.2:7000", simple("hello\nREADY now\n")));
    keep.push(tcp("10.99.0.3:7000", simple("BUSY\n")));
    keep.push(tcp("10.99.0.2:80", pages()));
    keep.push(tcp("10.99.0.3:8000", pages()));
    keep.push(tcp("10.99.0.3:443", pages()));
    keep.push(tcp("[fd00::2]:80", pages()));
    keep.push(tcp("10.99.0.2:9000", Proto::Nntp));
    // https: openssl s_server serving test.html from its directory
    let (ca, cert, key) = certificates(e.dir.path(), "www.lab");
    std::fs::write(e.path("test.html"), "Test Page over TLS\n").unwrap();
    for port in ["443", "444", "446"] {
        let child = rs
            .cmd("openssl")
            .args(["s_server", "-quiet", "-WWW", "-accept"])
            .arg(format!("10.99.0.2:{port}"))
            .args([
                "-cert",
                cert.to_str().unwrap(),
                "-key",
                key.to_str().unwrap(),
            ])
            .current_dir(e.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        drop(child); // killed with the namespace
    }
    let script = e.write(
        "check.sh",
        "#!/bin/sh\n# VIP VPORT RIP RPORT\n[ \"$3\" = 10.99.0.2 ] && exit 0\nexit 1\n",
    );
    lab::run_ok(std::process::Command::new("chmod").args(["755", script.to_str().unwrap()]));
    let v = |port: u16, body: &str| {
        format!(
            "virtual=10.99.0.100:{port}\n\treal=10.99.0.2:{port} gate\n\treal=10.99.0.3:{port} gate\n{body}"
        )
    };
    let cfg = [
        format!(
            "logfile=\"{}\"\ncheckinterval=1\nchecktimeout=2\nnegotiatetimeout=2\n",
            e.path("ld.log").display()
        ),
        v(25, "\tservice=smtp\n"),
        v(110, "\tservice=pop\n\tlogin=\"u\"\n\tpasswd=\"p\"\n"),
        v(143, "\tservice=imap\n\tlogin=\"u\"\n\tpasswd=\"p\"\n"),
        v(119, "\tservice=nntp\n"),
        v(21, "\tservice=ftp\n\trequest=\"welcome.msg\"\n\treceive=\"welcome\"\n"),
        v(53, "\tservice=dns\n\trequest=\"www.lab\"\n\treceive=\"^192\\.168\\.6\\.2$\"\n"),
        v(5353, "\tservice=dns\n\tprotocol=tcp\n\trequest=\"www.lab\"\n\treceive=\"192.168.6.2\"\n"),
        v(5060, "\tservice=sip\n\tprotocol=udp\n"),
        v(7000, "\tservice=simpletcp\n\trequest=\"STATUS\\n\"\n\treceive=\"^READY\"\n"),
        v(443, "\tservice=https\n\trequest=\"test.html\"\n\treceive=\"Test Page\"\n"),
        "virtual=10.99.0.100:444\n\treal=10.99.0.2:444 gate\n\tservice=https\n\tsslverify=yes\n\tvirtualhost=www.lab\n\trequest=\"test.html\"\n".to_string()
            + &format!("\tsslcafile=\"{}\"\n", ca.display()),
        "virtual=10.99.0.100:446\n\treal=10.99.0.2:446 gate\n\tservice=https\n\tsslverify=yes\n\tvirtualhost=www.lab\n\trequest=\"test.html\"\n".to_string(),
        v(8000, "\tservice=http\n\trequest=\"broken.html\"\n\treceive=\"Test Page\"\n"),
        "virtual=10.99.0.100:80\n\treal=10.99.0.2:80 gate\n\treal=10.99.0.3:80 gate\n\tchecktype=2\n\trequest=\"test.html\"\n".to_string(),
        v(9000, "\tchecktype=connect\n"),
        "virtual=10.99.0.100:9100\n\treal=10.99.0.2:9100 gate\n\treal=10.99.0.99:9100 gate\n\tchecktype=ping\n".to_string(),
        v(9200, &format!("\tchecktype=external\n\tcheckcommand=\"{}\"\n", script.display())),
        v(9300, "\tchecktype=on\n"),
        v(9400, "\tchecktype=off\n"),
        "virtual=7\n\treal=10.99.0.2 gate\n\treal=10.99.0.3 gate\n\tservice=http\n\tcheckport=80\n\trequest=\"test.html\"\n".to_string(),
        "virtual6=[fd00::100]:80\n\treal6=[fd00::2]:80 masq\n\treal6=[fd00::3]:80 masq\n\trequest=\"test.html\"\n\treceive=\"Test\"\n".to_string(),
    ]
    .concat();
    let cfgp = e.write("checks.cf", &cfg);
    let c = cfgp.to_str().unwrap();
    let o = e.run(Some(&lb), &[c, "start"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let good = |port: u16| map(&[(&format!("10.99.0.2:{port}"), 1)]);
    let mut want: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for port in [
        25, 110, 143, 119, 21, 53, 5353, 5060, 7000, 443, 444, 80, 9000, 9100, 9200,
    ] {
        let proto = if port == 53 || port == 5060 {
            "UDP"
        } else {
            "TCP"
        };
        want.insert(format!("{proto} 10.99.0.100:{port}"), good(port));
    }
    want.insert("TCP 10.99.0.100:446".into(), BTreeMap::new()); // unknown CA
    want.insert("TCP 10.99.0.100:8000".into(), BTreeMap::new()); // 500 status
    want.insert(
        "TCP 10.99.0.100:9300".into(),
        map(&[("10.99.0.2:9300", 1), ("10.99.0.3:9300", 1)]),
    );
    want.insert("TCP 10.99.0.100:9400".into(), BTreeMap::new());
    want.insert("FWM 7".into(), map(&[("10.99.0.2:0", 1)]));
    want.insert("TCP [fd00::100]:80".into(), map(&[("[fd00::2]:80", 1)]));
    let mut ok = within(Duration::from_secs(10), || e.dests() == want);
    // and it stays so past every timeout (a hung server must not come up)
    if ok.is_some() {
        ok = within(Duration::from_secs(3), || e.dests() != want)
            .is_none()
            .then_some(Duration::ZERO);
    }
    let got = e.dests();
    let _ = e.run(Some(&lb), &[c, "stop"]);
    if ok.is_none() {
        let mut diff = String::new();
        for (k, w) in &want {
            let g = got.get(k).cloned().unwrap_or_default();
            if &g != w {
                diff.push_str(&format!("{k}: want {w:?} got {g:?}\n"));
            }
        }
        panic!("table differs:\n{diff}\nlog:\n{}", e.read("ld.log"));
    }
}
