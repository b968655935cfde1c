//! Which step may start now: pure, so order, `after` and host lanes are
//! tested without an engine.

use std::collections::BTreeMap;

use crate::scenario::Scenario;

/// For each step, the steps that must finish before it starts. In file
/// order: the previous step. In `parallel` scenarios: the previous step on
/// each host it touches (its own, a copy's source) plus its `after`.
pub(crate) fn dependencies(scn: &Scenario) -> Vec<Vec<usize>> {
    let mut last_on: BTreeMap<&str, usize> = BTreeMap::new();
    let mut deps = Vec::with_capacity(scn.steps.len());
    for (i, step) in scn.steps.iter().enumerate() {
        if !scn.parallel {
            deps.push(i.checked_sub(1).into_iter().collect());
            continue;
        }
        let mut d: Vec<usize> = step.hosts().iter().filter_map(|h| last_on.get(h).copied()).collect();
        d.extend(step.after.iter().filter_map(|a| scn.steps[..i].iter().position(|s| s.id.get_ref() == a.get_ref())));
        d.sort_unstable();
        d.dedup();
        for h in step.hosts() {
            last_on.insert(h, i);
        }
        deps.push(d);
    }
    deps
}

/// The steps to run (indices into the scenario) and what each waits for.
/// A step outside `todo` (done before a resume) counts as finished.
pub(crate) struct Schedule {
    deps: Vec<Vec<usize>>,
    pending: Vec<usize>,
    todo: Vec<usize>,
    finished: Vec<usize>,
}

impl Schedule {
    pub(crate) fn new(scn: &Scenario, todo: &[usize]) -> Self {
        Schedule { deps: dependencies(scn), pending: todo.to_vec(), todo: todo.to_vec(), finished: Vec::new() }
    }

    /// Steps whose dependencies are all finished, in file order; each is
    /// handed out once.
    pub(crate) fn ready(&mut self) -> Vec<usize> {
        let ready: Vec<usize> =
            self.pending.iter().copied().filter(|i| self.deps[*i].iter().all(|d| !self.todo.contains(d) || self.finished.contains(d))).collect();
        self.pending.retain(|p| !ready.contains(p));
        ready
    }

    pub(crate) fn finish(&mut self, step: usize) {
        self.finished.push(step);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    /// Two host lanes that meet: a copy, and an `after`.
    pub(crate) const TWO: &str = r#"
name = "t"
parallel = true
[[hosts]]
name = "a"
[[hosts]]
name = "b"
[[steps]]
id = "a1"
title = "x"
host = "a"
run = "true"
[[steps]]
id = "b1"
title = "x"
host = "b"
run = "true"
[[steps]]
id = "a2"
title = "x"
host = "a"
copy = { from_host = "b", from = "/x", to = "/y" }
[[steps]]
id = "b2"
title = "x"
host = "b"
run = "true"
after = ["a1"]
"#;

    fn scn(src: &str) -> Scenario {
        Scenario::parse(Path::new("t.toml"), src.to_string()).unwrap()
    }

    #[test]
    fn parallel_steps_wait_for_their_hosts_and_after() {
        assert_eq!(dependencies(&scn(TWO)), vec![vec![], vec![], vec![0, 1], vec![0, 2]]);
        assert_eq!(dependencies(&scn(&TWO.replace("parallel = true", ""))), vec![vec![], vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn lanes_start_together_and_join_where_they_meet() {
        let s = scn(TWO);
        let mut sched = Schedule::new(&s, &[0, 1, 2, 3]);
        assert_eq!(sched.ready(), vec![0, 1], "one step per host lane at once");
        assert_eq!(sched.ready(), Vec::<usize>::new(), "handed out once");
        sched.finish(1);
        assert_eq!(sched.ready(), Vec::<usize>::new(), "a2 needs a1 too; b2 needs a1 by `after`");
        sched.finish(0);
        assert_eq!(sched.ready(), vec![2]);
        sched.finish(2);
        assert_eq!(sched.ready(), vec![3]);
    }

    #[test]
    fn in_file_order_one_step_at_a_time() {
        let s = scn(&TWO.replace("parallel = true", ""));
        let mut sched = Schedule::new(&s, &[0, 1, 2, 3]);
        let mut order = Vec::new();
        loop {
            let r = sched.ready();
            if r.is_empty() {
                break;
            }
            assert_eq!(r.len(), 1);
            order.push(r[0]);
            sched.finish(r[0]);
        }
        assert_eq!(order, vec![0, 1, 2, 3]);
    }

    #[test]
    fn steps_done_before_a_resume_do_not_block() {
        let s = scn(TWO);
        let mut sched = Schedule::new(&s, &[2, 3]);
        assert_eq!(sched.ready(), vec![2], "a2's a1/b1 are done already; b2 waits for a2 on its lane");
        sched.finish(2);
        assert_eq!(sched.ready(), vec![3]);
    }
}
