//! `cl_status`: heartbeat cluster status, as 3.0.6's tool prints it, plus
//! `--json` for scripts and monitoring.
//!
//! Exit statuses as 3.0.6: 0 ok (node active/up, link up, ...), 1 "normal
//! failure" (heartbeat stopped, node dead, link dead, client offline),
//! 11 parameter error (unknown sub-command, unknown node), 13 other error.

use std::process::ExitCode;

use heartbeatd::control::{self, ClientError, Request, Snapshot};

const OK: u8 = 0;
const NORMAL_FAIL: u8 = 1;
const PARAMETER_ERROR: u8 = 11;
const UNKNOWN_ERROR: u8 = 13;

const HELP: &str = "Usage: cl_status <sub-command> [<options>] [<parameters>]

Sub-commands:
clientstatus <node-name> <client-id> [<timeout>]
\tShow the status of heartbeat clients.
hblinkstatus <node-name> <link-name>
\tShow the status of a heartbeat link
hbstatus
\tIndicate if heartbeat is running on the local system.
\tOptions:
\t\t-v\tverbose: also add \"listnodes -v\" output
listnodes [<option>]
\tList the nodes in the cluster.
\tOptions:
\t\t-p\tlist only 'ping' type nodes
\t\t-n\tlist only 'normal' type nodes
\t\t-v\tverbose: also list type and status,
\t\t\tthen add \"listhblinks -v\" output
listhblinks <node-name>
\tList the network interfaces used as hearbeat links.
\tOptions:
\t\t-v\tverbose: list link status as well
nodestatus <node-name>
\tList the node status.
nodeweight <node-name>
\tList the node weight.
nodesite <node-name>
\tList the node site.
nodetype <node-name>
\tList the nodes of a given type.
rscstatus
\tShow the status of cluster resources.
hbparameter -p <parameter-name>
\tRetrieve the value of a cluster parameter.

Every sub-command also takes --json (machine-readable output); -m prints
sentences for humans. The daemon is reached at $HEARTBEATD_SOCKET, default
/run/heartbeat/heartbeatd.sock.
";

struct Opts {
    human: bool,
    verbose: bool,
    ping_only: bool,
    normal_only: bool,
    json: bool,
    param: Option<String>,
    rest: Vec<String>,
}

fn parse(cmd: &str, args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        human: false,
        verbose: false,
        ping_only: false,
        normal_only: false,
        json: false,
        param: None,
        rest: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => o.json = true,
            "-p" if cmd == "hbparameter" => o.param = it.next().cloned(),
            s if s.starts_with('-') && s.len() > 1 => {
                for c in s[1..].chars() {
                    match c {
                        'm' => o.human = true,
                        'v' => o.verbose = true,
                        'n' => o.normal_only = true,
                        'p' => o.ping_only = true,
                        other => return Err(format!("Error: getopt returned character {other}.")),
                    }
                }
            }
            _ => o.rest.push(a.clone()),
        }
    }
    Ok(o)
}

fn err(msg: &str) {
    eprintln!("cl_status: ERROR: {msg}");
}

fn fetch() -> Result<Snapshot, ClientError> {
    let r = control::request(&control::default_socket(), &Request::Status)?;
    r.status
        .ok_or_else(|| ClientError::Protocol(r.error.unwrap_or_default()))
}

fn json(v: serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(&v).expect("json"));
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || (args.len() == 1 && (args[0] == "-h" || args[0] == "--help")) {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let cmd = args[0].as_str();
    const CMDS: &[&str] = &[
        "hbstatus",
        "listnodes",
        "nodestatus",
        "nodeweight",
        "nodesite",
        "nodetype",
        "listhblinks",
        "hblinkstatus",
        "clientstatus",
        "rscstatus",
        "hbparameter",
    ];
    if !CMDS.contains(&cmd) {
        err(&format!("{cmd}: invalid sub-command."));
        return ExitCode::from(PARAMETER_ERROR);
    }
    let o = match parse(cmd, &args[1..]) {
        Ok(o) => o,
        Err(e) => {
            err(&e);
            return ExitCode::from(PARAMETER_ERROR);
        }
    };
    let snap = fetch();
    if cmd == "hbstatus" {
        return ExitCode::from(hbstatus(&o, snap));
    }
    let snap = match snap {
        Ok(s) => s,
        Err(e) => {
            err("Cannot signon with heartbeat");
            err(&format!("REASON: {e}"));
            return ExitCode::from(NORMAL_FAIL);
        }
    };
    ExitCode::from(run(cmd, &o, &snap))
}

fn hbstatus(o: &Opts, snap: Result<Snapshot, ClientError>) -> u8 {
    match snap {
        Ok(s) => {
            if o.json {
                json(serde_json::to_value(&s).expect("json"));
            } else if !o.verbose {
                println!("Heartbeat is running on this machine.");
            } else {
                if o.human {
                    println!("Heartbeat version {}", s.version);
                    println!("Resources controlled by \"haresources\"");
                } else {
                    println!("version:\t{} (heartbeatd)", s.version);
                    println!("managed by:\t\"haresources\"");
                }
                listnodes(o, &s, true);
            }
            OK
        }
        Err(ClientError::Denied(_)) => {
            println!("Heartbeat is apparently running on this machine, but refuses my connection");
            OK
        }
        Err(e) => {
            if o.json {
                json(serde_json::json!({"running": false, "reason": e.to_string()}));
            } else {
                println!("Heartbeat is stopped on this machine.");
                if o.verbose {
                    println!("({e})");
                }
            }
            NORMAL_FAIL
        }
    }
}

fn listnodes(o: &Opts, s: &Snapshot, verbose: bool) {
    let (normal, ping) = if o.normal_only && o.ping_only {
        (false, false)
    } else {
        (o.normal_only, o.ping_only)
    };
    let shown = |n: &&control::NodeInfo| {
        !((normal && n.node_type != "normal") || (ping && n.node_type != "ping"))
    };
    if o.json {
        let v: Vec<_> = s.nodes.iter().filter(shown).collect();
        json(serde_json::to_value(v).expect("json"));
        return;
    }
    if o.human {
        println!("The nodes are as follow:");
    }
    for n in s.nodes.iter().filter(shown) {
        if verbose {
            println!("\n{}\t{}\t(nodetype: {})", n.name, n.status, n.node_type);
            for l in &n.links {
                println!("\t{}\t{}", l.name, l.status);
            }
        } else {
            println!("{}", n.name);
        }
    }
}

fn run(cmd: &str, o: &Opts, s: &Snapshot) -> u8 {
    let need = |k: usize| -> Result<&String, u8> {
        o.rest.get(k).ok_or_else(|| {
            eprintln!("Not enough parameters.");
            PARAMETER_ERROR
        })
    };
    let node_of = |name: &str| {
        let lower = name.to_ascii_lowercase();
        s.nodes.iter().find(|n| n.name == lower)
    };
    let unknown_node = || {
        eprintln!("Error. May be due to incorrect node name");
        PARAMETER_ERROR
    };
    match cmd {
        "listnodes" => {
            listnodes(o, s, o.verbose);
            OK
        }
        "nodestatus" => {
            let name = match need(0) {
                Ok(n) => n,
                Err(c) => return c,
            };
            let Some(n) = node_of(name) else {
                return unknown_node();
            };
            if o.json {
                json(serde_json::json!({"node": n.name, "status": n.status}));
            } else if o.human {
                println!("The cluster node {name} is {}", n.status);
            } else {
                println!("{}", n.status);
            }
            if matches!(n.status.as_str(), "active" | "up" | "ping") {
                OK
            } else {
                NORMAL_FAIL
            }
        }
        "nodeweight" | "nodesite" | "nodetype" => {
            let name = match need(0) {
                Ok(n) => n,
                Err(c) => return c,
            };
            let Some(n) = node_of(name) else {
                return unknown_node();
            };
            let (what, v) = match cmd {
                "nodeweight" => ("weight", "100".to_owned()),
                "nodesite" => ("site", String::new()),
                _ => ("type", n.node_type.clone()),
            };
            if o.json {
                json(serde_json::json!({"node": n.name, what: v}));
            } else if o.human {
                match cmd {
                    "nodetype" => println!("The node {name}'s type: {v}"),
                    "nodeweight" => println!("The weight of the cluster node {name} is {v}"),
                    _ => println!("The site of the cluster node {name} is {v}"),
                }
            } else {
                println!("{v}");
            }
            OK
        }
        "listhblinks" => {
            let name = match need(0) {
                Ok(n) => n,
                Err(c) => return c,
            };
            let Some(n) = node_of(name) else {
                err("Cannot start heartbeat link interface walk.");
                return UNKNOWN_ERROR;
            };
            if o.json {
                json(serde_json::to_value(&n.links).expect("json"));
                return OK;
            }
            if o.human {
                println!("\tthis node has the following heartbeat links:");
            }
            for l in &n.links {
                if o.verbose {
                    println!("\t{}\t{}", l.name, l.status);
                } else {
                    println!("\t{}", l.name);
                }
            }
            OK
        }
        "hblinkstatus" => {
            let (name, link) = match (need(0), need(1)) {
                (Ok(n), Ok(l)) => (n, l),
                (Err(c), _) | (_, Err(c)) => return c,
            };
            let Some(l) = node_of(name).and_then(|n| n.links.iter().find(|l| &l.name == link))
            else {
                err("Cannot get heartbeat link status");
                err("REASON: unknown node or link");
                return UNKNOWN_ERROR;
            };
            if o.json {
                json(serde_json::json!({"node": name, "link": link, "status": l.status}));
            } else if o.human {
                println!("The node {name}'s heartbeat link {link} is {}", l.status);
            } else {
                println!("{}", l.status);
            }
            if l.status == "up" {
                OK
            } else {
                NORMAL_FAIL
            }
        }
        "clientstatus" => {
            if let Err(c) = need(1) {
                return c;
            }
            // heartbeatd has no client API: no client is ever online.
            if o.json {
                json(
                    serde_json::json!({"node": o.rest[0], "client": o.rest[1], "status": "offline"}),
                );
            } else {
                println!("offline");
            }
            NORMAL_FAIL
        }
        "rscstatus" => {
            if o.json {
                let groups = &s.groups;
                json(
                    serde_json::json!({"rscstatus": s.rscstatus, "groups": groups, "jobs": s.jobs}),
                );
            } else if o.human {
                println!("This node is holding {} resources.", s.rscstatus);
            } else {
                println!("{}", s.rscstatus);
            }
            OK
        }
        "hbparameter" => {
            let Some(p) = o.param.as_ref().or(o.rest.first()) else {
                err("parameter name required");
                return PARAMETER_ERROR;
            };
            match s.parameters.get(p) {
                Some(v) => {
                    if o.json {
                        json(serde_json::json!({p.as_str(): v}));
                    } else if o.human {
                        println!("Heartbeat parameter {p}'s value: {v}");
                    } else {
                        println!("{v}");
                    }
                    OK
                }
                None => {
                    err(&format!("Cannot get parameter {p}'s value"));
                    NORMAL_FAIL
                }
            }
        }
        _ => PARAMETER_ERROR,
    }
}
