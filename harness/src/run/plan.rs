//! The plan of a scenario in words, for `pglab validate`: its hosts, its
//! steps by host lane and what each waits for, and when each check starts.

use std::fmt::Write;

use super::schedule::dependencies;
use crate::scenario::Scenario;

pub(crate) fn describe(scn: &Scenario) -> String {
    let mut out = String::new();
    let mode = if scn.parallel { "hosts work at once" } else { "one step at a time, in file order" };
    let _ =
        writeln!(out, "{}: {} hosts, {} steps ({mode}), {} checks, platform {}", scn.name, scn.hosts.len(), scn.steps.len(), scn.verify.len(), scn.platform);
    let not_on: Vec<String> =
        crate::platform::Platform::ALL.iter().filter_map(|p| scn.unsupported_on(*p).map(|why| why.replacen(&format!("{} needs ", scn.name), "", 1))).collect();
    if !not_on.is_empty() {
        let _ = writeln!(out, "  not supported everywhere: needs {}", not_on.join("; "));
    }
    let _ = writeln!(out, "  hosts:");
    for h in &scn.hosts {
        let cert = if h.certificate { " (its own certificate from the lab CA)" } else { "" };
        let _ = writeln!(out, "    {:<12} {}{cert}", h.name.get_ref(), h.role.name());
    }
    steps(&mut out, scn);
    if !scn.verify.is_empty() {
        let _ = writeln!(out, "  checks:");
    }
    for v in &scn.verify {
        let when = match v.after.as_slice() {
            [] => "after the last step, one at a time in file order".to_string(),
            after => format!(
                "as soon as {} done, beside the remaining steps",
                after.iter().map(|a| a.get_ref().as_str()).collect::<Vec<_>>().join(", ") + if after.len() > 1 { " are" } else { " is" }
            ),
        };
        let slow = if v.check.is_slow() { " (slow: with --slow)" } else { "" };
        let _ = writeln!(out, "    {:<14} {when}{slow}", v.check.name());
    }
    out
}

/// Steps per host lane, each with the steps of other lanes it waits for.
fn steps(out: &mut String, scn: &Scenario) {
    let deps = dependencies(scn);
    if !scn.parallel {
        let _ = writeln!(out, "  steps:");
        for (i, s) in scn.steps.iter().enumerate() {
            let _ = writeln!(out, "    {:>3}. {:<28} on {}", i + 1, s.id.get_ref(), s.host.get_ref());
        }
        return;
    }
    let _ = writeln!(out, "  steps, by host lane (each waits for the one above it on its lane):");
    for h in &scn.hosts {
        let lane: Vec<usize> = (0..scn.steps.len()).filter(|i| scn.steps[*i].host.get_ref() == h.name.get_ref()).collect();
        if lane.is_empty() {
            continue;
        }
        let _ = writeln!(out, "    {}:", h.name.get_ref());
        for i in lane {
            let s = &scn.steps[i];
            let others: Vec<String> = deps[i]
                .iter()
                .filter(|d| scn.steps[**d].host.get_ref() != s.host.get_ref())
                .map(|d| format!("{} ({})", scn.steps[*d].id.get_ref(), scn.steps[*d].host.get_ref()))
                .collect();
            let line = match others.as_slice() {
                [] => s.id.get_ref().clone(),
                _ => format!("{:<28}  waits for {}", s.id.get_ref(), others.join(", ")),
            };
            let _ = writeln!(out, "      {:>3}. {line}", i + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_names_lanes_waits_and_check_starts() {
        let checks = "[[verify]]\ncheck = \"cron_line\"\nafter = [\"a1\"]\nhost = \"a\"\nline = \"x\"\n[[verify]]\ncheck = \"cron_fires\"\nhost = \"b\"\nstanza = \"s\"\n";
        let src = format!("{}{checks}", crate::run::schedule::tests::TWO).replacen("name = \"b\"", "name = \"b\"\nrole = \"standby\"", 1);
        let scn = Scenario::parse(std::path::Path::new("t.toml"), src).unwrap();
        let plan = describe(&scn);
        assert!(plan.starts_with("t: 2 hosts, 4 steps (hosts work at once), 2 checks"), "{plan}");
        assert!(plan.contains("    b            standby") && plan.contains("    a            spare"), "{plan}");
        assert!(!plan.lines().any(|l| l.ends_with(' ')), "no trailing blanks: {plan}");
        assert!(plan.contains("3. a2                            waits for b1 (b)"), "{plan}");
        assert!(plan.contains("4. b2                            waits for a1 (a), a2 (a)"), "{plan}");
        assert!(plan.contains("cron_line      as soon as a1 is done"), "{plan}");
        assert!(plan.contains("cron_fires     after the last step") && plan.contains("(slow: with --slow)"), "{plan}");
    }
}
