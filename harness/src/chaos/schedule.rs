//! A fault schedule: drawn from a seed (proptest's strategies, so that a
//! failing one shrinks), planned onto the lab's hosts, and written as the
//! ordinary `[[steps]]` that replay it.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::error::{Error, Result};
use crate::vocab::Role;

/// The faults a schedule draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum FaultKind {
    /// Two hosts cut off from each other (`partition`), until healed.
    Partition,
    /// Delay on a standby's path to its primary (`latency`), until healed.
    Latency,
    /// Every process of a host frozen (`pause`), until resumed.
    Pause,
    /// The host restarted (`restart`): systemd boots again.
    Restart,
    /// The postmaster killed (SIGKILL), until started again.
    Kill,
}

impl FaultKind {
    /// Every kind, in the order shrinking prefers (first is simplest).
    pub const ALL: [FaultKind; 5] = [FaultKind::Partition, FaultKind::Latency, FaultKind::Pause, FaultKind::Restart, FaultKind::Kill];

    /// Its name on the command line and in step ids.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Latency => "latency",
            FaultKind::Pause => "pause",
            FaultKind::Restart => "restart",
            FaultKind::Kill => "kill",
        }
    }
}

/// One fault as drawn: hosts by index, times in ms from the schedule's start.
#[derive(Debug, Clone)]
pub(crate) struct Drawn {
    kind: FaultKind,
    host: usize,
    peer: usize,
    at_ms: u64,
    window_ms: u64,
    delay_ms: u32,
}

/// The schedule of `seed`: up to `most` faults of `kinds` drawn (ChaCha
/// seeded with it, so the same seed draws the same faults with this
/// build), then planned onto `targets`.
pub(crate) fn draw(seed: u64, kinds: &[FaultKind], targets: &[Target], duration_ms: u64, most: usize) -> Result<Plan> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let tree = strategy(kinds.to_vec(), targets.len(), duration_ms, most).new_tree(&mut runner);
    let drawn = tree.map_err(|r| Error::Usage(format!("no schedule can be drawn: {r}")))?.current();
    Ok(plan(&drawn, targets, duration_ms))
}

/// Up to `most` faults of `kinds` on `hosts` hosts within `duration_ms`.
fn strategy(kinds: Vec<FaultKind>, hosts: usize, duration_ms: u64, most: usize) -> impl Strategy<Value = Vec<Drawn>> {
    let one = (prop::sample::select(kinds), 0..hosts, 0..hosts, 0..duration_ms, 500..=duration_ms.max(500), 20u32..=300)
        .prop_map(|(kind, host, peer, at_ms, window_ms, delay_ms)| Drawn { kind, host, peer, at_ms, window_ms, delay_ms });
    prop::collection::vec(one, 1..=most.max(1))
}

/// A host faults may land on.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub name: String,
    pub role: Role,
    /// Never killed or restarted.
    pub keep_up: bool,
}

/// A fault as it runs: from `at_ms` until `end_ms`, or still on at the
/// schedule's end (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Planned {
    pub kind: FaultKind,
    pub host: String,
    /// The other side, for a partition (latency: the primary).
    pub peer: Option<String>,
    pub at_ms: u64,
    pub end_ms: Option<u64>,
    pub delay_ms: u32,
}

/// The faults that run, in order of their start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub faults: Vec<Planned>,
    pub duration_ms: u64,
}

impl Plan {
    /// The same schedule without its `i`th fault (the others at their times).
    pub(crate) fn without(&self, i: usize) -> Plan {
        let mut faults = self.faults.clone();
        faults.remove(i);
        Plan { faults, duration_ms: self.duration_ms }
    }

    /// The same schedule with the `i`th fault's window halved, when it
    /// ends within the schedule and lasts a second or more (one still on
    /// at the end is another fault: it is on through the failover).
    pub(crate) fn shorter(&self, i: usize) -> Option<Plan> {
        let f = &self.faults[i];
        let end = f.end_ms.filter(|&e| f.kind != FaultKind::Restart && e >= f.at_ms + 1000)?;
        let mut faults = self.faults.clone();
        faults[i].end_ms = Some(f.at_ms + (end - f.at_ms) / 2);
        Some(Plan { faults, duration_ms: self.duration_ms })
    }
}

/// Puts drawn faults on hosts. A fault that cannot be is left out, the
/// same way every time: a partition of a host from itself, latency not
/// between a standby and a primary, a kill or restart of a `keep_up` host,
/// and any fault on a host a fault still holds (one at a time per host).
pub(crate) fn plan(drawn: &[Drawn], targets: &[Target], duration_ms: u64) -> Plan {
    let mut order: Vec<&Drawn> = drawn.iter().collect();
    order.sort_by_key(|d| d.at_ms);
    let mut busy_until: Vec<Option<u64>> = vec![Some(0); targets.len()];
    let free = |busy: &[Option<u64>], i: usize, at: u64| busy[i].is_some_and(|u| u <= at);
    let mut faults = Vec::new();
    for d in order {
        let Some((host, peer)) = place(d, targets) else { continue };
        let involved: Vec<usize> = std::iter::once(host).chain(peer).collect();
        if !involved.iter().all(|&i| free(&busy_until, i, d.at_ms)) {
            continue;
        }
        let end = d.at_ms + d.window_ms;
        let end_ms = match d.kind {
            FaultKind::Restart => Some(d.at_ms),
            _ if end < duration_ms => Some(end),
            _ => None,
        };
        for &i in &involved {
            busy_until[i] = end_ms.map(|e| e.max(d.at_ms + 1));
        }
        let name = |i: usize| targets[i].name.clone();
        faults.push(Planned { kind: d.kind, host: name(host), peer: peer.map(name), at_ms: d.at_ms, end_ms, delay_ms: d.delay_ms });
    }
    Plan { faults, duration_ms }
}

/// The host a fault acts on and its peer, when it can land at all: the
/// peer is always another host; a kill or restart drawn on a `keep_up`
/// host goes to the next host that may go down.
fn place(d: &Drawn, targets: &[Target]) -> Option<(usize, Option<usize>)> {
    let n = targets.len();
    let host = d.host % n;
    let peer = (n > 1).then(|| (host + 1 + d.peer % (n - 1)) % n);
    match d.kind {
        FaultKind::Partition => Some((host, Some(peer?))),
        // Set on the standby's side, toward its primary.
        FaultKind::Latency => match (targets[host].role, targets[peer?].role) {
            (Role::Standby, Role::Primary) => Some((host, peer)),
            (Role::Primary, Role::Standby) => Some((peer?, Some(host))),
            _ => None,
        },
        FaultKind::Pause => Some((host, None)),
        FaultKind::Restart | FaultKind::Kill => (0..n).map(|k| (host + k) % n).find(|&i| !targets[i].keep_up).map(|i| (i, None)),
    }
}

/// The steps of a plan, as TOML: the schedule with its holds (inserted
/// after `after`), ended by every host answering again; and the heals of
/// network faults still on at its end, for after the file's last step
/// (the schedule's own, when it goes in last).
pub(crate) struct Written {
    pub schedule: String,
    pub heals: String,
}

/// Writes `plan` as steps; `seed` and `hosts` (the chaos hosts, the first
/// holding the holds) go into titles and comments.
pub(crate) fn write(plan: &Plan, seed: u64, hosts: &[String], after: &str, last_step: &str) -> Written {
    let mut w = Writer { out: String::new(), n: 0, prev: after.to_string() };
    w.out.push_str(&format!("\n# ---- fault schedule: pglab chaos, seed {seed}, {} fault(s) over {} ms ----\n", plan.faults.len(), plan.duration_ms));
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (i, f) in plan.faults.iter().enumerate() {
        events.push((f.at_ms, true, i));
        if let (Some(e), false) = (f.end_ms, f.kind == FaultKind::Restart) {
            events.push((e, false, i));
        }
    }
    // At the same moment an end comes before a start (its host is free again).
    events.sort_by_key(|&(t, start, i)| (t, start, i));
    let mut now = 0;
    for (t, start, i) in events {
        w.hold(&hosts[0], t - now);
        now = t;
        let f = &plan.faults[i];
        if start {
            w.start(f);
        } else {
            w.end(f);
        }
    }
    w.hold(&hosts[0], plan.duration_ms.saturating_sub(now));
    // Hosts come back before the file goes on; network faults stay on.
    for f in plan.faults.iter().filter(|f| f.end_ms.is_none() && matches!(f.kind, FaultKind::Pause | FaultKind::Kill)) {
        w.end(f);
    }
    for h in hosts {
        w.step(&format!("{h}-answers"), &format!("End of the schedule: {h}'s PostgreSQL answers"), h, "wait = \"pg_up\"");
    }
    let schedule = std::mem::take(&mut w.out);
    // The heals follow the file's last step, or the schedule when it is last.
    if last_step != after {
        w.prev = last_step.to_string();
    }
    let open: Vec<&Planned> = plan.faults.iter().filter(|f| f.end_ms.is_none() && matches!(f.kind, FaultKind::Partition | FaultKind::Latency)).collect();
    if !open.is_empty() {
        w.out.push_str("\n# ---- the schedule's network faults still on, healed before the checks ----\n");
    }
    for f in open {
        w.end(f);
    }
    Written { schedule, heals: w.out }
}

/// Steps written one after the other, each `after` the one before.
struct Writer {
    out: String,
    n: usize,
    prev: String,
}

impl Writer {
    fn step(&mut self, what: &str, title: &str, host: &str, action: &str) {
        self.n += 1;
        let id = format!("x{:02}-{what}", self.n);
        self.out.push_str(&format!(
            "\n[[steps]]\nid = {}\ntitle = {}\nhost = {}\n{action}\nafter = [{}]\n",
            quoted(&id),
            quoted(title),
            quoted(host),
            quoted(&self.prev)
        ));
        self.prev = id;
    }

    fn hold(&mut self, host: &str, ms: u64) {
        if ms > 0 {
            self.step("hold", &format!("The schedule holds {ms} ms"), host, &format!("wait = {{ hold_ms = {ms} }}"));
        }
    }

    fn start(&mut self, f: &Planned) {
        let peer = f.peer.as_deref().unwrap_or_default();
        let (title, action) = match f.kind {
            FaultKind::Partition => (format!("{} cut off from {peer}", f.host), format!("partition = [{}]", quoted(peer))),
            FaultKind::Latency => {
                (format!("{} ms each way between {} and {peer}", f.delay_ms, f.host), format!("latency = {{ to = {}, ms = {} }}", quoted(peer), f.delay_ms))
            }
            FaultKind::Pause => (format!("{} frozen", f.host), "pause = true".into()),
            FaultKind::Restart => (format!("{} restarted", f.host), "restart = \"booted\"".into()),
            FaultKind::Kill => (format!("{}'s postmaster killed", f.host), "kill = \"postmaster\"".into()),
        };
        self.step(f.kind.name(), &title, &f.host, &action);
    }

    fn end(&mut self, f: &Planned) {
        let peer = f.peer.as_deref().unwrap_or_default();
        let (what, title, action) = match f.kind {
            FaultKind::Partition => ("heal", format!("{} and {peer} reach each other again", f.host), format!("heal = [{}]", quoted(peer))),
            FaultKind::Latency => ("heal", format!("{}'s path to {peer} without delay again", f.host), format!("heal = [{}]", quoted(peer))),
            FaultKind::Pause => ("resume", format!("{} thawed", f.host), "resume = true".into()),
            FaultKind::Kill => ("start", format!("{}'s PostgreSQL started again", f.host), "run = \"sudo pg_ctlcluster {pg.version} main start\"".into()),
            FaultKind::Restart => return,
        };
        self.step(what, &title, &f.host, &action);
    }
}

/// A TOML basic string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Vec<Target> {
        vec![Target { name: "primary".into(), role: Role::Primary, keep_up: true }, Target { name: "standby".into(), role: Role::Standby, keep_up: false }]
    }

    fn d(kind: FaultKind, host: usize, peer: usize, at_ms: u64, window_ms: u64) -> Drawn {
        Drawn { kind, host, peer, at_ms, window_ms, delay_ms: 50 }
    }

    #[test]
    fn a_seed_draws_the_same_schedule_every_time_and_another_seed_another() {
        let draw = |seed| super::draw(seed, &FaultKind::ALL, &targets(), 30_000, 6).unwrap();
        assert_eq!(draw(7), draw(7));
        let distinct: std::collections::BTreeSet<String> = (1..=8).map(|s| format!("{:?}", draw(s))).collect();
        assert!(distinct.len() >= 7, "8 seeds, {} schedules", distinct.len());
        assert!((1..=8).all(|s| !draw(s).faults.is_empty()), "two hosts: something always lands");
    }

    #[test]
    fn faults_land_on_hosts_that_may_take_them_one_at_a_time_per_host() {
        let drawn = [
            d(FaultKind::Kill, 0, 0, 100, 2000),       // keep_up: the standby's, until 2100
            d(FaultKind::Pause, 1, 0, 200, 3000),      // standby busy: out
            d(FaultKind::Pause, 0, 0, 300, 1000),      // primary until 1300
            d(FaultKind::Latency, 0, 1, 1000, 1000),   // both busy: out
            d(FaultKind::Partition, 1, 1, 2100, 9000), // the peer is the other host; on at the end
        ];
        let p = plan(&drawn, &targets(), 5000);
        let got: Vec<(FaultKind, &str, Option<&str>, Option<u64>)> = p.faults.iter().map(|f| (f.kind, f.host.as_str(), f.peer.as_deref(), f.end_ms)).collect();
        let want = vec![
            (FaultKind::Kill, "standby", None, Some(2100)),
            (FaultKind::Pause, "primary", None, Some(1300)),
            (FaultKind::Partition, "standby", Some("primary"), None),
        ];
        assert_eq!(got, want);
        // A lone host has no peer: nothing between two hosts lands.
        assert!(plan(&[d(FaultKind::Partition, 0, 0, 0, 100)], &targets()[..1], 5000).faults.is_empty());
        // Latency goes on the standby's side whichever way it was drawn.
        let p = plan(&[d(FaultKind::Latency, 0, 1, 0, 100)], &targets(), 5000);
        assert_eq!((p.faults[0].host.as_str(), p.faults[0].peer.as_deref()), ("standby", Some("primary")));
    }

    #[test]
    fn written_steps_parse_in_order_with_holds_and_leave_network_faults_on_until_the_heals() {
        let p = plan(&[d(FaultKind::Pause, 1, 0, 1000, 9000), d(FaultKind::Partition, 0, 1, 500, 9000)], &targets(), 4000);
        // The partition holds the standby from 500 ms: the pause cannot land.
        assert_eq!(p.faults.len(), 1);
        let w = write(&p, 7, &["primary".into(), "standby".into()], "f2", "f6");
        let doc: toml::Table = toml::from_str(&w.schedule).unwrap();
        let steps = doc["steps"].as_array().unwrap();
        let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["x01-hold", "x02-partition", "x03-hold", "x04-primary-answers", "x05-standby-answers"]);
        assert_eq!(steps[0]["after"].as_array().unwrap()[0].as_str(), Some("f2"));
        assert_eq!(steps[2]["wait"]["hold_ms"].as_integer(), Some(3500));
        let heals: toml::Table = toml::from_str(&w.heals).unwrap();
        let heal = &heals["steps"].as_array().unwrap()[0];
        assert_eq!((heal["heal"].as_array().unwrap()[0].as_str(), heal["after"].as_array().unwrap()[0].as_str()), (Some("standby"), Some("f6")));
        // A schedule after the file's last step is itself last: the heals follow it, not run beside it.
        let w = write(&p, 7, &["primary".into(), "standby".into()], "f6", "f6");
        let heals: toml::Table = toml::from_str(&w.heals).unwrap();
        assert_eq!(heals["steps"].as_array().unwrap()[0]["after"].as_array().unwrap()[0].as_str(), Some("x05-standby-answers"));
    }

    #[test]
    fn a_restart_in_a_schedule_ends_when_the_host_has_booted_not_when_its_cluster_answers() {
        let p = plan(&[d(FaultKind::Restart, 1, 0, 1000, 500)], &targets(), 4000);
        let w = write(&p, 3, &["primary".into(), "standby".into()], "f2", "f6");
        assert!(w.schedule.contains("restart = \"booted\""), "{}", w.schedule);
        assert!(w.schedule.contains("wait = \"pg_up\""), "the end of the schedule waits for the cluster: {}", w.schedule);
    }
}
