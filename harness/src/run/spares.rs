//! Spare hosts a run leaves unstarted. A spare (a PostgreSQL host of role
//! `spare`, there to restore into) that no step of the run and no check of
//! its plan names would boot a cluster and, in a lab started from a
//! checkpoint, copy its data directory up, for nothing: the tutorial's
//! `pitr` in every file that extends the tutorial and never restores.
//!
//! Leaving one out changes nothing a run can see: its name and address
//! stay reserved (the lab's hosts file lists it), and a checkpoint made
//! without it holds a host no step through its point touched, so a later
//! run that names it starts it fresh from the image, as it would have been.

use super::select::PlannedCheck;
use crate::scenario::Scenario;

/// The spares that nothing of a run through step `last` with `checks`
/// names: its steps' hosts, what their actions name or say, the given
/// state's host, the checks' parameters, `[chaos]`, the variables and
/// `--set` values. A name anywhere in that text counts, so a doubt
/// starts the host.
pub(crate) fn idle(scn: &Scenario, last: usize, checks: &[PlannedCheck], sets: &[(String, String)]) -> Vec<String> {
    // A spare with a certificate of its own starts with the lab: a lab
    // restored later keeps its CA's certificate, not the key to issue one.
    let spares = scn.spares().filter(|h| !h.certificate).map(|h| h.name.get_ref());
    spares.filter(|name| !named(scn, name, last, checks, sets)).cloned().collect()
}

fn named(scn: &Scenario, name: &str, last: usize, checks: &[PlannedCheck], sets: &[(String, String)]) -> bool {
    let by_step = scn
        .steps
        .iter()
        .enumerate()
        .take(last + 1)
        .any(|(i, s)| s.host.get_ref() == name || s.action.named().iter().any(|n| n.host.get_ref() == name) || mentions(scn.action_text(i), name));
    let by_check = checks.iter().any(|c| scn.verify.get(c.index).is_some_and(|v| mentions(&v.params.to_string(), name)));
    let by_chaos = scn.chaos.as_ref().is_some_and(|c| c.hosts.iter().any(|h| h.get_ref() == name));
    let by_given = scn.given.as_ref().is_some_and(|g| g.host.get_ref() == name);
    let by_vars = scn.vars.values().chain(sets.iter().map(|(_, v)| v)).any(|v| mentions(v, name));
    by_step || by_check || by_chaos || by_given || by_vars
}

/// Whether `text` has `name` as a word of a host name (`ssh pitr`,
/// `{pitr.ip}`, `host=pitr`; not `pglab_pitr` or `pitr-2`), or of an
/// address (`10.1.0.3`, not `10.1.0.31`).
pub(super) fn mentions(text: &str, name: &str) -> bool {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(part) && !after.is_some_and(part)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::select;
    use std::path::Path;

    fn shipped(name: &str) -> Scenario {
        Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.toml"))).unwrap()
    }

    fn idle_in(scn: &Scenario, through: Option<&str>, checks: bool) -> Vec<String> {
        let last = through.map_or(scn.steps.len() - 1, |t| scn.step_index(t).unwrap());
        let planned = if checks { select::planned(scn, true, &[]) } else { Vec::new() };
        idle(scn, last, &planned, &[])
    }

    #[test]
    fn a_word_of_a_host_name_not_a_part_of_another() {
        for said in ["ssh pitr true", "host={pitr.ip}", "\"pitr\"", "pitr", "x pitr\ny"] {
            assert!(mentions(said, "pitr"), "{said}");
        }
        for not in ["pglab_pitr", "pitr-2", "spitr", "pitr_x", "pit r"] {
            assert!(!mentions(not, "pitr"), "{not}");
        }
    }

    #[test]
    fn the_tutorials_spare_starts_for_its_checks_only() {
        let tutorial = shipped("tutorial");
        assert_eq!(idle_in(&tutorial, None, true), Vec::<String>::new(), "the PITR and outsider checks name pitr");
        assert_eq!(idle_in(&tutorial, Some("8-streaming"), false), ["pitr"], "no step through 8 names it");
        assert_eq!(idle_in(&tutorial, None, false), ["pitr"], "nor any later step");
    }

    #[test]
    fn a_file_that_extends_the_tutorial_starts_it_when_it_names_it() {
        assert_eq!(idle_in(&shipped("partition"), None, true), ["pitr"]);
        // timeline's PITR across the switch restores into it.
        assert_eq!(idle_in(&shipped("timeline"), None, true), Vec::<String>::new());
    }

    #[test]
    fn a_spare_with_a_certificate_always_starts() {
        // tls-server's pitr has one: a checkpoint without it could not issue it later.
        let tls = shipped("tls-server");
        assert!(idle_in(&tls, Some("t0-no-ssh-standby"), false).is_empty());
    }

    #[test]
    fn a_set_value_or_a_variable_naming_it_starts_it() {
        let scn = shipped("partition");
        let last = scn.steps.len() - 1;
        assert!(idle(&scn, last, &[], &[("target".into(), "pitr".into())]).is_empty());
    }
}
