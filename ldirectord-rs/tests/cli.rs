//! The command line, pid file, exit codes and daemon lifecycle, against the
//! Perl ldirectord's observed behaviour (ldirectord.md §1, §2.4): no network
//! needed (checktype=on / off), the IPVS table in a file.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn usage_version_and_unknown_options() {
    let e = Env::new();
    let o = e.run(None, &[]);
    assert_eq!(o.status.code(), Some(255));
    assert!(
        text(&o)
            .0
            .starts_with("Usage:\n    ldirectord [-d|--debug]"),
        "usage goes to stdout"
    );
    let o = e.run(None, &["-x"]);
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(text(&o).1, "Unknown option: x\n");
    let o = e.run(None, &["t.cf", "bogus"]);
    assert_eq!(o.status.code(), Some(255));
    let o = e.run(None, &["-v"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).0.starts_with("Linux Director v1.186-ha\n"));
}

#[test]
fn missing_config_file_is_exit_1() {
    let e = Env::new();
    let missing = e.path("nonexist.cf");
    let o = e.run(None, &[missing.to_str().unwrap(), "status"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o).1,
        format!("Config file {} not found\n", missing.display())
    );
}

#[test]
fn configuration_errors_are_exit_2_with_the_perl_message() {
    let e = Env::new();
    let log = e.path("ld.log");
    let cfg = e.write(
        "bad.cf",
        &format!(
            "logfile=\"{}\"\nvirtual=10.99.0.100:80\n\treal=10.99.0.2:80 direct 1\n",
            log.display()
        ),
    );
    for args in [
        vec![cfg.to_str().unwrap(), "status"],
        vec![cfg.to_str().unwrap(), "start"],
        vec!["-t", cfg.to_str().unwrap()],
    ] {
        let o = e.run(None, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let (out, err) = text(&o);
        assert!(out.is_empty(), "{out}");
        let err = err.trim_end();
        assert!(err.starts_with("Error ["), "{err}");
        assert!(
            err.ends_with(&format!(
                "] reading file {} at line 3: forward method must be gate, masq or ipip",
                cfg.display()
            )),
            "{err}"
        );
    }
    // the log names the reason, as the Perl daemon's does (not for -t)
    let l = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        l.matches("Exiting with exit_status 2: config_error: Configuration Error")
            .count(),
        2,
        "{l}"
    );
    assert!(
        e.pid_of("bad.cf").is_none(),
        "no pid file for a failed start"
    );
}

#[test]
fn check_prints_the_effective_configuration() {
    let e = Env::new();
    let cfg = e.write(
        "www.cf",
        "checktimeout=3\ncheckinterval=1\nvirtual=192.168.136.10:80\n        real=192.168.136.101:80 ipip\n        request=\"test.html\"\n        receive=\"Test Page\"\n        scheduler=rr\n",
    );
    let o = e.run(None, &["-t", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let (out, _) = text(&o);
    for want in [
        "virtual=192.168.136.10:80\n",
        "\tservice=http\n",
        "\tchecktype=negotiate\n",
        "\tnegotiatetimeout=3\n",
        "\trequest=\"/test.html\"\n",
        "\tquiescent=no\n",
        "\treal=192.168.136.101:80 ipip 1\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    // the printed text is itself a valid configuration with the same output
    let again = e.write("again.cf", &out);
    let o2 = e.run(None, &["--check", again.to_str().unwrap()]);
    assert_eq!(o2.status.code(), Some(0));
    let out2 = text(&o2).0;
    assert_eq!(
        out.lines().skip(1).collect::<Vec<_>>(),
        out2.lines().skip(1).collect::<Vec<_>>()
    );
}

#[test]
fn status_stop_reload_when_not_running() {
    let e = Env::new();
    let log = e.path("ld.log");
    let cfg = e.write(
        "s.cf",
        &format!(
            "logfile=\"{}\"\ncheckcount=2\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n",
            log.display()
        ),
    );
    let c = cfg.to_str().unwrap();
    let o = e.run(None, &[c, "status"]);
    assert_eq!(o.status.code(), Some(3));
    let (out, err) = text(&o);
    assert_eq!(out, format!("ldirectord is stopped for {c}\n"));
    assert!(
        err.contains(&format!(
            "reading file {c} at line 2: checkcount option is deprecated and slated for removal.  please see 'failurecount'"
        )),
        "warnings go to stderr: {err}"
    );
    assert_eq!(e.run(None, &[c, "stop"]).status.code(), Some(0));
    assert_eq!(e.run(None, &[c, "try-restart"]).status.code(), Some(0));
    assert_eq!(e.run(None, &[c, "reload"]).status.code(), Some(1));
    assert!(e
        .read("ld.log")
        .contains(&format!("ldirectord is stopped for {c}")));
    // a stale pid file
    std::fs::write(e.path("run/ldirectord.s.cf.pid"), "999999\n").unwrap();
    let o = e.run(None, &[c, "status"]);
    assert_eq!(o.status.code(), Some(1));
    let (out, err) = text(&o);
    assert_eq!(out, format!("ldirectord is stopped for {c}\n"));
    assert!(
        err.contains(&format!(
            "ldirectord stale pid file {} for {c}",
            e.path("run/ldirectord.s.cf.pid").display()
        )),
        "{err}"
    );
}

#[test]
fn configuration_lookup_and_cfgname() {
    let e = Env::new();
    std::fs::create_dir_all(e.path("ha.d/conf")).unwrap();
    let body = "logfile=\"/dev/null\"\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n";
    std::fs::write(e.path("ha.d/ldirectord.cf"), body).unwrap();
    std::fs::write(e.path("ha.d/conf/www.cf"), body).unwrap();
    // one argument: the command; CONFIG is ldirectord.cf in the ha.d dir
    let o = e.run(None, &["status"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        text(&o).0,
        format!(
            "ldirectord is stopped for {}\n",
            e.path("ha.d/ldirectord.cf").display()
        )
    );
    // a bare name is looked up in ha.d, then ha.d/conf
    let o = e.run(None, &["www.cf", "status"]);
    assert_eq!(
        text(&o).0,
        format!(
            "ldirectord is stopped for {}\n",
            e.path("ha.d/conf/www.cf").display()
        )
    );
    // the pid file is named after the basename as given
    std::fs::write(e.path("run/ldirectord.www.cf.pid"), "999999\n").unwrap();
    let o = e.run(None, &["www.cf", "status"]);
    assert_eq!(o.status.code(), Some(1), "stale pid file of CFGNAME www.cf");
}

/// Kills the daemon if a test fails half-way.
struct Reaper(Vec<i32>);
impl Drop for Reaper {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[test]
fn daemon_lifecycle() {
    let e = Env::new();
    let log = e.path("ld.log");
    let cfg = e.write(
        "life.cf",
        &format!(
            "logfile=\"{}\"\ncheckinterval=1\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate 3\n\treal=10.0.0.3:80 masq\n\tchecktype=on\n\tscheduler=wlc\n",
            log.display()
        ),
    );
    let c = cfg.to_str().unwrap();
    let o = e.run(None, &[c, "start"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let pid = e
        .pid_of("life.cf")
        .expect("pid file written before start returns");
    let mut reaper = Reaper(vec![pid]);
    // the parent returned once the service was set up
    assert!(
        e.dests().contains_key("TCP 10.0.0.1:80"),
        "virtual service added before start returns"
    );
    within(Duration::from_secs(5), || {
        e.service("TCP 10.0.0.1:80") == map(&[("10.0.0.2:80", 3), ("10.0.0.3:80", 1)])
    })
    .unwrap_or_else(|| panic!("reals not added: {:?}", e.dests()));
    let o = e.run(None, &[c, "status"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        text(&o).0,
        format!("ldirectord for {c} is running with pid: {pid}\n"),
        "status prints to stdout"
    );
    // start again: nothing to do
    assert_eq!(e.run(None, &[c, "start"]).status.code(), Some(0));
    assert_eq!(e.pid_of("life.cf"), Some(pid));
    // reload
    assert_eq!(e.run(None, &[c, "reload"]).status.code(), Some(0));
    within(Duration::from_secs(5), || {
        e.read("ld.log")
            .contains("Reloading Linux Director Daemon config on signal")
    })
    .expect("HUP handled");
    // restart: a new daemon
    let o = e.run(None, &[c, "restart"]);
    assert_eq!(o.status.code(), Some(0));
    let pid2 = e.pid_of("life.cf").unwrap();
    assert_ne!(pid, pid2);
    reaper.0.push(pid2);
    // stop: clean stop empties the managed service, the pid file goes
    assert_eq!(e.run(None, &[c, "stop"]).status.code(), Some(0));
    within(Duration::from_secs(5), || e.pid_of("life.cf").is_none()).expect("pid file removed");
    assert!(e.dests().is_empty(), "{:?}", e.dests());
    let l = e.read("ld.log");
    for want in [
        "Starting Linux Director v1.186-ha as daemon",
        "Added virtual server: 10.0.0.1:80",
        "Added real server: 10.0.0.2:80 (10.0.0.1:80) (Weight set to 3)",
        "Purged virtual server (stop): 10.0.0.1:80",
        "Linux Director Daemon terminated on signal: TERM",
    ] {
        assert!(l.contains(want), "missing {want:?} in\n{l}");
    }
    // every line in the Perl format [date|CFGNAME|pid] msg
    for line in l.lines() {
        assert!(
            line.starts_with('[') && line.contains("|life.cf|"),
            "{line}"
        );
    }
}

#[test]
fn supervised_runs_in_the_foreground_logging_to_stdout() {
    let e = Env::new();
    let cfg = e.write(
        "sup.cf",
        "supervised=yes\ncheckinterval=1\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tchecktype=on\n",
    );
    let child = e
        .cmd(None, &[cfg.to_str().unwrap(), "start"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _reaper = Reaper(vec![child.id() as i32]);
    within(Duration::from_secs(5), || {
        e.service("TCP 10.0.0.1:80").len() == 1
    })
    .expect("real added");
    assert!(e.pid_of("sup.cf").is_none(), "supervised: no pid file");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.lines().all(|l| l.starts_with('[')), "{s}");
    assert!(
        s.contains("] Starting Linux Director v1.186-ha with pid: "),
        "{s}"
    );
    assert!(
        s.contains("] Linux Director Daemon terminated on signal: TERM"),
        "{s}"
    );
}

#[test]
fn the_shipped_sample_configuration_is_valid() {
    let e = Env::new();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/ha.d/ldirectord.cf");
    let o = e.run(None, &["-t", sample]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let out = text(&o).0;
    assert!(out.contains("virtual=192.168.136.10:80\n"), "{out}");
    for r in ["101", "102", "103"] {
        assert!(
            out.contains(&format!("\treal=192.168.136.{r}:80 ipip 1\n")),
            "{out}"
        );
    }
    assert!(out.contains("\tvirtualhost=www.funbsd.net\n"));
}

#[test]
fn execute_starts_and_stops_other_instances() {
    let e = Env::new();
    std::fs::create_dir_all(e.path("ha.d")).unwrap();
    let log = e.path("ld.log");
    std::fs::write(
        e.path("ha.d/other.cf"),
        format!(
            "logfile=\"{}\"\nvirtual=10.0.0.9:80\n\treal=10.0.0.2:80 gate\n\tchecktype=on\n",
            log.display()
        ),
    )
    .unwrap();
    let main = e.write(
        "main.cf",
        &format!(
            "logfile=\"{}\"\nexecute=other.cf\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tchecktype=on\n",
            log.display()
        ),
    );
    let m = main.to_str().unwrap();
    assert_eq!(e.run(None, &[m, "start"]).status.code(), Some(0));
    let mut pids = vec![e.pid_of("main.cf").unwrap()];
    let _reaper = Reaper(pids.clone());
    within(Duration::from_secs(5), || e.pid_of("other.cf").is_some())
        .expect("the execute= instance was started");
    pids.push(e.pid_of("other.cf").unwrap());
    let _reaper2 = Reaper(pids.clone());
    within(Duration::from_secs(5), || {
        e.dests().contains_key("TCP 10.0.0.1:80") && e.dests().contains_key("TCP 10.0.0.9:80")
    })
    .unwrap_or_else(|| panic!("both services: {:?}", e.dests()));
    assert_eq!(e.run(None, &[m, "stop"]).status.code(), Some(0));
    within(Duration::from_secs(5), || {
        e.pid_of("main.cf").is_none() && e.pid_of("other.cf").is_none()
    })
    .expect("both instances stopped");
    assert!(e.dests().is_empty(), "{:?}", e.dests());
}

#[test]
fn init_script_delegates_to_the_daemon() {
    let e = Env::new();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/ldirectord.init");
    let cfg = e.write(
        "i.cf",
        "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tchecktype=on\n",
    );
    let run = |action: &str| {
        let mut c = std::process::Command::new("sh");
        c.arg(script)
            .arg(action)
            .env("LDIRECTORD", BIN)
            .env("CONFIG_FILE", &cfg)
            .env("LDIRECTORD_RUNDIR", e.path("run"))
            .env(
                "HANET_IPVS_BACKEND",
                format!("file:{}", e.table_path().display()),
            );
        c.output().unwrap()
    };
    let o = run("status");
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    assert_eq!(
        text(&o).0,
        format!("ldirectord is stopped for {}\n", cfg.display())
    );
    let o = run("check");
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).0.contains("virtual=10.0.0.1:80"));
    assert_eq!(run("bogus").status.code(), Some(2));
}

#[test]
fn autoreload_and_callback() {
    let e = Env::new();
    let log = e.path("ld.log");
    let cb = e.write(
        "cb.sh",
        &format!("#!/bin/sh\necho \"$@\" >> {}\n", e.path("cb.out").display()),
    );
    lab::run_ok(std::process::Command::new("chmod").args(["755", cb.to_str().unwrap()]));
    let text_for = |w: u32| {
        format!(
            "logfile=\"{}\"\nautoreload=yes\ncallback=\"{}\"\ncheckinterval=1\n\
             virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate {w}\n\tchecktype=on\n",
            log.display(),
            cb.display()
        )
    };
    let cfg = e.write("auto.cf", &text_for(1));
    let c = cfg.to_str().unwrap();
    assert_eq!(e.run(None, &[c, "start"]).status.code(), Some(0));
    let _reaper = Reaper(vec![e.pid_of("auto.cf").unwrap()]);
    within(Duration::from_secs(5), || {
        e.service("TCP 10.0.0.1:80") == map(&[("10.0.0.2:80", 1)])
    })
    .expect("started");
    std::thread::sleep(Duration::from_millis(1100)); // a new mtime second
    std::fs::write(&cfg, text_for(7)).unwrap();
    within(Duration::from_secs(5), || {
        e.service("TCP 10.0.0.1:80") == map(&[("10.0.0.2:80", 7)])
    })
    .unwrap_or_else(|| panic!("not reloaded: {:?}\n{}", e.dests(), e.read("ld.log")));
    let l = e.read("ld.log");
    assert!(
        l.contains(&format!("Configuration file '{c}' has changed on disk")),
        "{l}"
    );
    assert!(l.contains(" - reread new configuration"), "{l}");
    within(Duration::from_secs(3), || {
        e.read("cb.out") == format!("{c}\n")
    })
    .unwrap_or_else(|| panic!("callback: {:?}", e.read("cb.out")));
    assert_eq!(e.run(None, &[c, "stop"]).status.code(), Some(0));
}
