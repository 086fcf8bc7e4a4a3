//! The agent runner: works out how the agent was called (heartbeat v1, LSB
//! init script or OCF), collects the parameters, runs the action and maps
//! the outcome to the exit code and the output that caller expects.
//!
//! * **v1** (heartbeat `haresources`): `AGENT ARG... VERB`, or just
//!   `AGENT VERB` with heartbeat's environment (`HA_CURHOST`). `status`
//!   prints `running ...` or `stopped ...` on stdout: heartbeat judges the
//!   text. Exit codes are the LSB ones.
//! * **LSB**: `AGENT VERB` from an init system or by hand. `status` exits 0
//!   running, 3 stopped, 4 unknown; other verbs 0 ok, 1 generic error,
//!   2 bad arguments, 3 unimplemented, 4 no privilege, 5 not installed,
//!   6 not configured. Parameters come from the environment
//!   (`OCF_RESKEY_*`) and, for some agents, their own configuration file.
//! * **OCF**: `AGENT ACTION` with `OCF_RESOURCE_INSTANCE`,
//!   `OCF_RA_VERSION_MAJOR` or `__OCF_ACTION` set, or an OCF-only action
//!   (`monitor`, `validate-all`, ...).
//!   Parameters from `OCF_RESKEY_*`, OCF exit codes, failure reasons as
//!   `ocf-exit-reason:` lines, probes (`monitor` with interval 0).
//!
//! `meta-data` works the same in every mode, without parameters and as
//! any user.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use crate::log::Logger;
use crate::ocf::{parse_bool, Action, MetaData, Rc};

/// How the agent was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    V1,
    Lsb,
    Ocf,
}

/// A failed action: the exit code and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentError {
    pub rc: Rc,
    pub reason: String,
}

impl AgentError {
    pub fn new(rc: Rc, reason: impl Into<String>) -> AgentError {
        AgentError {
            rc,
            reason: reason.into(),
        }
    }
    pub fn generic(reason: impl Into<String>) -> AgentError {
        AgentError::new(Rc::ErrGeneric, reason)
    }
    pub fn args(reason: impl Into<String>) -> AgentError {
        AgentError::new(Rc::ErrArgs, reason)
    }
    pub fn configured(reason: impl Into<String>) -> AgentError {
        AgentError::new(Rc::ErrConfigured, reason)
    }
    pub fn installed(reason: impl Into<String>) -> AgentError {
        AgentError::new(Rc::ErrInstalled, reason)
    }
    pub fn perm(reason: impl Into<String>) -> AgentError {
        AgentError::new(Rc::ErrPerm, reason)
    }
}

impl From<hanet::NetError> for AgentError {
    fn from(e: hanet::NetError) -> Self {
        AgentError::generic(e.to_string())
    }
}

/// The parameters of one call: name → value, with the defaults of the
/// agent's meta-data behind them.
#[derive(Debug, Clone)]
pub struct Params {
    values: BTreeMap<String, String>,
    meta: &'static MetaData,
}

impl Params {
    /// Parameters taken from `OCF_RESKEY_<name>` for every declared name.
    pub fn from_env(meta: &'static MetaData) -> Params {
        let mut values = BTreeMap::new();
        for p in meta.params {
            if let Ok(v) = std::env::var(format!("OCF_RESKEY_{}", p.name)) {
                values.insert(p.name.to_string(), v);
            }
        }
        Params { values, meta }
    }

    /// Parameters from an explicit list (tests, benchmarks).
    pub fn from_pairs(meta: &'static MetaData, pairs: &[(&str, &str)]) -> Params {
        Params {
            values: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            meta,
        }
    }

    /// Sets a parameter (v1 arguments, configuration files).
    pub fn set(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_string(), value.to_string());
    }

    /// True if the parameter was given (not just defaulted), even if empty.
    pub fn given(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The value, or the meta-data default; `None` when neither is set or
    /// the value is empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        let v = self.values.get(name).map(String::as_str).or_else(|| {
            self.meta
                .params
                .iter()
                .find(|p| p.name == name)
                .and_then(|p| p.default)
        });
        v.filter(|s| !s.is_empty())
    }

    /// A mandatory parameter.
    pub fn require(&self, name: &str) -> Result<&str, AgentError> {
        self.get(name)
            .ok_or_else(|| AgentError::configured(format!("the {name} parameter is mandatory")))
    }

    /// An unsigned integer parameter.
    pub fn u32(&self, name: &str) -> Result<Option<u32>, AgentError> {
        self.get(name)
            .map(|v| {
                v.trim().parse().map_err(|_| {
                    AgentError::configured(format!(
                        "parameter {name}={v:?} is not a non-negative integer"
                    ))
                })
            })
            .transpose()
    }

    /// A boolean parameter (yes/no, true/false, 1/0, on/off).
    pub fn bool(&self, name: &str) -> Result<bool, AgentError> {
        match self.get(name) {
            None => Ok(false),
            Some(v) => parse_bool(v).ok_or_else(|| {
                AgentError::configured(format!("parameter {name}={v:?} is not a boolean"))
            }),
        }
    }
}

/// Whether the resource is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub running: bool,
    /// What was seen ("10.0.0.5/24 on eth0", "director"...).
    pub detail: String,
}

impl State {
    pub fn running(detail: impl Into<String>) -> State {
        State {
            running: true,
            detail: detail.into(),
        }
    }
    pub fn stopped(detail: impl Into<String>) -> State {
        State {
            running: false,
            detail: detail.into(),
        }
    }
}

/// What the runner knows about the call, handed to every action.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub mode: Mode,
    pub action: Action,
    pub log: Logger,
    /// `monitor` with interval 0 (OCF probe).
    pub probe: bool,
    /// The action timeout the caller gave (OCF), or a default of 20 s.
    pub timeout: Duration,
    /// OCF_CHECK_LEVEL (monitor depth).
    pub check_level: u32,
}

/// One resource agent. The runner calls `validate` before every action but
/// meta-data/usage, and hands the result to the action.
pub trait Agent {
    /// The checked configuration the actions work with.
    type Config;

    /// Name, descriptions, parameters and actions (for meta-data).
    fn meta(&self) -> &'static MetaData;

    /// The usage line's argument part for v1 mode, e.g. `ip[/bits[/nic]]`.
    fn v1_usage(&self) -> &'static str {
        ""
    }

    /// Maps heartbeat v1 arguments (`IPaddr::a::b` → `["a","b"]`) onto
    /// parameters. Agents without arguments refuse any.
    fn v1_args(&self, args: &[String], _params: &mut Params) -> Result<(), AgentError> {
        if args.is_empty() {
            Ok(())
        } else {
            Err(AgentError::args(format!(
                "{} takes no arguments before the action, got {args:?}",
                self.meta().name
            )))
        }
    }

    /// Checks the parameters; changes nothing.
    fn validate(&self, params: &Params, ctx: &Ctx) -> Result<Self::Config, AgentError>;

    /// Start/stop need root (default true).
    fn needs_root(&self) -> bool {
        true
    }

    fn start(&self, cfg: &Self::Config, ctx: &Ctx) -> Result<(), AgentError>;
    fn stop(&self, cfg: &Self::Config, ctx: &Ctx) -> Result<(), AgentError>;

    /// `stop` when the parameters no longer validate (a rules file broken
    /// while the resource runs, an interface gone): an agent that can
    /// release what it holds from its own record does it here, so a broken
    /// configuration never blocks a stop (and so a failover). `None`: the
    /// validation error stands.
    fn stop_unvalidated(&self, _params: &Params, _ctx: &Ctx) -> Option<Result<(), AgentError>> {
        None
    }
    fn monitor(&self, cfg: &Self::Config, ctx: &Ctx) -> Result<State, AgentError>;

    /// Re-reads the configuration without a restart. `None` = not supported.
    fn reload(&self, _cfg: &Self::Config, _ctx: &Ctx) -> Option<Result<(), AgentError>> {
        None
    }
}

fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some()
}

/// Works out the mode from the arguments (verb last) and the environment:
/// arguments before the verb mean heartbeat v1; the variables every OCF
/// caller sets (ocf-tester, crm_resource, pacemaker) or an OCF-only action
/// mean OCF; heartbeat's `HA_CURHOST` means v1; anything else is LSB
/// (which also takes `OCF_RESKEY_*` parameters from the environment).
pub fn detect_mode(args: &[String], env_has: impl Fn(&str) -> bool) -> Mode {
    if args.len() > 1 {
        return Mode::V1;
    }
    let ocf_only = args
        .first()
        .and_then(|a| Action::parse(a))
        .is_some_and(|a| {
            matches!(
                a,
                Action::Monitor
                    | Action::ValidateAll
                    | Action::MigrateTo
                    | Action::MigrateFrom
                    | Action::Notify
                    | Action::Promote
                    | Action::Demote
            )
        });
    if ocf_only
        || env_has("OCF_RESOURCE_INSTANCE")
        || env_has("OCF_RA_VERSION_MAJOR")
        || env_has("__OCF_ACTION")
    {
        return Mode::Ocf;
    }
    if env_has("HA_CURHOST") {
        return Mode::V1;
    }
    Mode::Lsb
}

fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

fn usage<A: Agent>(agent: &A, to_stdout: bool) {
    let md = agent.meta();
    let v1 = agent.v1_usage();
    let text = format!(
        "usage: {name} {{start|stop|status|monitor|restart|try-restart|reload|force-reload|validate-all|meta-data|usage}}\n       {name} {v1}{sp}{{start|stop|status}}   (heartbeat v1)\n",
        name = md.name,
        sp = if v1.is_empty() { "" } else { " " },
    );
    if to_stdout {
        print!("{text}");
    } else {
        eprint!("{text}");
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs the agent for this process's arguments and environment.
pub fn main<A: Agent>(agent: A) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = detect_mode(&args, env_set);
    let md = agent.meta();
    let Some(verb) = args.last() else {
        usage(&agent, false);
        return exit(Rc::ErrArgs as u8);
    };
    let instance = std::env::var("OCF_RESOURCE_INSTANCE").ok();
    let log = Logger::new(md.name, instance.as_deref(), mode == Mode::Ocf);
    let Some(action) = Action::parse(verb) else {
        usage(&agent, false);
        log.exit_reason(&format!("unknown action {verb:?}"));
        return exit(if mode == Mode::Ocf {
            Rc::ErrUnimplemented as u8
        } else {
            Rc::ErrArgs as u8
        });
    };
    match action {
        Action::MetaData => {
            let _ = std::io::stdout().write_all(md.to_xml().as_bytes());
            return exit(0);
        }
        Action::Usage => {
            usage(&agent, true);
            return exit(0);
        }
        _ => {}
    }
    let meta_env = |k: &str| std::env::var(format!("OCF_RESKEY_CRM_meta_{k}")).ok();
    let interval = meta_env("interval");
    let ctx = Ctx {
        mode,
        action,
        log,
        probe: action == Action::Monitor && interval.as_deref() == Some("0"),
        timeout: meta_env("timeout")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(20)),
        check_level: std::env::var("OCF_CHECK_LEVEL")
            .or_else(|_| std::env::var("OCF_RESKEY_OCF_CHECK_LEVEL"))
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    };
    let rc = run_action(&agent, &args[..args.len() - 1], &ctx);
    exit(rc)
}

/// Collects the parameters for the mode, validates them and runs the
/// action. Returns the exit code; prints what the mode expects.
pub fn run_action<A: Agent>(agent: &A, v1_args: &[String], ctx: &Ctx) -> u8 {
    let md = agent.meta();
    let mut params = Params::from_env(md);
    let prepared = (|| {
        if ctx.mode == Mode::V1 {
            agent.v1_args(v1_args, &mut params)?;
        }
        agent.validate(&params, ctx)
    })();
    let status_verb = matches!(ctx.action, Action::Status | Action::Monitor);
    let fail = |e: AgentError| -> u8 {
        ctx.log.exit_reason(&e.reason);
        match ctx.mode {
            Mode::Ocf => e.rc as u8,
            // LSB status: 4 = status unknown
            _ if status_verb => 4,
            _ => e.rc as u8,
        }
    };
    let cfg = match prepared {
        Ok(c) => c,
        Err(e) => {
            if ctx.action == Action::Stop && (!agent.needs_root() || is_root()) {
                if let Some(r) = agent.stop_unvalidated(&params, ctx) {
                    ctx.log.warn(&format!(
                        "{}; stopping from the agent's own record",
                        e.reason
                    ));
                    return r.map(|_| 0).unwrap_or_else(fail);
                }
            }
            // An OCF probe on a node that lacks what the resource needs (its
            // interface, binary or file) finds it not running here, as
            // ocf_is_probe agents answer: a probe's error would be fatal.
            if ctx.probe
                && ctx.mode == Mode::Ocf
                && matches!(e.rc, Rc::ErrInstalled | Rc::ErrConfigured)
            {
                ctx.log
                    .info(&format!("probe: not running here ({})", e.reason));
                return Rc::NotRunning as u8;
            }
            if ctx.action == Action::Status && ctx.mode != Mode::Ocf {
                println!("stopped (configuration error)");
            }
            return fail(e);
        }
    };
    if matches!(
        ctx.action,
        Action::Start
            | Action::Stop
            | Action::Restart
            | Action::TryRestart
            | Action::Reload
            | Action::ForceReload
    ) && agent.needs_root()
        && !is_root()
    {
        return fail(AgentError::perm(format!(
            "{} {} needs root privileges",
            md.name,
            verb_name(ctx.action)
        )));
    }
    let result: Result<u8, AgentError> = match ctx.action {
        Action::ValidateAll => Ok(0),
        Action::Start => agent.start(&cfg, ctx).map(|_| 0),
        Action::Stop => agent.stop(&cfg, ctx).map(|_| 0),
        Action::Monitor | Action::Status => agent.monitor(&cfg, ctx).map(|st| {
            report_status(ctx, &st);
            match (ctx.mode, st.running) {
                (_, true) => 0,
                (Mode::Ocf, false) => Rc::NotRunning as u8,
                (_, false) => 3,
            }
        }),
        Action::Restart => agent
            .stop(&cfg, ctx)
            .and_then(|_| agent.start(&cfg, ctx))
            .map(|_| 0),
        Action::TryRestart => match agent.monitor(&cfg, ctx) {
            Ok(st) if st.running => agent
                .stop(&cfg, ctx)
                .and_then(|_| agent.start(&cfg, ctx))
                .map(|_| 0),
            Ok(_) => Ok(0),
            Err(e) => Err(e),
        },
        Action::Reload | Action::ForceReload => match agent.reload(&cfg, ctx) {
            Some(r) => r.map(|_| 0),
            None if ctx.action == Action::ForceReload => agent
                .stop(&cfg, ctx)
                .and_then(|_| agent.start(&cfg, ctx))
                .map(|_| 0),
            None => Ok(Rc::ErrUnimplemented as u8),
        },
        Action::MigrateTo
        | Action::MigrateFrom
        | Action::Notify
        | Action::Promote
        | Action::Demote => Ok(Rc::ErrUnimplemented as u8),
        Action::MetaData | Action::Usage => Ok(0),
    };
    result.unwrap_or_else(fail)
}

fn verb_name(a: Action) -> &'static str {
    match a {
        Action::Start => "start",
        Action::Stop => "stop",
        Action::Restart => "restart",
        Action::TryRestart => "try-restart",
        Action::Reload => "reload",
        Action::ForceReload => "force-reload",
        _ => "action",
    }
}

/// `status` prints the verdict on stdout in every mode (heartbeat v1 reads
/// it); OCF `monitor` prints nothing.
fn report_status(ctx: &Ctx, st: &State) {
    if ctx.action == Action::Monitor && ctx.mode == Mode::Ocf {
        ctx.log.debug(&format!(
            "{} ({})",
            if st.running { "running" } else { "stopped" },
            st.detail
        ));
        return;
    }
    let word = if st.running { "running" } else { "stopped" };
    if st.detail.is_empty() {
        println!("{word}");
    } else {
        println!("{word} ({})", st.detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn mode_detection() {
        let none = |_: &str| false;
        let v1 = s(&["10.0.0.1/24/eth0", "start"]);
        assert_eq!(detect_mode(&v1, none), Mode::V1);
        assert_eq!(detect_mode(&s(&["start"]), none), Mode::Lsb);
        assert_eq!(detect_mode(&s(&["status"]), none), Mode::Lsb);
        assert_eq!(detect_mode(&s(&["monitor"]), none), Mode::Ocf);
        assert_eq!(detect_mode(&s(&["validate-all"]), none), Mode::Ocf);
        let ocf = |k: &str| k == "OCF_RESOURCE_INSTANCE";
        assert_eq!(detect_mode(&s(&["start"]), ocf), Mode::Ocf);
        let crm = |k: &str| k == "OCF_RA_VERSION_MAJOR";
        assert_eq!(detect_mode(&s(&["stop"]), crm), Mode::Ocf);
        let hb = |k: &str| k == "HA_CURHOST" || k == "OCF_ROOT";
        assert_eq!(detect_mode(&s(&["status"]), hb), Mode::V1);
        // arguments before the verb always mean heartbeat v1
        assert_eq!(detect_mode(&s(&["a", "status"]), ocf), Mode::V1);
    }
}
