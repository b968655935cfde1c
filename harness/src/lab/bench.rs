//! pgbench in the background inside a host: PostgreSQL's own load, for a
//! primary that must be busy while something else happens (a backup). It
//! runs in the host, so the transcript shows the real command line.

use super::exec::Cmd;
use super::host::Host;
use crate::error::{Error, Result};

/// Where a named run keeps its pid and its progress output.
fn files(name: &str) -> Result<(String, String)> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(Error::Usage(format!("pgbench name `{name}`: use letters, digits, `-` and `_`")));
    }
    Ok((format!("/tmp/pglab-pgbench-{name}.pid"), format!("/tmp/pglab-pgbench-{name}.log")))
}

impl Host {
    /// Starts `clients` pgbench clients as postgres, after `pgbench -i`
    /// when its tables are missing; progress is written every second.
    pub async fn pgbench_start(&self, name: &str, clients: u32) -> Result<()> {
        let (pid, log) = files(name)?;
        let line = format!(
            "[ \"$(psql -XAtc \"SELECT to_regclass('pgbench_accounts') IS NOT NULL\")\" = t ] || pgbench -i -q -s 1; \
             setsid pgbench -n -c {clients} -j 1 -T 86400 -P 1 > {log} 2>&1 < /dev/null & echo $! > {pid}"
        );
        self.exec(Cmd::shell(line).user("postgres")).await?;
        Ok(())
    }

    /// Stops the run with SIGTERM (a background job of a script ignores
    /// SIGINT) and waits for it to end; a run that ended
    /// by itself (an error, the server gone) is an error showing its output.
    /// Returns its summary: seconds, transactions from the progress lines.
    pub async fn pgbench_stop(&self, name: &str) -> Result<String> {
        let (pid, log) = files(name)?;
        let line = format!(
            "p=$(cat {pid}) && kill -0 \"$p\" 2>/dev/null || {{ echo 'pgbench had ended before it was stopped'; tail -n 5 {log}; exit 3; }}; \
             kill -TERM \"$p\" && timeout 30 tail --pid=\"$p\" -f /dev/null || {{ echo 'pgbench still runs 30 s after SIGTERM'; exit 4; }}; \
             grep '^progress:' {log} || true"
        );
        let cmd = Cmd::shell(line).user("postgres");
        let out = self.exec(cmd.clone().any_status()).await?;
        if out.status != 0 {
            return Err(self.failure(&cmd, &out, Some("pgbench did not run until it was stopped".into())).await);
        }
        Ok(progress_summary(&out.stdout))
    }

    /// Stops every pgbench on the host (the end of a run); best effort.
    pub async fn pgbench_stop_all(&self) {
        let _ = self.probe(&Cmd::new(["pkill", "-TERM", "-x", "pgbench"]).any_status()).await;
    }
}

/// `progress: 3.0 s, 812.0 tps, lat 4.9 ms stddev 1.2, 0 failed` lines, one
/// a second, summed up.
fn progress_summary(text: &str) -> String {
    let tps: Vec<f64> = text.lines().filter_map(|l| l.split(", ").nth(1)?.strip_suffix(" tps")?.trim().parse().ok()).collect();
    if tps.is_empty() {
        return "stopped (no progress line yet)".into();
    }
    let total: f64 = tps.iter().sum();
    let low = tps.iter().copied().fold(f64::INFINITY, f64::min);
    format!("stopped after {} s: about {total:.0} transactions, {:.0} tps on average, lowest second {low:.0} tps", tps.len(), total / tps.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_are_summed_and_names_are_checked() {
        let text = "progress: 1.0 s, 700.0 tps, lat 5.1 ms stddev 1.0, 0 failed\nprogress: 2.0 s, 300.5 tps, lat 13 ms stddev 4.0, 0 failed\n";
        assert_eq!(progress_summary(text), "stopped after 2 s: about 1000 transactions, 500 tps on average, lowest second 300 tps");
        assert!(progress_summary("").starts_with("stopped (no progress"));
        assert!(files("a b").is_err() && files("").is_err());
        assert_eq!(files("bench-1").unwrap().0, "/tmp/pglab-pgbench-bench-1.pid");
    }
}
