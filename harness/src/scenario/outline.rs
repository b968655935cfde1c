//! A scenario as plain data, for a caller that wants to know what a file
//! will do without its parser's types: each step's host, action and value
//! as written, each check's parameters (variables resolved, addresses and
//! secrets as placeholders), the given state, the defects.

use super::model::Scenario;
use crate::platform::Platform;
use crate::vars::Vars;
use crate::vocab::Defect;

/// What a scenario does, step by step and check by check.
#[derive(Debug, Clone)]
pub struct Outline {
    /// The steps, in order (a base's first, for a file that extends one).
    pub steps: Vec<StepOutline>,
    /// The checks, in file order.
    pub checks: Vec<CheckOutline>,
    /// The state before step 1, if the file sets one.
    pub given: Option<GivenOutline>,
    /// The defects the file documents.
    pub defects: Vec<Defect>,
    /// The hosts that get a certificate of their own from the lab's CA.
    pub certificates: Vec<String>,
    /// The spare PostgreSQL hosts (there to restore into): a run starts
    /// one only when a step or check of it names it.
    pub spares: Vec<String>,
    /// Why the scenario does not run on the platform asked about (`requires`), if it does not.
    pub unsupported: Option<String>,
}

/// One step.
#[derive(Debug, Clone)]
pub struct StepOutline {
    /// Its id (`8-restore`).
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its action's key (`run`, `sql`, `load`, ...).
    pub action: &'static str,
    /// The action's value as the file writes it (`{variables}` unresolved).
    pub value: toml::Value,
    /// The defect its outcome is evidence of.
    pub defect: Option<String>,
    /// Why it does not run on the platform asked about (`when`), if it does not.
    pub skipped: Option<String>,
}

/// One check.
#[derive(Debug, Clone)]
pub struct CheckOutline {
    /// Its name (`standby_data`).
    pub name: &'static str,
    /// The steps after which it may start (empty: after the last).
    pub after: Vec<String>,
    /// It takes a minute or more (runs with `--slow`).
    pub slow: bool,
    /// Its parameters, variables resolved (host addresses and secrets as placeholders).
    pub params: toml::Table,
}

/// The `[given]` state.
#[derive(Debug, Clone)]
pub struct GivenOutline {
    /// The host that holds the table.
    pub host: String,
    /// The table's name.
    pub table: String,
    /// How many rows it gets.
    pub rows: u32,
}

impl Scenario {
    /// What the scenario does on `platform`, as plain data.
    pub fn outline(&self, platform: Platform) -> Outline {
        let vars = Vars::declared(self, platform);
        let steps = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepOutline {
                id: s.id.get_ref().clone(),
                host: s.host.get_ref().clone(),
                action: s.action.name(),
                value: value_of(self.action_text(i)),
                defect: s.defect.as_ref().map(|d| d.get_ref().clone()),
                skipped: s.skipped_on(platform),
            })
            .collect();
        let checks = self
            .verify
            .iter()
            .map(|v| CheckOutline {
                name: v.check.name(),
                after: v.after.iter().map(|a| a.get_ref().clone()).collect(),
                slow: v.check.is_slow(),
                params: v
                    .resolved(&vars)
                    .ok()
                    .and_then(|c| toml::Value::try_from(&c).ok())
                    .and_then(|t| t.as_table()?.values().next()?.as_table().cloned())
                    .unwrap_or_default(),
            })
            .collect();
        let given = self.given.as_ref().map(|g| GivenOutline { host: g.host.get_ref().clone(), table: g.table.clone(), rows: g.rows });
        let certificates = self.hosts.iter().filter(|h| h.certificate).map(|h| h.name.get_ref().clone()).collect();
        let spares = self.spares().map(|h| h.name.get_ref().clone()).collect();
        Outline { steps, checks, given, defects: self.defects.clone(), certificates, spares, unsupported: self.unsupported_on(platform) }
    }
}

/// The TOML value written at `span` of `text`.
fn value_of(written: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {written}")).ok().and_then(|mut t| t.remove("v")).unwrap_or(toml::Value::Boolean(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outline_has_each_step_as_written_and_each_check_resolved() {
        let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/tutorial.toml"));
        let scn = Scenario::load(path).expect("the shipped tutorial");
        let o = scn.outline(Platform::Debian11);
        assert_eq!(o.steps.len(), scn.steps.len());
        let install = o.steps.iter().find(|s| s.id == "1-install").expect("step 1-install");
        assert_eq!((install.action, install.value.as_str()), ("run", Some("sudo apt -y install pgbackrest")));
        let pitr = o.checks.iter().find(|c| c.name == "pitr").expect("a pitr check");
        assert_eq!(pitr.params["stanza"].as_str(), Some("tutorial"), "{:?}", pitr.params);
        assert!(o.given.is_some_and(|g| g.rows == 100));
    }
}
