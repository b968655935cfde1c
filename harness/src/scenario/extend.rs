//! `extends`: a scenario that starts where another one (through one of its
//! steps) leaves the lab, so a fault scenario does not repeat the setup it
//! breaks. The base is read and checked as a file of its own; its problems
//! are reported there, not here.

use std::path::{Path, PathBuf};

use super::model::{Base, Extends, HostDecl, Scenario};
use super::Problem;

/// What this file set itself (a base's value is kept otherwise).
pub(super) struct Own {
    pub platform: bool,
    pub parallel: bool,
}

/// Where `extends.scenario` points: relative to this file, `.toml` optional.
pub(super) fn base_path(file: &Path, name: &str) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("."));
    if name.ends_with(".toml") {
        dir.join(name)
    } else {
        dir.join(format!("{name}.toml"))
    }
}

/// Puts the base's hosts (amended by this file's of the same name), variables, secrets, defects, given state and
/// steps (through `through`) in front of this file's own.
pub(super) fn extend(scn: &mut Scenario, ext: &Extends, own: Own) -> Vec<Problem> {
    let path = base_path(&scn.path, ext.scenario.get_ref());
    let at = Some(ext.scenario.span());
    let base = match Scenario::load(&path) {
        Ok(b) => b,
        Err(e) => {
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            let help = format!("check it on its own: pglab validate {}", path.display());
            return vec![Problem::new(at, format!("`extends.scenario`: the base {} cannot be used: {first}", path.display()), "this base").help(help)];
        }
    };
    if base.base.is_some() {
        let msg = format!("`extends.scenario`: {} extends another scenario itself; a base must be a whole scenario", path.display());
        return vec![Problem::new(at, msg, "a base that extends")];
    }
    let keep = match &ext.through {
        None => base.steps.len(),
        Some(t) => match base.steps.iter().position(|s| s.id.get_ref() == t.get_ref()) {
            Some(i) => i + 1,
            None => {
                let ids: Vec<&str> = base.steps.iter().map(|s| s.id.get_ref().as_str()).collect();
                let p = Problem::new(Some(t.span()), format!("`extends.through`: {} has no step `{}`", base.name, t.get_ref()), "not a step of the base");
                return vec![p.help(format!("its steps: {}", ids.join(", ")))];
            }
        },
    };
    let Scenario { platform, requires, vars, secrets, parallel, hosts, given, defects, mut steps, source, .. } = base;
    steps.truncate(keep);
    scn.base = Some(Base { path, hosts: hosts.len(), steps: steps.len(), source, at: ext.scenario.span() });
    if !own.platform {
        scn.platform = platform;
    }
    if !own.parallel {
        scn.parallel = parallel;
    }
    scn.requires.splice(0..0, requires);
    let mut merged = vars;
    merged.append(&mut scn.vars);
    scn.vars = merged;
    for s in secrets {
        if !scn.secrets.contains(&s) {
            scn.secrets.push(s);
        }
    }
    scn.given = scn.given.take().or(given);
    // A base host declared again here (by name) is amended: this file's declaration wins.
    let hosts: Vec<HostDecl> = hosts
        .into_iter()
        .map(|h| match scn.hosts.iter().position(|o| o.name.get_ref() == h.name.get_ref()) {
            // The base's kind stays unless this file says another.
            Some(i) => {
                let mut again = scn.hosts.remove(i);
                again.kind = again.kind.or(h.kind);
                again.certificate |= h.certificate;
                again
            }
            None => h,
        })
        .collect();
    scn.hosts.splice(0..0, hosts);
    scn.defects.splice(0..0, defects);
    scn.steps.splice(0..0, steps);
    Vec::new()
}

/// The name a portable copy gives its base: `pglab-base.toml` beside it.
pub(crate) const PORTABLE_BASE: &str = "pglab-base";

impl Scenario {
    /// This file's text as it can live away from its directory (a lab's
    /// state, a bug bundle): `extends` then names `pglab-base.toml` beside it,
    /// which holds [`Base::source`].
    pub(crate) fn portable_source(&self) -> String {
        let mut text = self.source.clone();
        if let Some(b) = &self.base {
            text.replace_range(b.at.clone(), &format!("\"{PORTABLE_BASE}\""));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_portable_copy_with_its_base_beside_it_is_the_same_scenario() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/partition.toml");
        let scn = Scenario::load(&shipped).unwrap();
        let base = scn.base.as_ref().expect("partition extends the tutorial");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("partition.toml"), scn.portable_source()).unwrap();
        std::fs::write(dir.path().join(format!("{PORTABLE_BASE}.toml")), &base.source).unwrap();
        let copy = Scenario::load(&dir.path().join("partition.toml")).unwrap();
        let ids = |s: &Scenario| s.steps.iter().map(|x| x.id.get_ref().clone()).collect::<Vec<_>>();
        assert_eq!(ids(&copy), ids(&scn));
        assert_eq!(copy.hosts.len(), scn.hosts.len());
        assert!(copy.source.contains(&format!("scenario = \"{PORTABLE_BASE}\"")), "{}", copy.source);
    }
}
