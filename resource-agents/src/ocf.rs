//! The OCF side of the contract: exit codes, action names, the parameter
//! model and the meta-data XML (valid against `ra-api-1.dtd`, DOCTYPE
//! included, OCF 1.0 features only).

use std::fmt::Write as _;

/// OCF exit codes (`ocf-returncodes`). LSB uses the same numbers for
/// everything but `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rc {
    Success = 0,
    ErrGeneric = 1,
    ErrArgs = 2,
    ErrUnimplemented = 3,
    ErrPerm = 4,
    ErrInstalled = 5,
    ErrConfigured = 6,
    NotRunning = 7,
}

impl Rc {
    /// The name crm_resource prints for the code.
    pub fn describe(self) -> &'static str {
        match self {
            Rc::Success => "ok",
            Rc::ErrGeneric => "error",
            Rc::ErrArgs => "invalid parameter",
            Rc::ErrUnimplemented => "unimplemented feature",
            Rc::ErrPerm => "insufficient privileges",
            Rc::ErrInstalled => "not installed",
            Rc::ErrConfigured => "not configured",
            Rc::NotRunning => "not running",
        }
    }
}

/// The actions an agent may be asked for, in every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Monitor,
    Status,
    MetaData,
    ValidateAll,
    Reload,
    Restart,
    ForceReload,
    TryRestart,
    MigrateTo,
    MigrateFrom,
    Notify,
    Promote,
    Demote,
    Usage,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "monitor" => Action::Monitor,
            "status" => Action::Status,
            "meta-data" | "meta_data" | "metadata" => Action::MetaData,
            "validate-all" | "validate" => Action::ValidateAll,
            "reload" => Action::Reload,
            "restart" => Action::Restart,
            "force-reload" => Action::ForceReload,
            "try-restart" | "condrestart" => Action::TryRestart,
            "migrate_to" => Action::MigrateTo,
            "migrate_from" => Action::MigrateFrom,
            "notify" => Action::Notify,
            "promote" => Action::Promote,
            "demote" => Action::Demote,
            "usage" | "help" | "--help" | "-h" => Action::Usage,
            _ => return None,
        })
    }
}

/// The `content type` of a parameter (ra-api-1.dtd allows exactly these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Boolean,
    Time,
}

impl ParamType {
    fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
            ParamType::Time => "time",
        }
    }
}

/// One parameter of an agent, as meta-data describes it.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamType,
    pub default: Option<&'static str>,
    pub required: bool,
    pub unique: bool,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
}

impl ParamSpec {
    /// An optional string parameter with a default.
    pub const fn new(name: &'static str, shortdesc: &'static str) -> ParamSpec {
        ParamSpec {
            name,
            kind: ParamType::String,
            default: None,
            required: false,
            unique: false,
            shortdesc,
            longdesc: "",
        }
    }
    pub const fn kind(mut self, kind: ParamType) -> Self {
        self.kind = kind;
        self
    }
    pub const fn default(mut self, d: &'static str) -> Self {
        self.default = Some(d);
        self
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    pub const fn long(mut self, l: &'static str) -> Self {
        self.longdesc = l;
        self
    }
}

/// One `<action>` line of meta-data.
#[derive(Debug, Clone, Copy)]
pub struct ActionSpec {
    pub name: &'static str,
    pub timeout: &'static str,
    pub interval: Option<&'static str>,
    pub depth: Option<&'static str>,
}

impl ActionSpec {
    pub const fn new(name: &'static str, timeout: &'static str) -> ActionSpec {
        ActionSpec {
            name,
            timeout,
            interval: None,
            depth: None,
        }
    }
    pub const fn monitor(timeout: &'static str, interval: &'static str) -> ActionSpec {
        ActionSpec {
            name: "monitor",
            timeout,
            interval: Some(interval),
            depth: Some("0"),
        }
    }
}

/// Everything meta-data prints.
#[derive(Debug, Clone)]
pub struct MetaData {
    pub name: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    pub params: &'static [ParamSpec],
    pub actions: &'static [ActionSpec],
}

/// Escapes text for XML element content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

impl MetaData {
    /// The meta-data document.
    pub fn to_xml(&self) -> String {
        let mut x = String::new();
        let e = xml_escape;
        x.push_str("<?xml version=\"1.0\"?>\n");
        x.push_str("<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n");
        let _ = writeln!(
            x,
            "<resource-agent name=\"{}\" version=\"{}\">",
            e(self.name),
            env!("CARGO_PKG_VERSION")
        );
        x.push_str("<version>1.0</version>\n");
        let _ = writeln!(
            x,
            "<longdesc lang=\"en\">\n{}\n</longdesc>",
            e(self.longdesc)
        );
        let _ = writeln!(
            x,
            "<shortdesc lang=\"en\">{}</shortdesc>",
            e(self.shortdesc)
        );
        x.push_str("<parameters>\n");
        for p in self.params {
            let _ = writeln!(
                x,
                "<parameter name=\"{}\" unique=\"{}\" required=\"{}\">",
                e(p.name),
                p.unique as u8,
                p.required as u8
            );
            let long = if p.longdesc.is_empty() {
                p.shortdesc
            } else {
                p.longdesc
            };
            let _ = writeln!(x, "<longdesc lang=\"en\">\n{}\n</longdesc>", e(long));
            let _ = writeln!(x, "<shortdesc lang=\"en\">{}</shortdesc>", e(p.shortdesc));
            match p.default {
                Some(d) => {
                    let _ = writeln!(
                        x,
                        "<content type=\"{}\" default=\"{}\" />",
                        p.kind.name(),
                        e(d)
                    );
                }
                None => {
                    let _ = writeln!(x, "<content type=\"{}\" />", p.kind.name());
                }
            }
            x.push_str("</parameter>\n");
        }
        x.push_str("</parameters>\n<actions>\n");
        for a in self.actions {
            let _ = write!(x, "<action name=\"{}\" timeout=\"{}\"", a.name, a.timeout);
            if let Some(d) = a.depth {
                let _ = write!(x, " depth=\"{d}\"");
            }
            if let Some(i) = a.interval {
                let _ = write!(x, " interval=\"{i}\"");
            }
            x.push_str(" />\n");
        }
        x.push_str("</actions>\n</resource-agent>\n");
        x
    }
}

/// True for the values the OCF shell library's `ocf_is_true` accepts.
pub fn is_true(v: &str) -> bool {
    matches!(
        v,
        "yes" | "true" | "1" | "YES" | "TRUE" | "True" | "ja" | "on" | "ON" | "Yes" | "On"
    )
}

/// Parses an OCF boolean; `None` for anything that is neither true nor false.
pub fn parse_bool(v: &str) -> Option<bool> {
    if is_true(v) {
        Some(true)
    } else if matches!(
        v,
        "no" | "false" | "0" | "NO" | "FALSE" | "False" | "nein" | "off" | "OFF" | "No" | "Off"
    ) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static PARAMS: [ParamSpec; 2] = [
        ParamSpec::new("ip", "The IP address").required().unique(),
        ParamSpec::new("arp_count", "How many <ARPs> & co")
            .kind(ParamType::Integer)
            .default("5"),
    ];
    static ACTIONS: [ActionSpec; 2] = [
        ActionSpec::new("start", "20s"),
        ActionSpec::monitor("20s", "10s"),
    ];

    #[test]
    fn metadata_xml_shape() {
        let md = MetaData {
            name: "IPaddr",
            shortdesc: "Manages a VIP",
            longdesc: "Adds & removes",
            params: &PARAMS,
            actions: &ACTIONS,
        };
        let x = md.to_xml();
        assert!(x.starts_with(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n<resource-agent name=\"IPaddr\""
        ));
        assert!(x.contains("<parameter name=\"ip\" unique=\"1\" required=\"1\">"));
        assert!(x.contains("<content type=\"integer\" default=\"5\" />"));
        assert!(x.contains("How many &lt;ARPs&gt; &amp; co"));
        assert!(x.contains("Adds &amp; removes"));
        assert!(
            x.contains("<action name=\"monitor\" timeout=\"20s\" depth=\"0\" interval=\"10s\" />")
        );
        assert!(x.ends_with("</actions>\n</resource-agent>\n"));
    }

    #[test]
    fn actions_and_booleans() {
        assert_eq!(Action::parse("meta-data"), Some(Action::MetaData));
        assert_eq!(Action::parse("validate-all"), Some(Action::ValidateAll));
        assert_eq!(Action::parse("migrate_to"), Some(Action::MigrateTo));
        assert_eq!(Action::parse("frobnicate"), None);
        assert!(is_true("ja") && is_true("1") && !is_true("no"));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
