//! Ctrl-C, SIGTERM and SIGHUP: the one handler. It tells the code that owns
//! a lab to stop and tear it down (a run marks its step interrupted, writes
//! its report, removes its lab); it removes by itself only labs that nobody
//! attends. Every teardown first claims its lab here, so a lab is removed
//! exactly once, whichever path gets there first.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How long the handler waits for owners before it gives up and exits.
const OWNER_DEADLINE: Duration = Duration::from_secs(120);
/// After the last lab is gone, time for the owner to exit by itself.
const EXIT_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// `Lab::start` is creating it: removing now could miss what comes next.
    Starting {
        attended: bool,
    },
    Live {
        attended: bool,
    },
    /// Someone is tearing it down.
    Removing,
    /// Torn down (or kept): nobody removes it again.
    Gone,
}

impl Claim {
    fn pending(self) -> bool {
        self != Claim::Gone
    }
}

#[derive(Default)]
struct Registry {
    labs: BTreeMap<String, Claim>,
    /// Owners finishing their own work after an interrupt (a run writing its report).
    holds: usize,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { labs: BTreeMap::new(), holds: 0 });
static CHANGED: Condvar = Condvar::new();
static INSTALL: Once = Once::new();
/// A second signal: stop waiting for owners.
static FORCE: AtomicBool = AtomicBool::new(false);

fn interrupt() -> &'static watch::Sender<bool> {
    static TX: OnceLock<watch::Sender<bool>> = OnceLock::new();
    TX.get_or_init(|| watch::channel(false).0)
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

fn update(f: impl FnOnce(&mut Registry)) {
    f(&mut registry());
    CHANGED.notify_all();
}

/// Completes once a signal has arrived (at once if one already has).
pub(crate) async fn interrupted() {
    install();
    let mut rx = interrupt().subscribe();
    let _ = rx.wait_for(|v| *v).await;
}

/// Keeps the process alive after a signal until dropped: an owner finishing
/// its report. The handler still exits after its deadline.
pub(crate) struct Hold(());

pub(crate) fn hold() -> Hold {
    install();
    update(|r| r.holds += 1);
    Hold(())
}

impl Drop for Hold {
    fn drop(&mut self) {
        update(|r| r.holds = r.holds.saturating_sub(1));
    }
}

/// A lab is being created; `attended` owners tear it down themselves.
pub(crate) fn starting(lab: &str, attended: bool) {
    install();
    update(|r| {
        r.labs.insert(lab.to_string(), Claim::Starting { attended });
    });
}

/// The lab exists as a whole.
pub(crate) fn live(lab: &str) {
    update(|r| {
        if let Some(c @ Claim::Starting { .. }) = r.labs.get_mut(lab) {
            let Claim::Starting { attended } = *c else { unreachable!() };
            *c = Claim::Live { attended };
        }
    });
}

/// Takes the teardown of `lab`; false when another path has it or had it
/// (then this waits until that teardown is over).
pub(crate) fn claim(lab: &str) -> bool {
    let mut r = registry();
    match r.labs.get_mut(lab) {
        Some(Claim::Removing) => {
            let deadline = Instant::now() + OWNER_DEADLINE;
            while r.labs.get(lab) == Some(&Claim::Removing) && Instant::now() < deadline {
                r = CHANGED.wait_timeout(r, Duration::from_millis(100)).unwrap_or_else(|p| p.into_inner()).0;
            }
            false
        }
        Some(Claim::Gone) => false,
        Some(c) => {
            *c = Claim::Removing;
            true
        }
        // Not registered (an attached lab): nobody else removes it.
        None => true,
    }
}

/// The teardown of `lab` is over.
pub(crate) fn release(lab: &str) {
    update(|r| {
        r.labs.insert(lab.to_string(), Claim::Gone);
    });
}

/// Installs the handler once per process.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        let signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP]);
        match signals {
            Ok(mut signals) => {
                std::thread::spawn(move || {
                    let mut forever = signals.forever();
                    if forever.next().is_some() {
                        std::thread::spawn(on_signal);
                    }
                    // A second one: the person wants out now.
                    if forever.next().is_some() {
                        FORCE.store(true, Ordering::SeqCst);
                        CHANGED.notify_all();
                    }
                });
            }
            Err(e) => tracing::warn!("cannot install signal handler, Ctrl-C may leak labs: {e}"),
        }
    });
}

/// Exit status after a signal, whichever signal it was (as documented).
const INTERRUPTED: i32 = 130;

fn on_signal() {
    interrupt().send_replace(true);
    let had_work = {
        let r = registry();
        r.labs.values().any(|c| c.pending()) || r.holds > 0
    };
    let deadline = Instant::now() + OWNER_DEADLINE;
    loop {
        // Owners that do not come (none attends, the deadline passed, a
        // second signal) leave their labs to this handler.
        let give_up = Instant::now() >= deadline || FORCE.load(Ordering::SeqCst);
        let orphans: Vec<String> = {
            let mut r = registry();
            let ids: Vec<String> = r
                .labs
                .iter()
                .filter(|(_, c)| **c == Claim::Live { attended: false } || (give_up && matches!(c, Claim::Live { .. } | Claim::Starting { .. })))
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ids {
                r.labs.insert(id.clone(), Claim::Removing);
            }
            ids
        };
        if !orphans.is_empty() {
            crate::progress::say(format_args!("pglab: interrupted; removing lab(s) {}", orphans.join(", ")));
            remove(&orphans);
        }
        let r = registry();
        let busy = r.labs.values().any(|c| c.pending()) || r.holds > 0;
        if !busy || give_up {
            break;
        }
        let _ = CHANGED.wait_timeout(r, Duration::from_millis(100));
    }
    if had_work && !FORCE.load(Ordering::SeqCst) {
        // The owner returns on its own with its exit code; this is the backstop.
        let until = Instant::now() + EXIT_GRACE;
        while Instant::now() < until && !FORCE.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::process::exit(INTERRUPTED);
}

fn remove(labs: &[String]) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    rt.block_on(async {
        match bollard::Docker::connect_with_defaults() {
            Ok(docker) => {
                for lab in labs {
                    if let Err(e) = super::inventory::remove_lab(&docker, lab).await {
                        crate::progress::say(format_args!("pglab: removing {lab}: {e}"));
                    }
                }
            }
            Err(e) => crate::progress::say(format_args!("pglab: cannot reach the engine to remove {}: {e}", labs.join(", "))),
        }
    });
    for lab in labs {
        release(lab);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_is_claimed_for_teardown_once() {
        starting("t-claim", true);
        live("t-claim");
        assert!(claim("t-claim"), "the first teardown takes it");
        let second = std::thread::spawn(|| claim("t-claim"));
        release("t-claim");
        assert!(!second.join().unwrap(), "a second path, whenever it came, finds it taken or gone");
        assert!(!claim("t-claim"), "gone stays gone: nothing is removed twice");
        assert!(claim("t-never-registered"), "an attached lab is its caller's to remove");
    }
}
