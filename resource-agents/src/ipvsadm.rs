//! `ipvsadm`: the IPVS rules loader of the reference chain. It replaces
//! RHEL's `/etc/init.d/ipvsadm` (never install it over `/usr/sbin/ipvsadm`,
//! the admin tool).
//!
//! `start` reads the rules file (default `/etc/sysconfig/ipvsadm`, the
//! `ipvsadm-save` format) and makes the kernel table hold those services
//! exactly, through `hanet::ipvs` (generic netlink; no ipvsadm process),
//! leaving every other service alone. It records what it added — whole
//! services, and destinations it added to services that were already
//! there — in the state directory; `stop` removes exactly that. `monitor`
//! checks that the kernel table still holds every service of the file
//! (`OCF_CHECK_LEVEL` ≥ 10: with the file's attributes and destinations,
//! which ldirectord normally changes, hence not the default).
//!
//! The IPVS backend is the kernel unless `HANET_IPVS_BACKEND` says
//! `file:/path` (tests on kernels without IPVS).

use std::collections::BTreeSet;
use std::path::PathBuf;

use hanet::ipvs::{self, diff, IpvsBackend, IpvsError, Op, Scope, ServiceKey, Table};

use crate::agent::{Agent, AgentError, Ctx, Params, State};
use crate::ocf::{ActionSpec, MetaData, ParamSpec};
use crate::state;

/// Default rules file.
pub const DEFAULT_RULES: &str = "/etc/sysconfig/ipvsadm";

static PARAMS: [ParamSpec; 1] = [ParamSpec::new("rules", "IPVS rules file")
    .unique()
    .default(DEFAULT_RULES)
    .long("The rules to load, in ipvsadm-save format (-A -t VIP:80 -s rr / -a -t VIP:80 -r RIP:80 -i -w 1).")];

static ACTIONS: [ActionSpec; 7] = [
    ActionSpec::new("start", "20s"),
    ActionSpec::new("stop", "20s"),
    ActionSpec::new("status", "20s"),
    ActionSpec::monitor("20s", "10s"),
    ActionSpec::new("reload", "20s"),
    ActionSpec::new("meta-data", "5s"),
    ActionSpec::new("validate-all", "20s"),
];

static META: MetaData = MetaData {
    name: "ipvsadm",
    shortdesc: "Loads IPVS rules into the kernel (heartbeat-rs)",
    longdesc: "start loads the IPVS virtual services of a rules file (ipvsadm-save format, \
               default /etc/sysconfig/ipvsadm) into the kernel over generic netlink, touching \
               no other service; stop removes what start added; monitor checks that the \
               kernel still holds the file's services. reload applies a changed file.",
    params: &PARAMS,
    actions: &ACTIONS,
};

/// The checked parameters: the file and the table it describes.
#[derive(Debug, Clone)]
pub struct Config {
    pub rules: PathBuf,
    pub table: Table,
}

/// The `ipvsadm` agent.
pub struct IpvsadmAgent;

fn state_name(rules: &std::path::Path) -> String {
    format!("ipvsadm-{}", rules.display()).replace('/', "_")
}

fn backend() -> Result<Box<dyn IpvsBackend + Send>, AgentError> {
    ipvs::open_from_env().map_err(ipvs_err)
}

fn ipvs_err(e: IpvsError) -> AgentError {
    match e {
        IpvsError::NotAvailable => AgentError::installed(e.to_string()),
        IpvsError::Invalid(m) => AgentError::configured(m),
        e => AgentError::generic(e.to_string()),
    }
}

/// What start added: the commands to undo, as ipvsadm `-A`/`-a` lines.
fn read_added(rules: &std::path::Path) -> Result<Option<Vec<Op>>, AgentError> {
    let Some(text) = state::read(&state_name(rules))? else {
        return Ok(None);
    };
    let parsed = ipvs::parse_rules(&text).map_err(|e| {
        AgentError::generic(format!(
            "corrupt state file {}: {e}",
            state::path(&state_name(rules)).display()
        ))
    })?;
    Ok(Some(
        parsed.iter().filter_map(|r| r.command.to_op()).collect(),
    ))
}

fn write_added(rules: &std::path::Path, ops: &[Op]) -> Result<(), AgentError> {
    let mut text = format!("# added by the ipvsadm agent from {}\n", rules.display());
    for op in ops {
        text.push_str(&ipvs::rules::op_command(op));
        text.push('\n');
    }
    state::write(&state_name(rules), &text)
}

fn services_in(t: &Table) -> BTreeSet<ServiceKey> {
    t.keys().copied().collect()
}

/// Undoes what `start` recorded adding for `rules` (what is still there)
/// and removes the record.
fn unload(rules: &std::path::Path, ctx: &Ctx) -> Result<(), AgentError> {
    let Some(added) = read_added(rules)? else {
        ctx.log.debug("nothing loaded by this agent");
        return Ok(());
    };
    let mut be = backend()?;
    let current = be.table().map_err(ipvs_err)?;
    let mut undo = Vec::new();
    for op in &added {
        match op {
            Op::AddService(s) if current.get(&s.key).is_some() => undo.push(Op::DelService(s.key)),
            Op::AddDest(k, d) if current.dest(k, &d.key()).is_some() => {
                let owned_service = added
                    .iter()
                    .any(|o| matches!(o, Op::AddService(s) if s.key == *k));
                if !owned_service {
                    undo.push(Op::DelDest(*k, d.key()));
                }
            }
            _ => {}
        }
    }
    for op in &undo {
        ctx.log.info(&format!("ipvsadm {op}"));
    }
    be.apply(&undo).map_err(ipvs_err)?;
    state::remove(&state_name(rules))
}

impl IpvsadmAgent {
    /// Loads `cfg.table`, merging what it adds into the recorded set.
    fn load(&self, cfg: &Config, ctx: &Ctx, reload_from: Option<&Table>) -> Result<(), AgentError> {
        let mut be = backend()?;
        let current = be.table().map_err(ipvs_err)?;
        // services of the previous file that the new one drops are ours to remove
        let scope = match reload_from {
            Some(old) => Scope::Services(services_in(old)),
            None => Scope::Desired,
        };
        let ops = diff(&current, &cfg.table, &scope);
        let mut added = read_added(&cfg.rules)?.unwrap_or_default();
        for op in &ops {
            match op {
                Op::AddService(_) => added.push(op.clone()),
                Op::AddDest(k, _) if current.get(k).is_some() => added.push(op.clone()),
                _ => {}
            }
        }
        // dropped services are no longer ours to remember
        let keep: BTreeSet<ServiceKey> = services_in(&cfg.table);
        added.retain(|op| keep.contains(op.service_key()) || !matches!(op, Op::AddService(_)));
        // record before applying: an interrupted start must still be undoable
        write_added(&cfg.rules, &added)?;
        for op in &ops {
            ctx.log.info(&format!("ipvsadm {op}"));
        }
        be.apply(&ops).map_err(ipvs_err)?;
        ctx.log.info(&format!(
            "{} service(s) from {} loaded into {} ({} change(s))",
            cfg.table.len(),
            cfg.rules.display(),
            be.describe(),
            ops.len()
        ));
        Ok(())
    }
}

impl Agent for IpvsadmAgent {
    type Config = Config;

    fn meta(&self) -> &'static MetaData {
        &META
    }

    fn v1_usage(&self) -> &'static str {
        "[RULESFILE]"
    }

    fn v1_args(&self, args: &[String], params: &mut Params) -> Result<(), AgentError> {
        match args {
            [] => Ok(()),
            [f] => {
                params.set("rules", f);
                Ok(())
            }
            _ => Err(AgentError::args(format!(
                "ipvsadm takes at most a rules file before the action, got {args:?}"
            ))),
        }
    }

    fn validate(&self, params: &Params, _ctx: &Ctx) -> Result<Config, AgentError> {
        let rules = PathBuf::from(params.get("rules").unwrap_or(DEFAULT_RULES));
        let table =
            ipvs::read_rules_file(&rules).map_err(|e| AgentError::configured(e.to_string()))?;
        Ok(Config { rules, table })
    }

    fn start(&self, cfg: &Config, ctx: &Ctx) -> Result<(), AgentError> {
        // Started already (heartbeatd re-runs start on the groups it keeps
        // after a split brain): leave the table alone, or the real servers
        // ldirectord has taken out or quiesced since would come back.
        // `reload` applies a changed file.
        if read_added(&cfg.rules)?.is_some() {
            let level0 = Ctx {
                check_level: 0,
                ..ctx.clone()
            };
            let st = self.monitor(cfg, &level0)?;
            if st.running {
                ctx.log.info(&format!(
                    "{} is loaded already ({}): table left as it is",
                    cfg.rules.display(),
                    st.detail
                ));
                return Ok(());
            }
        }
        self.load(cfg, ctx, None)
    }

    fn stop(&self, cfg: &Config, ctx: &Ctx) -> Result<(), AgentError> {
        unload(&cfg.rules, ctx)
    }

    fn stop_unvalidated(&self, params: &Params, ctx: &Ctx) -> Option<Result<(), AgentError>> {
        // stop undoes what the state file records: the rules file (broken
        // since, or gone) is not needed
        let rules = PathBuf::from(params.get("rules").unwrap_or(DEFAULT_RULES));
        Some(unload(&rules, ctx))
    }

    fn monitor(&self, cfg: &Config, ctx: &Ctx) -> Result<State, AgentError> {
        if read_added(&cfg.rules)?.is_none() {
            return Ok(State::stopped(format!(
                "{} not loaded",
                cfg.rules.display()
            )));
        }
        let mut be = backend()?;
        let current = be.table().map_err(ipvs_err)?;
        let missing: Vec<String> = cfg
            .table
            .keys()
            .filter(|k| current.get(k).is_none())
            .map(|k| k.to_string())
            .collect();
        if !missing.is_empty() {
            return Ok(State::stopped(format!(
                "service(s) {} of {} missing from the IPVS table",
                missing.join(", "),
                cfg.rules.display()
            )));
        }
        if ctx.check_level >= 10 {
            let ours = current.subset(cfg.table.keys());
            if !ours.same_config(&cfg.table) {
                return Ok(State::stopped(format!(
                    "the IPVS table differs from {}",
                    cfg.rules.display()
                )));
            }
        }
        Ok(State::running(format!(
            "{} service(s) of {} in {}",
            cfg.table.len(),
            cfg.rules.display(),
            be.describe()
        )))
    }

    fn reload(&self, cfg: &Config, ctx: &Ctx) -> Option<Result<(), AgentError>> {
        Some((|| {
            let Some(added) = read_added(&cfg.rules)? else {
                return Err(AgentError::new(
                    crate::ocf::Rc::NotRunning,
                    format!("{} is not loaded", cfg.rules.display()),
                ));
            };
            let mut old = Table::new();
            for op in &added {
                if let Op::AddService(s) = op {
                    old.insert_service(s.clone());
                }
            }
            self.load(cfg, ctx, Some(&old))
        })())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_are_flat() {
        assert_eq!(
            state_name(std::path::Path::new("/etc/sysconfig/ipvsadm")),
            "ipvsadm-_etc_sysconfig_ipvsadm"
        );
    }
}
