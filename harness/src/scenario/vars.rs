//! `{name}` variables: one set, built the same way for validation (with
//! placeholders) and for a run (with the lab's addresses and fresh secrets),
//! from a scenario's hosts, secrets and `[vars]`.

use super::model::Scenario;
use crate::error::{Error, Result};
use crate::platform::Platform;
pub(super) use crate::vars::{builtin, Vars, BUILTIN_DOCS};

impl Vars {
    /// Builds the set: built-ins, `{<host>.ip}` and `{<host>.name}` per host,
    /// what the lab will provide (placeholders: see [`Vars::provided`]), `{secret.NAME}`, the file's `[vars]`, then `--set` overrides (only of
    /// declared vars). `ip` and `secret` give the values.
    pub(crate) fn build(
        scn: &Scenario,
        platform: Platform,
        sets: &[(String, String)],
        ip: &dyn Fn(&str) -> String,
        secret: &mut dyn FnMut(&str) -> Result<String>,
    ) -> Result<Vars> {
        let mut v = builtin(platform);
        for h in &scn.hosts {
            let name = h.name.get_ref();
            v.insert(format!("{name}.ip"), ip(name));
            v.insert(format!("{name}.name"), name.clone());
        }
        // What the lab makes for its hosts (its CA, each store's key): placeholders until it exists.
        let is_store = |h: &&super::model::HostDecl| h.kind == Some(crate::vocab::HostKind::S3);
        let stores: Vec<&str> = scn.hosts.iter().filter(is_store).map(|h| h.name.get_ref().as_str()).collect();
        // A store's `certificate` is refused (it has its own): it brings no `{tls.*}`.
        let certificates = scn.hosts.iter().any(|h| h.certificate && !is_store(&h));
        v.extend(crate::lab::provided::declared_vars(&stores, certificates));
        for s in &scn.secrets {
            v.insert(format!("secret.{s}"), secret(s)?);
        }
        v.extend(scn.vars.iter().map(|(k, val)| (k.clone(), val.clone())));
        for (k, val) in sets {
            if !scn.vars.contains_key(k) {
                let known = scn.vars.keys().cloned().collect::<Vec<_>>().join(", ");
                return Err(Error::Usage(format!("--set {k}: the scenario has no such var (vars: {known})")));
            }
            v.insert(k.clone(), val.clone());
        }
        Ok(Vars(v))
    }

    /// The set with the values of what the lab made for its hosts (its
    /// CA, each store's key) in place of their placeholders.
    pub(crate) fn provided(mut self, lab: &crate::lab::Lab) -> Vars {
        self.0.extend(lab.provided_vars());
        self
    }

    /// The set with placeholders for what only a run knows (addresses, secrets).
    pub(crate) fn declared(scn: &Scenario, platform: Platform) -> Vars {
        Vars::build(scn, platform, &[], &|h| format!("<{h}.ip>"), &mut |_| Ok("<secret>".into())).expect("no --set given")
    }
}
