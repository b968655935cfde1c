//! The run as JUnit XML for CI dashboards.

use crate::outcome::{RunReport, StepStatus};

/// The run as JUnit XML for CI dashboards: one test case per step and per check.
pub(crate) fn junit(r: &RunReport) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("{} ({})", r.scenario, r.platform));
    let failed = |message: String, detail: &str| {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(message);
        s.set_description(detail.to_string());
        s
    };
    for s in &r.steps {
        let status = match s.status {
            StepStatus::Passed => TestCaseStatus::success(),
            StepStatus::Failed => failed(format!("step {} failed on {}", s.id, s.host), &s.observed),
            StepStatus::Interrupted => failed(format!("step {} was interrupted on {}", s.id, s.host), &s.observed),
            StepStatus::Skipped => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(s.observed.clone());
                st
            }
        };
        let mut case = TestCase::new(format!("step {}", s.id), status);
        case.set_classname(format!("{}.steps", r.scenario)).set_time(s.elapsed);
        suite.add_test_case(case);
    }
    for c in &r.checks {
        let status = if c.passed() { TestCaseStatus::success() } else { failed(format!("check {} failed", c.name), &c.evidence) };
        let mut case = TestCase::new(format!("check {}", c.name), status);
        case.set_classname(format!("{}.checks", r.scenario)).set_time(c.elapsed);
        suite.add_test_case(case);
    }
    // A run that stopped before any step (image, lab) still shows as failed.
    if let (Some(e), true) = (&r.error, r.steps.iter().all(|s| s.passed)) {
        let mut case = TestCase::new("run", failed("the run failed".into(), &e.message));
        case.set_classname(r.scenario.clone());
        suite.add_test_case(case);
    }
    suite.set_time(r.total);
    let mut report = Report::new("pglab");
    report.add_test_suite(suite);
    report.to_string().expect("JUnit XML serializes")
}
