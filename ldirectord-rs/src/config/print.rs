//! Prints a [`Config`] in `ldirectord.cf` syntax with every effective value
//! spelled out (`ldirectord -t`). The output parses back to the same
//! configuration; comment lines show what ldirectord will do with it.

use std::fmt::Write;

use super::*;

fn yn(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn status_list(mask: u8) -> String {
    use alert_status::*;
    if mask == ALL {
        return "all".into();
    }
    if mask == 0 {
        return "none".into();
    }
    let mut v = Vec::new();
    for (bit, name) in [
        (STARTING, "starting"),
        (RUNNING, "running"),
        (STOPPING, "stopping"),
        (RELOADING, "reloading"),
    ] {
        if mask & bit != 0 {
            v.push(name);
        }
    }
    v.join(",")
}

/// `IP:PORT` for `real=` / `fallback=` lines (port omitted when 0).
fn hostport(addr: IpAddr, port: u16) -> String {
    match (addr, port) {
        (IpAddr::V6(a), 0) => format!("[{a}]"),
        (a, 0) => a.to_string(),
        (a, p) => fmt_hostport(a, p),
    }
}

/// The effective configuration as `ldirectord.cf` text.
pub fn effective(cfg: &Config) -> String {
    let mut o = String::new();
    let w = &mut o;
    let _ = writeln!(w, "# effective configuration of {}", cfg.file.display());
    let _ = writeln!(
        w,
        "# (every default applied; this text parses to the same configuration)"
    );
    if let Some(t) = cfg.checktimeout {
        let _ = writeln!(w, "checktimeout={t}");
    }
    if let Some(t) = cfg.negotiatetimeout {
        let _ = writeln!(w, "negotiatetimeout={t}");
    }
    let _ = writeln!(w, "checkinterval={}", cfg.checkinterval);
    if cfg.checkcount != 1 {
        let _ = writeln!(w, "checkcount={}", cfg.checkcount);
    }
    let _ = writeln!(w, "failurecount={}", cfg.failurecount);
    let _ = writeln!(w, "autoreload={}", yn(cfg.autoreload));
    if let Some(c) = &cfg.callback {
        let _ = writeln!(w, "callback=\"{c}\"");
    }
    for (name, f) in [("fallback", &cfg.fallback), ("fallback6", &cfg.fallback6)] {
        if let Some(f) = f {
            let _ = writeln!(
                w,
                "{name}={} {}",
                hostport(f.addr, f.tcp_port.unwrap_or(0)),
                f.forward.as_str()
            );
        }
    }
    if let Some(c) = &cfg.fallbackcommand {
        let _ = writeln!(w, "fallbackcommand=\"{c}\"");
    }
    match &cfg.logfile {
        LogTarget::File(p) => {
            let _ = writeln!(w, "logfile=\"{}\"", p.display());
        }
        LogTarget::Syslog(f) => {
            let _ = writeln!(w, "logfile=\"{f}\"");
        }
    }
    if let Some(e) = &cfg.emailalert {
        let _ = writeln!(w, "emailalert=\"{e}\"");
    }
    let _ = writeln!(w, "emailalertfreq={}", cfg.emailalertfreq);
    let _ = writeln!(w, "emailalertstatus={}", status_list(cfg.emailalertstatus));
    if let Some(f) = &cfg.emailalertfrom {
        let _ = writeln!(w, "emailalertfrom={f}");
    }
    if let Some(s) = &cfg.smtp {
        let _ = writeln!(w, "smtp={s}");
    }
    for e in &cfg.execute {
        let _ = writeln!(w, "execute={e}");
    }
    let _ = writeln!(w, "supervised={}", yn(cfg.supervised));
    let _ = writeln!(w, "fork={}", yn(cfg.fork));
    let _ = writeln!(w, "quiescent={}", yn(cfg.quiescent));
    let _ = writeln!(w, "readdquiescent={}", yn(cfg.readdquiescent));
    let _ = writeln!(w, "cleanstop={}", yn(cfg.cleanstop));
    if let Some(d) = &cfg.maintenancedir {
        let _ = writeln!(w, "maintenancedir={}", d.display());
    }
    let _ = writeln!(w, "sslverify={}", yn(cfg.sslverify));
    let _ = writeln!(w, "keepalive={}", yn(cfg.keepalive));
    if let Some(f) = &cfg.sslcafile {
        let _ = writeln!(w, "sslcafile=\"{}\"", f.display());
    }
    for v in &cfg.virtuals {
        let _ = writeln!(w);
        virtual_block(w, v);
    }
    o
}

fn virtual_block(w: &mut String, v: &Virtual) {
    let kw = if v.v6 { "virtual6" } else { "virtual" };
    let _ = writeln!(w, "# {}: {} real server(s)", v.id(), v.reals.len());
    let _ = writeln!(w, "{kw}={}", v.name());
    let t = "\t";
    let _ = writeln!(w, "{t}protocol={}", v.protocol.as_str());
    let _ = writeln!(w, "{t}scheduler={}", v.scheduler);
    if let Some(p) = v.persistent {
        let _ = writeln!(w, "{t}persistent={p}");
        if let Some(n) = &v.netmask {
            let _ = writeln!(w, "{t}netmask={n}");
        }
    }
    if v.ops {
        let _ = writeln!(w, "{t}ops=yes");
    }
    if let Some(f) = &v.schedflags {
        let _ = writeln!(w, "{t}schedflags={f}");
    }
    let _ = writeln!(w, "{t}service={}", v.service);
    let _ = writeln!(w, "{t}checktype={}", v.checktype);
    if v.checktype == CheckType::External {
        let _ = writeln!(w, "{t}checkcommand=\"{}\"", v.checkcommand);
    }
    let _ = writeln!(w, "{t}checktimeout={}", v.checktimeout);
    let _ = writeln!(w, "{t}negotiatetimeout={}", v.negotiatetimeout);
    let _ = writeln!(w, "{t}checkinterval={}", v.checkinterval);
    if v.checkcount != 1 {
        let _ = writeln!(w, "{t}checkcount={}", v.checkcount);
    }
    let _ = writeln!(w, "{t}failurecount={}", v.failurecount);
    if let Some(p) = v.checkport {
        let _ = writeln!(w, "{t}checkport={p}");
    }
    let _ = writeln!(w, "{t}request=\"{}\"", v.request);
    if !v.receive.is_empty() {
        let _ = writeln!(w, "{t}receive=\"{}\"", v.receive);
    }
    let _ = writeln!(w, "{t}httpmethod={}", v.httpmethod.as_str());
    if let Some(h) = &v.virtualhost {
        let _ = writeln!(w, "{t}virtualhost={h}");
    }
    for (name, val) in [
        ("login", &v.login),
        ("passwd", &v.passwd),
        ("database", &v.database),
        ("secret", &v.secret),
    ] {
        if !val.is_empty() {
            let _ = writeln!(w, "{t}{name}=\"{val}\"");
        }
    }
    if let Some(l) = &v.load {
        let _ = writeln!(w, "{t}load=\"{l}\"");
    }
    if let Some(f) = &v.fallback {
        let kw = if v.v6 { "fallback6" } else { "fallback" };
        let _ = writeln!(
            w,
            "{t}{kw}={} {}",
            hostport(f.addr, f.port),
            f.forward.as_str()
        );
    }
    if let Some(c) = &v.fallbackcommand {
        let _ = writeln!(w, "{t}fallbackcommand=\"{c}\"");
    }
    let _ = writeln!(w, "{t}quiescent={}", yn(v.quiescent));
    let _ = writeln!(w, "{t}cleanstop={}", yn(v.cleanstop));
    if let Some(e) = &v.emailalert {
        let _ = writeln!(w, "{t}emailalert=\"{e}\"");
    }
    let _ = writeln!(w, "{t}emailalertfreq={}", v.emailalertfreq);
    let _ = writeln!(w, "{t}emailalertstatus={}", status_list(v.emailalertstatus));
    if let Some(s) = &v.smtp {
        let _ = writeln!(w, "{t}smtp={s}");
    }
    if let Some(m) = &v.monitorfile {
        let _ = writeln!(w, "{t}monitorfile=\"{}\"", m.display());
    }
    if let Some(s) = &v.servicename {
        let _ = writeln!(w, "{t}servicename={s}");
    }
    if let Some(s) = &v.comment {
        let _ = writeln!(w, "{t}comment={s}");
    }
    let _ = writeln!(w, "{t}sslverify={}", yn(v.sslverify));
    let _ = writeln!(w, "{t}keepalive={}", yn(v.keepalive));
    if let Some(f) = &v.sslcafile {
        let _ = writeln!(w, "{t}sslcafile=\"{}\"", f.display());
    }
    let kw = if v.v6 { "real6" } else { "real" };
    for r in &v.reals {
        let mut line = format!(
            "{t}{kw}={} {} {}",
            hostport(r.addr, r.port),
            r.forward.as_str(),
            r.weight
        );
        if let (Some(rq), Some(rc)) = (&r.request, &r.receive) {
            let _ = write!(line, " \"{rq}\", \"{rc}\"");
        }
        if let Some(l) = r.lower {
            let _ = write!(line, " l:{l}");
        }
        if let Some(u) = r.upper {
            let _ = write!(line, " u:{u}");
        }
        let _ = writeln!(w, "{line}");
    }
}
