//! Parser tests: real configuration texts in, effective values or the exact
//! error (line and message) out.

use super::*;

/// Answers from a fixed table instead of DNS / /etc/services.
pub(crate) struct FakeResolver;

impl Resolve for FakeResolver {
    fn host(&self, name: &str, v6: bool) -> Option<IpAddr> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return (ip.is_ipv6() == v6).then_some(ip);
        }
        match (name, v6) {
            ("web1", false) => Some("10.0.0.11".parse().unwrap()),
            ("web2", false) => Some("10.0.0.12".parse().unwrap()),
            ("localhost", false) => Some("127.0.0.1".parse().unwrap()),
            ("localhost", true) => Some("::1".parse().unwrap()),
            _ => None,
        }
    }
    fn service(&self, name: &str, _proto: Option<&str>) -> Option<u16> {
        match name {
            "http" | "www" => Some(80),
            "https" => Some(443),
            "domain" => Some(53),
            "ftp" => Some(21),
            _ => None,
        }
    }
    fn hostname(&self) -> String {
        "director".into()
    }
}

fn ok(text: &str) -> Config {
    match parse(text, "t.cf", &FakeResolver) {
        Ok(c) => c,
        Err(e) => panic!("unexpected error: {e}\n---\n{text}"),
    }
}

fn err(text: &str) -> (usize, String) {
    match parse(text, "t.cf", &FakeResolver) {
        Ok(c) => panic!("expected an error, parsed: {c:#?}"),
        Err(e) => (e.line, e.msg),
    }
}

const SEED: &str = "# Global Directives
checktimeout=3
checkinterval=1
# A sample virtual with a fallback that overrides the global setting
virtual=192.168.136.10:80
        real=192.168.136.101:80 ipip
        real=192.168.136.102:80 ipip
        real=192.168.136.103:80 ipip
        service=http
        request=\"test.html\"
        receive=\"Test Page\"
        virtualhost=www.funbsd.net
        scheduler=rr
        protocol=tcp
";

#[test]
fn seed_configuration() {
    let c = ok(SEED);
    assert_eq!(c.checkinterval, 1);
    assert_eq!(c.checktimeout, Some(3));
    assert_eq!(c.virtuals.len(), 1);
    let v = &c.virtuals[0];
    assert_eq!(v.name(), "192.168.136.10:80");
    assert_eq!(v.id(), "tcp:192.168.136.10:80");
    assert_eq!(v.protocol, Protocol::Tcp);
    assert_eq!(v.service, Service::Http);
    assert_eq!(v.checktype, CheckType::Negotiate);
    assert_eq!(v.scheduler, "rr");
    assert_eq!(v.request, "/test.html");
    assert_eq!(v.receive, "Test Page");
    assert_eq!(v.virtualhost.as_deref(), Some("www.funbsd.net"));
    // checktimeout 3 from the global; negotiatetimeout falls back to it
    assert_eq!((v.checktimeout, v.negotiatetimeout), (3, 3));
    assert_eq!(v.checkinterval, 1);
    assert!(
        !v.quiescent,
        "the code default is quiescent=no (the POD is wrong)"
    );
    assert!(v.cleanstop);
    let reals: Vec<String> = v.reals.iter().map(|r| r.id()).collect();
    assert_eq!(
        reals,
        [
            "192.168.136.101:80",
            "192.168.136.102:80",
            "192.168.136.103:80"
        ]
    );
    assert!(v
        .reals
        .iter()
        .all(|r| r.forward == Forward::Ipip && r.weight == 1));
}

#[test]
fn timeouts_chain_like_ld_setup() {
    let c = ok("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n");
    assert_eq!(
        (c.virtuals[0].checktimeout, c.virtuals[0].negotiatetimeout),
        (5, 30)
    );
    assert_eq!(c.virtuals[0].checkinterval, 10);
    let c = ok("negotiatetimeout=7\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n");
    assert_eq!(
        (c.virtuals[0].checktimeout, c.virtuals[0].negotiatetimeout),
        (7, 7)
    );
    let c = ok("checktimeout=2\nnegotiatetimeout=9\nvirtual=10.0.0.1:80\n\tnegotiatetimeout=4\n");
    assert_eq!(
        (c.virtuals[0].checktimeout, c.virtuals[0].negotiatetimeout),
        (4, 4)
    );
    let c = ok("checktimeout=2\nvirtual=10.0.0.1:80\n\tchecktimeout=6\n\tnegotiatetimeout=8\n");
    assert_eq!(
        (c.virtuals[0].checktimeout, c.virtuals[0].negotiatetimeout),
        (6, 8)
    );
}

#[test]
fn real_line_forms() {
    let c = ok(concat!(
        "virtual=10.0.0.100:80\n",
        "\treal=10.0.0.1:80 gate 2 \"test.html\" \"Test Page\"\n",
        "\treal=10.0.0.3->10.0.0.5:80 masq\n",
        "\treal=10.0.0.2 gate\n",
        "\treal=10.0.0.6:80 gate 1 l:5 u:10\n",
        "\treal=10.0.0.7:82 masq \"a.html\", \"rcv\"\n",
        "\treal=web1:http ipip 3\n",
        "\treal=10.0.0.8:80 gate 1 \"/health\" \"\"status\":\"ok\"\" u:7 l:2\n",
    ));
    let r = &c.virtuals[0].reals;
    assert_eq!(r.len(), 9);
    assert_eq!(r[0].weight, 2);
    assert_eq!(r[0].request.as_deref(), Some("/test.html"));
    assert_eq!(r[0].receive.as_deref(), Some("Test Page"));
    assert_eq!(
        r[1..4].iter().map(|r| r.id()).collect::<Vec<_>>(),
        ["10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"]
    );
    assert!(r[1..4].iter().all(|r| r.forward == Forward::Masq));
    assert_eq!(
        r[4].port, 0,
        "no port: 0 (the virtual's port is used by IPVS)"
    );
    assert_eq!((r[5].lower, r[5].upper), (Some(5), Some(10)));
    assert_eq!(r[6].request.as_deref(), Some("/a.html"));
    assert_eq!(r[6].receive.as_deref(), Some("rcv"));
    assert_eq!(r[7].addr, "10.0.0.11".parse::<IpAddr>().unwrap());
    assert_eq!(
        (r[7].port, r[7].weight, r[7].forward),
        (80, 3, Forward::Ipip)
    );
    // Q2: a request with a leading slash keeps its receive (Perl lost it)
    assert_eq!(r[8].request.as_deref(), Some("/health"));
    assert_eq!(r[8].receive.as_deref(), Some("\"status\":\"ok\""));
    assert_eq!((r[8].lower, r[8].upper), (Some(2), Some(7)));
}

#[test]
fn perl_error_messages() {
    let cases: &[(&str, usize, &str)] = &[
        ("foo=bar\n", 1, "Unknown command foo=bar"),
        (
            "virtual=10.99.0.100:80\n\treal=10.99.0.2:80 direct 1\n",
            2,
            "forward method must be gate, masq or ipip",
        ),
        (
            "virtual=10.99.0.100:80\n\treal=10.99.0.2:80 gate\n\tchecktype=tcp\n",
            3,
            "checktype must be \"connect\", \"negotiate\", \"on\", \"off\", \"ping\", \"external\", \"external-perl\" or a positive number",
        ),
        (
            "virtual=10.99.0.100:80\n\treal=10.99.0.2:80 gate\n\tfrobnicate=1\n",
            3,
            "Unknown command \"frobnicate=1\"",
        ),
        (
            "connecttimeout=5\n",
            1,
            "connecttimeout directive deprecated in favour of negotiatetimeout",
        ),
        (
            "timeout=5\n",
            1,
            "timeout directive deprecated in favour of checktimeout and negotiatetimeout",
        ),
        (
            "virtual=10.99.0.100:80\n\tservice=gopher\n",
            2,
            "service must be dns, ftp, http, https, http_proxy, imap, imaps, ldap, ldaps, mysql, nntp, none, oracle, pop, pops, radius, pgsql, simpletcp, sip, smtp or submission",
        ),
        (
            "virtual=10.99.0.100:80\n\treal=10.99.0.2:80 gate\nvirtual=10.99.0.100:80\n\treal=10.99.0.3:80 gate\n",
            4,
            "duplicate virtual server",
        ),
        ("quiescent=maybe\n", 1, "quiescent must be 'yes' or 'no'"),
        (
            "virtual=10.99.0.100:80\n\treal=nosuchhost.invalid:80 gate\n",
            2,
            "invalid address (nosuchhost.invalid) for real server (could not resolve host)",
        ),
        (
            "virtual=5\n\tprotocol=tcp\n",
            2,
            "protocol must be fwm if the virtual service is a fwmark (a number)",
        ),
        (
            "virtual=10.99.0.100:80\n\tprotocol=sctp\n",
            2,
            "protocol must be tcp or udp if the virtual service is an address and port",
        ),
        (
            "virtual=10.99.0.100:80\n   real=10.99.0.2:80 gate\n",
            2,
            "Unknown command real=10.99.0.2:80 gate (lines of a virtual service must follow its virtual= line and be indented by at least 4 spaces or a tab)",
        ),
        (
            "virtual=10.99.0.100:80\n\tcheckport = 70000\n",
            2,
            "checkport must be in range 1..65535",
        ),
        ("virtual=10.99.0.100:80\n\trequest=\"\"\n", 2, "no request string specified"),
        ("virtual=10.99.0.100:80\n\treceive=\"\"\n", 2, "invalid receive string"),
        ("checkinterval=0\n", 1, "invalid check interval value"),
        ("checktimeout=abc\n", 1, "invalid check timeout value"),
        (
            "virtual=[2001:db8::1]:80\n",
            1,
            "cannot specify an IPv6 address here. please use \"virtual6\" instead.",
        ),
        (
            "virtual=10.99.0.100:80\n\treal6=[2001:db8::2]:80 gate\n",
            2,
            "cannot specify \"real6\" here.  please use \"real\" instead",
        ),
        (
            "virtual6=[2001:db8::1]:80\n\treal=10.0.0.1:80 gate\n",
            2,
            "cannot specify \"real\" here.  please use \"real6\" instead",
        ),
        (
            "virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::2]->[2001:db8::5]:80 gate\n",
            2,
            "Address range for IPv6 is not supported yet",
        ),
        (
            "virtual=10.99.0.100:80\n\treal=10.99.0.2:80 gate 1 junk\n",
            2,
            "Invalid real server line, around \"junk\"",
        ),
        (
            "virtual=10.99.0.100:80\n\treal=10.99.0.2:80\n",
            2,
            "invalid address for real server (wrong format)",
        ),
        (
            "virtual=10.99.0.100:80\n\thttpmethod=POST\n",
            2,
            "httpmethod must be GET or HEAD",
        ),
        ("emailalertstatus=all,none\n", 1, "invalid email alert status: \"all\" specified with \"none\""),
        ("emailalertstatus=bogus\n", 1, "invalid email alert status at: \"bogus\""),
        ("emailalert=\n", 1, "no email address specified"),
        ("supervised=maybe\n", 1, "supervised must be 'yes' or 'no'"),
        (
            "virtual=10.99.0.100:80\n\tnetmask=255.255\n",
            2,
            "invalid netmask: dotted quad notation is required",
        ),
        (
            "virtual6=[2001:db8::1]:80\n\tnetmask=129\n",
            2,
            "invalid netmask: a prefix length between 1 and 128 is required",
        ),
        ("virtual=10.99.0.100:80\n\tscheduler=RR\n", 2, "invalid scheduler, should be only lowercase letters (a-z)"),
        ("virtual=10.99.0.100:80\n\tops=maybe\n", 2, "ops must be 'yes' or 'no'"),
        ("logfile=local0\n", 1, "Unknown command logfile=local0 (the value of logfile must be in double quotes)"),
        ("callback=/bin/true\n", 1, "Unknown command callback=/bin/true (the value of callback must be in double quotes)"),
        (
            "virtual=10.99.0.100:80\n\trequest=/index.html\n",
            2,
            "Unknown command \"request=/index.html\" (the value of request must be in double quotes)",
        ),
    ];
    for (text, line, msg) in cases {
        let (l, m) = err(text);
        assert_eq!((l, m.as_str()), (*line, *msg), "config:\n{text}");
    }
}

#[test]
fn range_errors() {
    let (l, m) = err("virtual=10.99.0.100:80\n\treal=10.99.0.9->10.99.0.2:80 gate\n");
    assert_eq!(l, 2);
    assert!(m.starts_with("Invalid Range: 10.99.0.9-10.99.0.2: "), "{m}");
    let (_, m) = err("virtual=10.99.0.100:80\n\treal=10.0.0.0->10.2.0.0:80 gate\n");
    assert!(m.contains("more than 65536 addresses"), "{m}");
}

#[test]
fn validation_perl_left_to_ipvsadm() {
    // unknown scheduler
    let (l, m) = err("virtual=10.0.0.1:80\n\tscheduler=fastest\n");
    assert_eq!(l, 2);
    assert!(
        m.starts_with("unknown scheduler fastest (IPVS schedulers: rr, wrr"),
        "{m}"
    );
    // bad address
    let (l, m) = err("virtual=999.1.1.1:80\n\treal=10.0.0.2:80 gate\n");
    assert_eq!((l, m.as_str()), (1, "invalid address for virtual service"));
    // bad port
    let (_, m) = err("virtual=10.0.0.1:nosuchservice\n");
    assert_eq!(m, "invalid address for virtual service");
    let (_, m) = err("virtual=10.0.0.1:0\n\treal=10.0.0.2 gate\n");
    assert!(m.starts_with("invalid port 0 for virtual service"), "{m}");
    let (l, m) = err("virtual=10.0.0.1:80\n\treal=10.0.0.2:99999 gate\n");
    assert_eq!(
        (l, m.as_str()),
        (
            2,
            "invalid port (99999) for real server (could not resolve port)"
        )
    );
    // weight out of range
    let (_, m) = err("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate 70000\n");
    assert_eq!(m, "invalid weight 70000 (must be 0..65535)");
    // schedflags
    let (_, m) = err("virtual=10.0.0.1:80\n\tschedflags=sh-magic\n");
    assert!(
        m.starts_with("invalid sched-flags: unknown flag sh-magic"),
        "{m}"
    );
    // a receive regex the engine cannot compile
    let (l, m) = err("virtual=10.0.0.1:80\n\treceive=\"(unclosed\"\n");
    assert_eq!(l, 2);
    assert!(
        m.starts_with("invalid receive string: not a supported regular expression"),
        "{m}"
    );
    // two reals that are one IPVS destination
    let (l, m) = err("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.2:81 gate\n");
    assert_eq!(l, 3);
    assert!(
        m.contains("is the same IPVS destination as 10.0.0.2:80 on line 2"),
        "{m}"
    );
    let (_, m) = err("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.2:80 masq\n");
    assert!(m.starts_with("duplicate real server 10.0.0.2:80"), "{m}");
    // masq may use another port
    ok("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 masq\n\treal=10.0.0.2:81 masq\n");
}

#[test]
fn q1_address_without_port_is_refused() {
    let (l, m) = err("virtual=10.0.0.100\n\treal=10.0.0.2 gate\n");
    assert_eq!(l, 1);
    assert!(m.contains("10.0.0.100 has no port"), "{m}");
    // a real firewall mark still works
    let c = ok("virtual=10\n\treal=10.0.0.2 gate\n\tservice=none\n");
    let v = &c.virtuals[0];
    assert_eq!(
        (v.addr, v.protocol, v.service),
        (VirtualAddr::Fwmark(10), Protocol::Fwm, Service::None)
    );
    assert_eq!(v.id(), "fwm:10");
    let c = ok("virtual6=10\n\treal6=[2001:db8::2] gate\n");
    assert_eq!(c.virtuals[0].id(), "fwm6:10");
}

#[test]
fn unbuilt_services_are_refused_naming_the_service() {
    for s in [
        "ldap",
        "ldaps",
        "radius",
        "mysql",
        "pgsql",
        "oracle",
        "http_proxy",
    ] {
        let (l, m) = err(&format!(
            "virtual=10.0.0.1:7000\n\treal=10.0.0.2:7000 gate\n\tservice={s}\n"
        ));
        assert_eq!(l, 3);
        assert!(
            m.starts_with(&format!("service {s} is not supported")),
            "{m}"
        );
    }
    // the default of port 3306 is mysql
    let (l, m) = err("virtual=10.0.0.1:3306\n\treal=10.0.0.2:3306 gate\n");
    assert_eq!(l, 1);
    assert!(
        m.starts_with("service mysql (the default for port 3306;"),
        "{m}"
    );
    // ... unless the check does not negotiate
    ok("virtual=10.0.0.1:3306\n\treal=10.0.0.2:3306 gate\n\tchecktype=connect\n");
    // external-perl
    let (l, m) = err("virtual=10.0.0.1:80\n\tchecktype=external-perl\n");
    assert_eq!(l, 2);
    assert!(
        m.starts_with("checktype external-perl is not supported"),
        "{m}"
    );
}

#[test]
fn defaults_by_port_and_protocol() {
    let c = ok(concat!(
        "virtual=10.0.0.1:53\n\treal=10.0.0.2:53 gate\n\treceive=\"1.2.3.4\"\n\trequest=\"x.y\"\n",
        "virtual=10.0.0.1:domain\n\tprotocol=tcp\n\trequest=\"x.y\"\n\treceive=\"1\"\n",
        "virtual=10.0.0.1:21\n\treal=10.0.0.2:21 masq\n",
        "virtual=10.0.0.1:5060\n\tlogin=\"me@x\"\n",
        "virtual=10.0.0.1:8080\n\treal=10.0.0.2:8080 gate\n",
        "virtual=10.0.0.1:http\n\treal=10.0.0.2 gate\n",
    ));
    let v = &c.virtuals;
    assert_eq!((v[0].protocol, v[0].service), (Protocol::Udp, Service::Dns));
    assert_eq!(
        (v[1].protocol, v[1].service, v[1].port()),
        (Protocol::Tcp, Service::Dns, 53)
    );
    assert_eq!(v[2].service, Service::Ftp);
    assert_eq!(v[2].login, "anonymous");
    assert_eq!(v[2].passwd, "ldirectord@director");
    assert_eq!((v[3].service, v[3].login.as_str()), (Service::Sip, "me@x"));
    assert_eq!(v[4].service, Service::None);
    assert_eq!(v[5].port(), 80);
    assert_eq!(v[5].check_port(&v[5].reals[0]), Some(80));
    // checkport wins, then the real's port, then the service's default
    let c = ok(
        "virtual=10.0.0.1:8080\n\tservice=http\n\treal=10.0.0.2 gate\n\treal=10.0.0.3:81 masq\n",
    );
    let v = &c.virtuals[0];
    assert_eq!(v.check_port(&v.reals[0]), Some(80));
    assert_eq!(v.check_port(&v.reals[1]), Some(81));
    let c =
        ok("virtual=10.0.0.1:8080\n\tservice=http\n\tcheckport=8888\n\treal=10.0.0.3:81 masq\n");
    assert_eq!(
        c.virtuals[0].check_port(&c.virtuals[0].reals[0]),
        Some(8888)
    );
    // dns without receive would always be down
    let (l, m) = err("virtual=10.0.0.1:53\n\treal=10.0.0.2:53 gate\n\trequest=\"x.y\"\n");
    assert_eq!(l, 1);
    assert!(m.starts_with("service dns needs receive="), "{m}");
    // a fwmark real without port and a service without default port
    let (l, m) = err("virtual=7\n\tservice=simpletcp\n\treal=10.0.0.2 gate\n");
    assert_eq!(l, 3);
    assert!(m.contains("set checkport="), "{m}");
}

#[test]
fn fallbacks() {
    let c = ok(concat!(
        "fallback=127.0.0.1:80\n",
        "fallback6=[::1]\n",
        "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n",
        "virtual=10.0.0.1:8080\n\treal=10.0.0.2:8080 masq\n\tfallback=localhost masq\n",
        "virtual6=[2001:db8::1]:443\n\treal6=[2001:db8::2]:443 gate\n",
        "virtual=10.0.0.1:25\n\treal=10.0.0.2:25 gate\n\tfallback=127.0.0.1:2525\n",
    ));
    let f = |i: usize| c.virtuals[i].fallback.unwrap();
    assert_eq!(
        (f(0).addr.to_string(), f(0).port, f(0).forward),
        ("127.0.0.1".into(), 80, Forward::Gate)
    );
    assert_eq!(
        (f(1).addr.to_string(), f(1).port, f(1).forward),
        ("127.0.0.1".into(), 8080, Forward::Masq)
    );
    assert_eq!(
        (f(2).addr.to_string(), f(2).port),
        ("::1".into(), 443),
        "global fallback6 without port takes the virtual's"
    );
    assert_eq!(f(3).port, 2525);
    let (l, m) = err("virtual=10.0.0.1:80\n\tfallback6=[::1]:80\n");
    assert_eq!(
        (l, m.as_str()),
        (
            2,
            "cannot specify \"fallback6\" here.  please use \"fallback\" instead"
        )
    );
    let (_, m) = err("fallback=127.0.0.1:80 route\n");
    assert_eq!(m, "forward method must be gate, masq or ipip");
    let (_, m) = err("virtual=10.0.0.1:80\n\treal=127.0.0.1:80 gate\n\tfallback=127.0.0.1:80\n");
    assert!(m.contains("is also the fallback server"), "{m}");
}

#[test]
fn comments_blank_lines_and_tabs() {
    let c = ok(concat!(
        "# comment\n",
        "checkinterval=5 # inline comment on a global line\n",
        "quiescent=yes # also here (Perl refused this)\n",
        "\n",
        "virtual=10.0.0.1:80 # a web site\n",
        "  \t# indented comment\n",
        "\treal=10.0.0.2:80 gate # first\n",
        "\n",
        "    real=10.0.0.3:80 gate\n",
        "\treceive=\"Item #1\"\n",
        "\r\n",
        "virtual=10.0.0.1:443\r\n",
        "\treal=10.0.0.2:443 gate\r\n",
    ));
    assert_eq!(c.checkinterval, 5);
    assert!(c.quiescent);
    assert_eq!(c.virtuals.len(), 2);
    assert_eq!(
        c.virtuals[0].reals.len(),
        2,
        "a blank line inside a block does not end it"
    );
    assert_eq!(c.virtuals[0].receive, "Item #1");
    assert_eq!(c.virtuals[1].service, Service::Https);
    assert!(c.virtuals[0].quiescent, "global quiescent applies");
}

#[test]
fn warnings_do_not_stop_parsing() {
    let c = ok(
        "checkcount=3\nsupervised\nvirtual=10.0.0.1:80\n\tcheckcount=2\n\tnetmask=255.255.255.0\n",
    );
    let w: Vec<(usize, &str)> = c
        .warnings
        .iter()
        .map(|w| (w.line, w.msg.as_str()))
        .collect();
    assert_eq!(
        w,
        [
            (1, "checkcount option is deprecated and slated for removal.  please see 'failurecount'"),
            (2, "please update your config not to use a bare supervised directive"),
            (4, "checkcount option is deprecated and slated for removal.  please see 'failurecount'"),
            (5, "netmask is ignored without persistent"),
        ]
    );
    assert!(c.supervised);
    assert_eq!(c.virtuals[0].checkcount, 2);
}

#[test]
fn global_directives() {
    let c = ok(concat!(
        "autoreload=yes\n",
        "callback=\"/usr/local/bin/cb\"\n",
        "logfile=\"local0\"\n",
        "emailalert=\"a@b.c, d@e.f\"\n",
        "emailalertfreq=3600\n",
        "emailalertstatus=starting, stopping\n",
        "emailalertfrom=ld@x.y\n",
        "smtp=mail.x.y:2525\n",
        "execute=other.cf\n",
        "fork=yes\n",
        "readdquiescent=yes\n",
        "cleanstop=no\n",
        "maintenancedir=/etc/ha.d/maint\n",
        "fallbackcommand=\"/bin/echo fb\"\n",
        "sslverify=yes\n",
        "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\temailalertfreq=60\n\tcleanstop=yes\n",
    ));
    assert!(c.autoreload && c.fork && c.readdquiescent && !c.cleanstop && c.sslverify);
    assert_eq!(c.callback.as_deref(), Some("/usr/local/bin/cb"));
    assert_eq!(c.logfile, LogTarget::Syslog("local0".into()));
    assert_eq!(c.emailalert.as_deref(), Some("a@b.c, d@e.f"));
    assert_eq!(
        c.emailalertstatus,
        alert_status::STARTING | alert_status::STOPPING
    );
    assert_eq!(c.smtp.as_deref(), Some("mail.x.y:2525"));
    assert_eq!(c.execute, ["other.cf"]);
    let v = &c.virtuals[0];
    assert_eq!(v.emailalert.as_deref(), Some("a@b.c, d@e.f"));
    assert_eq!((v.emailalertfreq, v.cleanstop), (60, true));
    assert_eq!(v.fallbackcommand.as_deref(), Some("/bin/echo fb"));
    assert!(v.sslverify);
}

#[test]
fn printed_configuration_parses_to_itself() {
    let texts = [
        SEED.to_string(),
        concat!(
            "fallback=127.0.0.1:80\nquiescent=yes\nlogfile=\"/var/log/x.log\"\n",
            "virtual=10.0.0.1:80\n\treal=10.0.0.2->10.0.0.4:80 gate 2 \"a\", \"b c\" l:1 u:9\n",
            "\tpersistent=300\n\tnetmask=255.255.255.0\n\tscheduler=wlc\n\tchecktype=3\n",
            "\tvirtualhost=\"www.x\"\n\tservicename=Web Site\n\tcomment=the shop\n",
            "virtual=10.0.0.1:53\n\treal=10.0.0.2:53 gate\n\tops=yes\n\tchecktype=external\n\tcheckcommand=/bin/check\n",
            "virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::2]:80 masq\n\tchecktype=connect\n",
            "virtual=9\n\treal=10.0.0.5 gate\n\tservice=http\n\tfallback=127.0.0.1 gate\n",
        )
        .to_string(),
    ];
    for t in texts {
        let a = ok(&t);
        let pa = print::effective(&a);
        let b = ok(&pa);
        let pb = print::effective(&b);
        assert_eq!(pa, pb);
        assert_eq!(a.virtuals.len(), b.virtuals.len());
        for (x, y) in a.virtuals.iter().zip(&b.virtuals) {
            assert_eq!(x.addr, y.addr);
            assert_eq!(x.reals.len(), y.reals.len());
            for (r, s) in x.reals.iter().zip(&y.reals) {
                assert_eq!(
                    (
                        r.addr, r.port, r.forward, r.weight, &r.request, &r.receive, r.lower,
                        r.upper
                    ),
                    (
                        s.addr, s.port, s.forward, s.weight, &s.request, &s.receive, s.lower,
                        s.upper
                    )
                );
            }
        }
    }
}
