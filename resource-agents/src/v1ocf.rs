//! heartbeat v1 wrappers of OCF agents: `resource.d/Filesystem`,
//! `IPaddr2`, `MailTo`, ... as heartbeat 3.0.6 ships them (shell scripts
//! over `hto-mapfuncs`), served by one multi-call binary, `v1-ocf`.
//!
//! heartbeat runs `resource.d/NAME ARG... ACTION` for a haresources entry
//! `NAME::ARG::ARG`. The wrapper maps the positional arguments to
//! `OCF_RESKEY_*` variables, runs `$OCF_ROOT/resource.d/heartbeat/TYPE`
//! (`status` becomes `monitor`) and prints, and logs, one verdict line
//! for the OCF exit code (`INFO:  Running OK`, `INFO:  Resource is
//! stopped`, ...): heartbeat's ResourceManager judges `status` by that
//! stdout text. The exit code is the agent's.
//!
//! This module is the pure part: the table [`WRAPPERS`] (name → OCF type,
//! how the arguments map, instance name, usage text and its quirks) and
//! [`map`], which turns a command line into a [`Call`] or a [`Refusal`].
//! `src/bin/v1-ocf.rs` runs the agent.

/// The `$LEGAL_ACTIONS` of `hto-mapfuncs`, printed in every usage text.
pub const LEGAL_ACTIONS: &str = "(start|stop|status|usage|meta-data)";

/// How the positional arguments before the action map to parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Args {
    /// Exactly one argument per key, then the action.
    Fixed(&'static [&'static str]),
    /// The first `min` to all of the keys, then the action.
    Optional {
        min: usize,
        keys: &'static [&'static str],
    },
    /// `min..=max` arguments in all; each key takes the next argument as long
    /// as another non-empty one follows it; the action is what is left
    /// first (`Filesystem`, `ids`). `only` lists the accepted counts when
    /// not every count in the range is (`ids`: 1 or 4).
    Shift {
        keys: &'static [&'static str],
        min: usize,
        max: usize,
        only: &'static [usize],
    },
    /// `ip[/netmaskbits[/nic[:label]][/broadcast]]` (IPaddr2).
    Ip4Spec,
    /// `ipv6addr[/netmask[/nic]]` (IPv6addr).
    Ip6Spec,
    /// `ip/nic` (SendArp).
    IpNic,
    /// `[node ...] ACTION`: every argument but the last is `nodelist`.
    NodeList,
    /// `[config-file | port] ACTION` (WAS).
    Was,
    /// `[workstationfile] ACTION`, `hostfile` defaults to `hosts` (WinPopup).
    WinPopup,
    /// `email [subject] ACTION` (MailTo).
    MailTo,
}

/// What the wrapper's own `usage` function does when `hto-mapfuncs` calls it
/// (action `usage`, an unknown action, no action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageFn {
    /// prints and exits 1
    Exits,
    /// prints and returns: action `usage` then reports `INFO:  Success`, 0
    Returns,
    /// the wrapper has none (Xinetd names its function `xup_usage`)
    Missing,
}

/// Locale changes of the wrapper before it runs the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    Keep,
    /// `unset LANG; LC_ALL=C` (IPaddr2, SendArp)
    C,
    /// `unset LC_ALL LANGUAGE` (WAS)
    Unset,
}

/// One heartbeat v1 wrapper.
#[derive(Debug, Clone, Copy)]
pub struct Wrapper {
    /// the name in `resource.d` and haresources
    pub name: &'static str,
    /// the agent `$OCF_ROOT/resource.d/heartbeat/TYPE`
    pub ocf_type: &'static str,
    pub args: Args,
    /// `OCF_RESOURCE_INSTANCE` = `TYPE`, or `TYPE_V1_V2...` with the values
    /// of these parameters (an unset one: its environment value, else empty)
    pub instance: &'static [&'static str],
    /// values used in the instance name only, for parameters not given
    /// (Delay: `startdelay` 10)
    pub instance_defaults: &'static [(&'static str, &'static str)],
    /// parameters always set
    pub fixed: &'static [(&'static str, &'static str)],
    /// the usage lines; `{0}` is the program path, `{A}` [`LEGAL_ACTIONS`]
    pub usage: &'static [&'static str],
    /// the usage goes to stderr (IPsrcaddr)
    pub usage_stderr: bool,
    pub usage_fn: UsageFn,
    /// `set -e` (SendArp): a non-zero exit of the agent ends the wrapper
    /// with that code before any verdict line
    pub errexit: bool,
    pub locale: Locale,
}

const fn w(name: &'static str, args: Args, usage: &'static [&'static str]) -> Wrapper {
    Wrapper {
        name,
        ocf_type: name,
        args,
        instance: &[],
        instance_defaults: &[],
        fixed: &[],
        usage,
        usage_stderr: false,
        usage_fn: UsageFn::Exits,
        errexit: false,
        locale: Locale::Keep,
    }
}

/// Every wrapper of heartbeat 3.0.6's `resource.d` that goes through
/// `ra_execocf`, but `IPaddr` (our own agent replaces it).
pub const WRAPPERS: &[Wrapper] = &[
    Wrapper {
        usage_fn: UsageFn::Returns,
        ..w(
            "AudibleAlarm",
            Args::NodeList,
            &["Usage: {0} [node1 node2 ... ] {A}"],
        )
    },
    Wrapper {
        instance: &["startdelay"],
        instance_defaults: &[("startdelay", "10")],
        ..w(
            "Delay",
            Args::Optional {
                min: 0,
                keys: &["startdelay", "stopdelay"],
            },
            &["usage: {0} [delay [stopdelay]] {A}"],
        )
    },
    Wrapper {
        instance: &["device"],
        ..w(
            "Filesystem",
            Args::Shift {
                keys: &["device", "directory", "fstype", "options"],
                min: 3,
                max: usize::MAX,
                only: &[],
            },
            &["usage: {0} <device> <directory> [<fstype> [<options>]] {A}"],
        )
    },
    Wrapper {
        instance: &["driveid"],
        ..w(
            "ICP",
            Args::Fixed(&["driveid", "device"]),
            &["usage: {0} <ICP cluster drive ID> <device> {A}"],
        )
    },
    Wrapper {
        instance: &["ip"],
        fixed: &[("lvs_support", "1")],
        usage_fn: UsageFn::Returns,
        locale: Locale::C,
        ..w(
            "IPaddr2",
            Args::Ip4Spec,
            &["usage: {0} ip-address[/netmaskbits[/interface[:label][/broadcast]]] {A}"],
        )
    },
    Wrapper {
        usage_stderr: true,
        ..w(
            "IPsrcaddr",
            Args::Fixed(&["ipaddress"]),
            &["usage: {0} <ip-address> {A}"],
        )
    },
    // instance: IPv6addr_ARG, the whole argument (see map)
    w("IPv6addr", Args::Ip6Spec, &["usage: {0} <ip-address> {A}"]),
    w(
        "LVM",
        Args::Fixed(&["volgrpname"]),
        &["usage: {0} <LVM-configuration file> {A}"],
    ),
    Wrapper {
        instance: &["scsi"],
        ..w(
            "LinuxSCSI",
            Args::Fixed(&["scsi"]),
            &["usage: {0}  <host>:<channel>:<target>[:<lun>] {A}"],
        )
    },
    w(
        "MailTo",
        Args::MailTo,
        &["Usage: {0} <email> [<subject>] {A}"],
    ),
    Wrapper {
        instance: &["raidconf"],
        usage_fn: UsageFn::Returns,
        ..w(
            "Raid1",
            Args::Fixed(&["raidconf", "raiddev"]),
            &["usage: {0} <raidtab_config_file> <md_dev_name> {A}"],
        )
    },
    Wrapper {
        instance: &["ip"],
        usage_fn: UsageFn::Returns,
        errexit: true,
        locale: Locale::C,
        ..w(
            "SendArp",
            Args::IpNic,
            &["usage: {0} ip-address/interface {A}"],
        )
    },
    Wrapper {
        instance: &["serveraid"],
        ..w(
            "ServeRAID",
            Args::Fixed(&["serveraid", "mergegroup"]),
            &["usage: {0} <serveraid#> <sharedmergegroup#> {A}"],
        )
    },
    Wrapper {
        locale: Locale::Unset,
        ..w(
            "WAS",
            Args::Was,
            &[
                "For the single server edition of WAS:",
                "usage: {0} [<WAS-configuration file>] {A}",
                "",
                "For the advanced edition of WAS:",
                "usage: {0} [<WAS-(snoop)-port-number>] {A}",
            ],
        )
    },
    w(
        "WinPopup",
        Args::WinPopup,
        &["Usage: {0} [workstationfile] {A}"],
    ),
    Wrapper {
        usage_fn: UsageFn::Missing,
        ..w(
            "Xinetd",
            Args::Fixed(&["service"]),
            &["Usage: {0} <xinetd-service-name> {A}"],
        )
    },
    Wrapper {
        instance: &["configfile"],
        ..w(
            "apache",
            Args::Optional {
                min: 0,
                keys: &["configfile"],
            },
            &["usage: {0} [config-file-pathname] {A}"],
        )
    },
    Wrapper {
        instance: &["instance"],
        ..w(
            "db2",
            Args::Fixed(&["instance"]),
            &["usage: {0} db2-database-owner-id {A}"],
        )
    },
    Wrapper {
        instance: &["informixserver"],
        ..w(
            "ids",
            Args::Shift {
                keys: &["informixdir", "informixserver", "onconfig"],
                min: 1,
                max: 4,
                only: &[1, 4],
            },
            &["usage: {0} [<INFORMIXDIR> <INFORMIXSERVER> <ONCONFIG>] {A}"],
        )
    },
    Wrapper {
        instance: &["protocol", "portno", "action"],
        ..w(
            "portblock",
            Args::Fixed(&["protocol", "portno", "action"]),
            &["usage: {0} {udp|tcp} portno,portno {block|unblock} {A}"],
        )
    },
];

/// The wrapper called `name`.
pub fn find(name: &str) -> Option<&'static Wrapper> {
    WRAPPERS.iter().find(|w| w.name == name)
}

/// A command line the wrapper accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `OCF_RESKEY_<name>` values to export, in order
    pub params: Vec<(String, String)>,
    pub instance: String,
    /// the action word; empty when none was given
    pub action: String,
    /// the usage is printed first (AudibleAlarm without arguments)
    pub usage_first: bool,
}

/// A command line the wrapper refuses: `message` (if any) and the usage on
/// stdout, exit 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: Option<String>,
}

impl Wrapper {
    /// The usage text for program path `argv0`, one string per line.
    pub fn usage_lines(&self, argv0: &str) -> Vec<String> {
        self.usage
            .iter()
            .map(|l| l.replace("{0}", argv0).replace("{A}", LEGAL_ACTIONS))
            .collect()
    }

    /// The OCF action run for a wrapper action, `None` for an action
    /// `hto-mapfuncs` does not run (`usage`, `help`, unknown ones).
    pub fn ocf_action(action: &str) -> Option<&'static str> {
        match action {
            "start" => Some("start"),
            "stop" => Some("stop"),
            // hto-mapfuncs: "Mapping this to monitor is a bug" (it stays)
            "status" | "monitor" => Some("monitor"),
            _ => None,
        }
    }
}

/// The part of `s` before the first `/` (`sed 's%/.*%%'`).
fn upto_slash(s: &str) -> &str {
    s.split('/').next().unwrap_or("")
}

/// `s` without `prefix` and the slashes after it (`sed 's%^PREFIX/*%%'`).
fn strip_then_slashes<'a>(s: &'a str, prefix: &str) -> &'a str {
    s.strip_prefix(prefix).unwrap_or(s).trim_start_matches('/')
}

/// Maps `args` (everything after the program name) for wrapper `w`.
/// `env` reads the caller's environment (instance names use inherited
/// `OCF_RESKEY_*` values as the shell does); `is_file` is `test -f`.
pub fn map(
    w: &Wrapper,
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    is_file: &dyn Fn(&str) -> bool,
) -> Result<Call, Refusal> {
    let n = args.len();
    let usage = Err(Refusal { message: None });
    let mut params: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| params.push((k.to_string(), v.to_string()));
    let mut usage_first = false;
    let mut instance_override = None;
    let action: String = match w.args {
        Args::Fixed(keys) => {
            if n != keys.len() + 1 {
                return usage;
            }
            for (k, v) in keys.iter().zip(args) {
                set(k, v);
            }
            args[n - 1].clone()
        }
        Args::Optional { min, keys } => {
            if n < min + 1 || n > keys.len() + 1 {
                return usage;
            }
            for (k, v) in keys.iter().zip(&args[..n - 1]) {
                set(k, v);
            }
            args[n - 1].clone()
        }
        Args::Shift {
            keys,
            min,
            max,
            only,
        } => {
            if n < min || n > max || (!only.is_empty() && !only.contains(&n)) {
                return usage;
            }
            let mut rest = args;
            for k in keys {
                if rest.len() >= 2 && !rest[1].is_empty() {
                    set(k, &rest[0]);
                    rest = &rest[1..];
                }
            }
            rest.first().cloned().unwrap_or_default()
        }
        Args::Ip4Spec => {
            if n != 2 {
                return usage;
            }
            let a = &args[0];
            let base = upto_slash(a);
            set("ip", base);
            let s = strip_then_slashes(a, base);
            if !s.is_empty() {
                let mask = upto_slash(s);
                set("cidr_netmask", mask);
                let s = strip_then_slashes(s, mask);
                let nic = upto_slash(s);
                if nic.starts_with(|c: char| c.is_ascii_digit()) {
                    set("broadcast", nic);
                } else if !nic.is_empty() {
                    let brd = upto_slash(strip_then_slashes(s, nic));
                    set("nic", nic);
                    set("broadcast", brd);
                }
            }
            args[1].clone()
        }
        Args::Ip6Spec => {
            if n != 2 {
                return usage;
            }
            let a = &args[0];
            instance_override = Some(format!("{}_{a}", w.ocf_type));
            let base = upto_slash(a);
            set("ipv6addr", base);
            let s = a.strip_prefix(base).unwrap_or(a);
            if !s.is_empty() {
                let mask = upto_slash(s.strip_prefix('/').unwrap_or(s));
                set("cidr_netmask", mask);
                let s = s
                    .strip_prefix('/')
                    .and_then(|s| s.strip_prefix(mask))
                    .map(|s| s.trim_start_matches('/'))
                    .unwrap_or(s);
                let nic = upto_slash(s);
                if !nic.is_empty() {
                    set("nic", nic);
                }
            }
            args[1].clone()
        }
        Args::IpNic => {
            if n != 2 {
                return usage;
            }
            let a = &args[0];
            let base = upto_slash(a);
            // sed "s%IP/%%": the first "IP/" anywhere; none: the whole argument
            let nic = a.replacen(&format!("{base}/"), "", 1);
            set("ip", base);
            set("nic", &nic);
            args[1].clone()
        }
        Args::NodeList => {
            if n == 0 {
                usage_first = true;
            }
            let op = args.last().cloned().unwrap_or_default();
            // echo $* | sed 's%OP$%%': the words, the action cut off the end
            let all = args
                .iter()
                .flat_map(|a| a.split_whitespace())
                .collect::<Vec<_>>()
                .join(" ");
            let nodes = all.strip_suffix(op.as_str()).unwrap_or(&all);
            set("nodelist", nodes);
            op
        }
        Args::Was => match n {
            1 => args[0].clone(),
            2 => {
                let a = &args[0];
                // [ -f $1 ]: an empty $1 leaves `[ -f ]`, which is true
                if a.is_empty() || is_file(a) {
                    set("config", a);
                } else if a.chars().any(|c| !c.is_ascii_digit()) {
                    return Err(Refusal {
                        message: Some(format!(
                            "ERROR: {a} is neither a WAS configuration file nor a valid port number!"
                        )),
                    });
                } else {
                    set("port", a);
                }
                args[1].clone()
            }
            _ => return usage,
        },
        Args::WinPopup => {
            if n > 2 {
                return Err(Refusal {
                    message: Some(format!(
                        "Additional parameters found: {n} but only 2 are allowed!"
                    )),
                });
            }
            if n == 2 {
                set("hostfile", &args[0]);
                args[1].clone()
            } else {
                set("hostfile", "hosts");
                args.first().cloned().unwrap_or_default()
            }
        }
        Args::MailTo => match n {
            0 | 1 => {
                return Err(Refusal {
                    message: Some("At least 1 Email address has to be given!".into()),
                })
            }
            2 | 3 => {
                set("email", &args[0]);
                if n == 3 {
                    set("subject", &args[1]);
                }
                args[n - 1].clone()
            }
            _ => {
                return Err(Refusal {
                    message: Some(format!(
                        "Additional parameters found: {n} but max. 3 are allowed!"
                    )),
                })
            }
        },
    };
    for (k, v) in w.fixed {
        set(k, v);
    }
    let instance = instance_override.unwrap_or_else(|| {
        let mut s = w.ocf_type.to_string();
        for k in w.instance {
            let v = params
                .iter()
                .rev()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.clone())
                .or_else(|| env(&format!("OCF_RESKEY_{k}")).filter(|v| !v.is_empty()))
                .or_else(|| {
                    w.instance_defaults
                        .iter()
                        .find(|(dk, _)| dk == k)
                        .map(|(_, v)| v.to_string())
                })
                .unwrap_or_default();
            s.push('_');
            s.push_str(&v);
        }
        s
    });
    Ok(Call {
        params,
        instance,
        action,
        usage_first,
    })
}

/// The verdict line `hto-mapfuncs` prints for OCF exit code `rc` after
/// `action`, and whether it is an error. The double space is 3.0.6's
/// (`$rsc_type`, which no wrapper sets); heartbeat matches `Running OK`
/// and `Resource is stopped` inside the line.
pub fn verdict(action: &str, rc: i32) -> (String, bool) {
    let (text, err) = match rc {
        0 if matches!(action, "status" | "monitor") => ("Running OK".to_string(), false),
        0 => ("Success".to_string(), false),
        1 => ("Generic error".to_string(), true),
        2 => ("Illegal argument".to_string(), true),
        3 => ("Function unimplemented".to_string(), true),
        4 => ("User had insufficient privilege".to_string(), true),
        5 => ("Program is not installed".to_string(), true),
        6 => ("Program is not configured".to_string(), true),
        7 => ("Resource is stopped".to_string(), false),
        rc => (format!("Unknown error: {rc}"), true),
    };
    let level = if err { "ERROR" } else { "INFO" };
    (format!("{level}:  {text}"), err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, args: &[&str]) -> Result<Call, Refusal> {
        run_env(name, args, &[])
    }

    fn run_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Call, Refusal> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map(
            find(name).unwrap(),
            &args,
            &move |k| env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.clone()),
            &|p| p == "/etc/was.conf",
        )
    }

    fn params(c: &Call) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn filesystem_shifts_while_a_non_empty_argument_follows() {
        let c = run("Filesystem", &["/dev/sda1", "/data", "ext3", "start"]).unwrap();
        assert_eq!(
            params(&c),
            [
                ("device", "/dev/sda1"),
                ("directory", "/data"),
                ("fstype", "ext3")
            ]
        );
        assert_eq!(c.action, "start");
        assert_eq!(c.instance, "Filesystem_/dev/sda1");
        let c = run(
            "Filesystem",
            &["/dev/sda1", "/data", "ext3", "rw,noatime", "stop"],
        )
        .unwrap();
        assert_eq!(params(&c)[3], ("options", "rw,noatime"));
        assert_eq!(c.action, "stop");
        let c = run("Filesystem", &["/dev/sda1", "/data", "status"]).unwrap();
        assert_eq!(params(&c).len(), 2);
        // an empty second argument: no key takes anything (each test looks
        // at the same $2), the first argument is the action
        let c = run("Filesystem", &["/dev/sda1", "", "start"]).unwrap();
        assert!(c.params.is_empty());
        assert_eq!(c.action, "/dev/sda1");
        assert_eq!(
            run("Filesystem", &["/dev/sda1", "start"]),
            Err(Refusal { message: None })
        );
    }

    #[test]
    fn ipaddr2_spec_as_the_sed_chain_reads_it() {
        let p = |a: &str| {
            params(&run("IPaddr2", &[a, "start"]).unwrap())
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(p("10.0.0.5"), "ip=10.0.0.5 lvs_support=1");
        assert_eq!(
            p("10.0.0.5/24"),
            "ip=10.0.0.5 cidr_netmask=24 lvs_support=1"
        );
        assert_eq!(
            p("10.0.0.5/24/eth0:web"),
            "ip=10.0.0.5 cidr_netmask=24 nic=eth0:web broadcast= lvs_support=1"
        );
        assert_eq!(
            p("10.0.0.5/24/eth0/10.0.0.255"),
            "ip=10.0.0.5 cidr_netmask=24 nic=eth0 broadcast=10.0.0.255 lvs_support=1"
        );
        assert_eq!(
            p("10.0.0.5/24/10.0.0.255"),
            "ip=10.0.0.5 cidr_netmask=24 broadcast=10.0.0.255 lvs_support=1"
        );
        // "//" is skipped: what follows is taken as the netmask
        assert_eq!(
            p("10.0.0.5//eth1"),
            "ip=10.0.0.5 cidr_netmask=eth1 lvs_support=1"
        );
        let c = run("IPaddr2", &["10.0.0.5/24", "status"]).unwrap();
        assert_eq!(c.instance, "IPaddr2_10.0.0.5");
        assert!(run("IPaddr2", &["10.0.0.5", "a", "start"]).is_err());
    }

    #[test]
    fn ipv6addr_instance_is_the_whole_argument() {
        let c = run("IPv6addr", &["2001:db8::5/64/eth0", "start"]).unwrap();
        assert_eq!(
            params(&c),
            [
                ("ipv6addr", "2001:db8::5"),
                ("cidr_netmask", "64"),
                ("nic", "eth0")
            ]
        );
        assert_eq!(c.instance, "IPv6addr_2001:db8::5/64/eth0");
        let c = run("IPv6addr", &["2001:db8::5", "start"]).unwrap();
        assert_eq!(params(&c), [("ipv6addr", "2001:db8::5")]);
    }

    #[test]
    fn sendarp_without_a_slash_takes_the_address_as_nic() {
        let c = run("SendArp", &["10.0.0.5/eth0", "start"]).unwrap();
        assert_eq!(params(&c), [("ip", "10.0.0.5"), ("nic", "eth0")]);
        assert_eq!(c.instance, "SendArp_10.0.0.5");
        let c = run("SendArp", &["10.0.0.5", "start"]).unwrap();
        assert_eq!(params(&c), [("ip", "10.0.0.5"), ("nic", "10.0.0.5")]);
        assert!(find("SendArp").unwrap().errexit);
    }

    #[test]
    fn delay_instance_defaults_without_exporting() {
        let c = run("Delay", &["start"]).unwrap();
        assert!(c.params.is_empty());
        assert_eq!(c.instance, "Delay_10");
        let c = run_env("Delay", &["start"], &[("OCF_RESKEY_startdelay", "3")]).unwrap();
        assert_eq!(c.instance, "Delay_3");
        let c = run("Delay", &["1", "2", "stop"]).unwrap();
        assert_eq!(params(&c), [("startdelay", "1"), ("stopdelay", "2")]);
        assert_eq!(c.instance, "Delay_1");
        assert!(run("Delay", &[]).is_err());
        assert!(run("Delay", &["1", "2", "3", "stop"]).is_err());
    }

    #[test]
    fn mailto_winpopup_was_messages() {
        assert_eq!(
            run("MailTo", &["start"]).unwrap_err().message.unwrap(),
            "At least 1 Email address has to be given!"
        );
        assert_eq!(
            run("MailTo", &["a", "b", "c", "d"])
                .unwrap_err()
                .message
                .unwrap(),
            "Additional parameters found: 4 but max. 3 are allowed!"
        );
        let c = run("MailTo", &["root@x", "failover", "start"]).unwrap();
        assert_eq!(params(&c), [("email", "root@x"), ("subject", "failover")]);
        assert_eq!(c.instance, "MailTo");
        let c = run("WinPopup", &["start"]).unwrap();
        assert_eq!(params(&c), [("hostfile", "hosts")]);
        let c = run("WinPopup", &[]).unwrap();
        assert_eq!(c.action, "");
        assert!(run("WinPopup", &["a", "b", "start"])
            .unwrap_err()
            .message
            .is_some());
        let c = run("WAS", &["/etc/was.conf", "start"]).unwrap();
        assert_eq!(params(&c), [("config", "/etc/was.conf")]);
        let c = run("WAS", &["9080", "start"]).unwrap();
        assert_eq!(params(&c), [("port", "9080")]);
        assert_eq!(
            run("WAS", &["x/y", "start"]).unwrap_err().message.unwrap(),
            "ERROR: x/y is neither a WAS configuration file nor a valid port number!"
        );
    }

    #[test]
    fn audiblealarm_nodelist_and_no_arguments() {
        let c = run("AudibleAlarm", &["n1", "n2", "start"]).unwrap();
        assert_eq!(params(&c), [("nodelist", "n1 n2 ")]);
        assert_eq!(c.action, "start");
        let c = run("AudibleAlarm", &[]).unwrap();
        assert!(c.usage_first);
        assert_eq!(c.action, "");
    }

    #[test]
    fn fixed_and_ids() {
        let c = run("portblock", &["tcp", "80,443", "block", "start"]).unwrap();
        assert_eq!(c.instance, "portblock_tcp_80,443_block");
        assert!(run("portblock", &["tcp", "80", "start"]).is_err());
        let c = run("ids", &["/opt/ifx", "srv", "onconfig.srv", "start"]).unwrap();
        assert_eq!(params(&c).len(), 3);
        assert_eq!(c.instance, "ids_srv");
        assert_eq!(run("ids", &["start"]).unwrap().instance, "ids_");
        assert!(run("ids", &["a", "b", "start"]).is_err());
        let c = run("LVM", &["vg0", "status"]).unwrap();
        assert_eq!(c.instance, "LVM");
        assert_eq!(params(&c), [("volgrpname", "vg0")]);
        assert_eq!(run("apache", &["start"]).unwrap().instance, "apache_");
    }

    #[test]
    fn verdicts_and_actions() {
        assert_eq!(verdict("status", 0).0, "INFO:  Running OK");
        assert_eq!(verdict("start", 0).0, "INFO:  Success");
        assert_eq!(
            verdict("status", 7),
            ("INFO:  Resource is stopped".into(), false)
        );
        assert_eq!(
            verdict("start", 5),
            ("ERROR:  Program is not installed".into(), true)
        );
        assert_eq!(verdict("start", 9).0, "ERROR:  Unknown error: 9");
        assert_eq!(Wrapper::ocf_action("status"), Some("monitor"));
        assert_eq!(Wrapper::ocf_action("meta-data"), None);
        assert_eq!(
            find("Delay").unwrap().usage_lines("/x/Delay"),
            ["usage: /x/Delay [delay [stopdelay]] (start|stop|status|usage|meta-data)"]
        );
    }

    #[test]
    fn install_tree_links_every_name() {
        let tree = include_str!("../../packaging/install-tree");
        let line = tree
            .lines()
            .find(|l| l.starts_with("V1OCF_NAMES="))
            .expect("V1OCF_NAMES= in packaging/install-tree");
        let mut listed: Vec<&str> = line
            .trim_start_matches("V1OCF_NAMES=")
            .trim_matches('"')
            .split_whitespace()
            .collect();
        let mut ours: Vec<&str> = WRAPPERS.iter().map(|w| w.name).collect();
        listed.sort();
        ours.sort();
        assert_eq!(listed, ours);
    }
}
