//! Every check has a failing twin: on a real lab (the corrected tutorial,
//! through its last step) each twin breaks exactly the property a check
//! names, asserts that the check fails with a message naming it, and puts
//! the lab back for the next one. The table of check × break × message is
//! `docs/checks.md`, verified here.

mod support;

use std::future::Future;
use std::time::Duration;

use pglab::check;
use pglab::prelude::*;
use pglab::vocab::PitrTarget;

/// One twin: the check, what is broken, and what its failure must say (a regex).
struct Twin {
    check: &'static str,
    breaks: &'static str,
    says: &'static str,
}

/// Every twin, in the order they run on the lab. The lab ends with the
/// standby promoted, so the twins that need a standby come first.
const TWINS: &[Twin] = &[
    Twin { check: "replication_role", breaks: "the role is NOINHERIT and a member of pg_read_all_data", says: "is a member of pg_read_all_data" },
    Twin { check: "replication_role", breaks: "the role has CREATEDB", says: "has CREATEDB" },
    Twin {
        check: "hba_refuses",
        breaks: "a `trust` line for the outsider's address in pg_hba.conf",
        says: "a replication connection from pitr to primary was let in",
    },
    Twin {
        check: "hba_refuses",
        breaks: "a `trust` line for the standby's address in pg_hba.conf",
        says: "a wrong password from standby to primary was let in",
    },
    Twin { check: "no_route_out", breaks: "a default route put back on one host", says: "standby has a route out of the lab: IPv4 default route" },
    Twin { check: "ssh_keys", breaks: "every known_hosts file moved away", says: "no known_hosts line on .* pins another lab host's key" },
    Twin {
        check: "ssh_keys",
        breaks: "a hashed known_hosts line holding another host's key",
        says: "standby trusts a key for primary .* that is not primary's host key",
    },
    Twin {
        check: "ssh_keys",
        breaks: "a `Match Address` block allowing passwords from one peer",
        says: r"sshd on standby does not say `passwordauthentication no` for \w+ from primary",
    },
    Twin { check: "streaming", breaks: "replay paused on the standby", says: "standby did not replay the check's CREATE TABLE within 3 s though it streams" },
    Twin { check: "cron_line", breaks: "the crontab line removed", says: "postgres crontab lacks" },
    Twin { check: "cron_fires", breaks: "the crontab line backs up another stanza", says: "no line of postgres's crontab on primary backs up stanza tutorial" },
    Twin { check: "retention", breaks: "repo1-retention-full raised to 5", says: "full backups kept: got 3, expected 2" },
    Twin { check: "pgbackrest", breaks: "a file of the newest backup damaged in the repository", says: "pgbackrest verify found the repository damaged" },
    Twin {
        check: "repo_info",
        breaks: "the archive's oldest WAL segment moved out of the repository",
        says: r"backup [\w-]+ needs WAL \w+\.\.\w+, which the archive of tutorial on primary does not hold",
    },
    Twin {
        check: "archive_continuous",
        breaks: "the archive's newest WAL segment moved out of the repository",
        says: r"the archive of tutorial on primary misses segment [0-9A-F]{24} \(of \d+ from the oldest backup's",
    },
    Twin { check: "pitr", breaks: "recovery_target_inclusive = off on the restored host (lands one transaction early)", says: "rows after restore to xid" },
    Twin { check: "pitr", breaks: "a restore point of the target's name already in the WAL (recovery stops at the first)", says: "rows after restore to name" },
    Twin { check: "standby_data", breaks: "the standby promoted", says: r"pg_is_in_recovery\(\) on standby \(a standby\)" },
    Twin { check: "not_streaming", breaks: "the standby promoted", says: r"pg_is_in_recovery\(\) on standby \(a standby\)" },
    Twin { check: "same_data", breaks: "a row changed in a second database on the copy", says: "in database shop on standby" },
    Twin { check: "writes", breaks: "acknowledged rows deleted on the host", says: "at most 0 may be lost; missing ids" },
    Twin {
        check: "pitr_acked",
        breaks: "recovery_target_inclusive = off on the restored host (the drawn commit left out)",
        says: "rows after restore to acknowledged commit \\d+ \\(xid \\d+, seed 7\\)",
    },
    Twin {
        check: "replay_delay",
        breaks: "no recovery_min_apply_delay on the standby",
        says: r"standby showed the row \d+ ms after its commit, before the 2000 ms replay delay",
    },
    Twin {
        check: "sync_rep",
        breaks: "`synchronous_commit = local` on the primary (a commit no longer waits for its standby)",
        says: "returned with standby paused: it did not wait for a synchronous standby",
    },
    Twin { check: "slot", breaks: "a slot no standby streams through", says: "slot `twin_slot` on primary is inactive: no walsender uses it, not active" },
    Twin {
        check: "cascade",
        breaks: "the cascade's last host is no standby (a cluster of its own)",
        says: "pitr is not in recovery: not a standby of the cascade",
    },
    Twin {
        check: "repo_encrypted",
        breaks: "the repository of s3-repo, not encrypted (its marker row written before the backup)",
        says: r"\d+ of \d+ objects on s3 are not encrypted \(no `Salted__`\)",
    },
];

/// Runs `check`, which must fail with a message matching `twin.says`;
/// returns what is wrong, if anything.
async fn expect_failure<F: Future<Output = pglab::Result<pglab::check::Evidence>>>(twin: &Twin, check: F) -> Option<String> {
    let re = regex::Regex::new(twin.says).unwrap();
    match check.await {
        Ok(e) => Some(format!("{} passed with {}: {e}", twin.check, twin.breaks)),
        Err(e) if re.is_match(&e.to_string()) => {
            eprintln!("twin {} / {}: {}", twin.check, twin.breaks, e.to_string().lines().next().unwrap_or(""));
            None
        }
        Err(e) => Some(format!("{} with {} failed, but its message does not match /{}/: {e}", twin.check, twin.breaks, twin.says)),
    }
}

fn twin(check: &str, breaks_prefix: &str) -> &'static Twin {
    TWINS.iter().find(|t| t.check == check && t.breaks.starts_with(breaks_prefix)).unwrap_or_else(|| panic!("no twin {check}: {breaks_prefix}"))
}

async fn root(h: &Host, line: &str) {
    let out = h.sh("root", line).await.unwrap();
    assert!(out.success(), "{line} on {}: {}", h.name, out.combined());
}

/// Moves the archive's oldest (`end = "min"`) or newest (`"max"`) WAL
/// segment out of the repository on `h`; returns the line that puts it back.
async fn move_archive_segment(h: &Host, stanza: &str, end: &str) -> String {
    let info = h.backup_info(stanza).await.unwrap();
    let (id, seg) = (info["archive"][0]["id"].as_str().unwrap(), info["archive"][0][end].as_str().unwrap());
    let dir = format!("/var/lib/pgbackrest/archive/{stanza}/{id}/{}", &seg[..16]);
    root(h, &format!("mkdir -p /tmp/twin-wal && mv {dir}/{seg}-* /tmp/twin-wal/")).await;
    format!("mv /tmp/twin-wal/* {dir}/ && rmdir /tmp/twin-wal")
}

/// Edits pg_hba.conf on `h` with `sed`, reloads and waits until the server says it did.
async fn hba(h: &Host, sed: &str) {
    let file = h.safe_psql("SHOW hba_file").await.unwrap();
    let offset = h.log_offset().await.unwrap();
    root(h, &format!("sed -i '{sed}' {file}")).await;
    h.safe_psql("SELECT pg_reload_conf()").await.unwrap();
    h.wait_for_log("received SIGHUP, reloading configuration files", offset, Deadline::standard()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_check_fails_on_the_lab_its_twin_breaks() {
    let lab = ScenarioLab::new("tutorial").through("10-cron").start().await.expect("the tutorial through step 10");
    let (primary, standby, pitr) = (lab.host("primary").unwrap(), lab.host("standby").unwrap(), lab.host("pitr").unwrap());
    let stanza = "tutorial";
    let mut wrong = Vec::new();

    // replication_role
    primary.safe_psql("ALTER ROLE replicator NOINHERIT; GRANT pg_read_all_data TO replicator").await.unwrap();
    wrong.extend(expect_failure(twin("replication_role", "the role is NOINHERIT"), check::replication_role(primary, "replicator")).await);
    primary.safe_psql("REVOKE pg_read_all_data FROM replicator; ALTER ROLE replicator INHERIT CREATEDB").await.unwrap();
    wrong.extend(expect_failure(twin("replication_role", "the role has CREATEDB"), check::replication_role(primary, "replicator")).await);
    primary.safe_psql("ALTER ROLE replicator NOCREATEDB").await.unwrap();

    // hba_refuses: a trust line first in the file wins.
    for (who, t) in [(pitr, twin("hba_refuses", "a `trust` line for the outsider")), (standby, twin("hba_refuses", "a `trust` line for the standby"))] {
        hba(primary, &format!("1i host replication replicator {}/32 trust # twin", who.ip)).await;
        wrong.extend(expect_failure(t, check::hba_refuses(primary, standby, pitr, "replicator")).await);
        hba(primary, "/# twin$/d").await;
    }

    // no_route_out
    standby.net_admin("ip route add default dev eth0").await.unwrap();
    wrong.extend(expect_failure(twin("no_route_out", ""), check::no_route_out(&[primary, standby, pitr])).await);
    standby.net_admin("ip route del default").await.unwrap();

    // ssh_keys
    let all = [standby, primary, pitr];
    let kh = "for u in root dba postgres; do f=$(eval echo ~$u)/.ssh/known_hosts";
    for h in all {
        root(h, &format!("{kh}; [ -f $f ] && mv $f $f.twin; done; true")).await;
    }
    wrong.extend(expect_failure(twin("ssh_keys", "every known_hosts"), check::ssh_keys(&all)).await);
    for h in all {
        root(h, &format!("{kh}; [ -f $f.twin ] && mv $f.twin $f; done; true")).await;
    }
    let (primary_key, pitr_key) = (primary.ssh_host_key().await.unwrap(), pitr.ssh_host_key().await.unwrap());
    let body = |k: &str| k.split_whitespace().nth(1).unwrap().to_string();
    let f = "~postgres/.ssh/known_hosts";
    root(standby, &format!("cp {f} {f}.twin && ssh-keygen -H -f {f} && grep -q '^|1|' {f} && sed -i 's|{}|{}|' {f}", body(&primary_key), body(&pitr_key)))
        .await;
    wrong.extend(expect_failure(twin("ssh_keys", "a hashed"), check::ssh_keys(&all)).await);
    root(standby, &format!("mv {f}.twin {f}; rm -f {f}.old")).await;
    root(
        standby,
        &format!(
            "cp /etc/ssh/sshd_config /etc/ssh/sshd_config.twin && printf 'Match Address {}\\n    PasswordAuthentication yes\\n' >> /etc/ssh/sshd_config",
            primary.ip
        ),
    )
    .await;
    wrong.extend(expect_failure(twin("ssh_keys", "a `Match"), check::ssh_keys(&all)).await);
    root(standby, "mv /etc/ssh/sshd_config.twin /etc/ssh/sshd_config").await;

    // replay_delay: the standby applies at once.
    wrong.extend(expect_failure(twin("replay_delay", ""), check::replay_delay(primary, standby, Duration::from_secs(2))).await);
    // slot: one the standby does not use.
    primary.safe_psql("SELECT pg_create_physical_replication_slot('twin_slot', true)").await.unwrap();
    let want = check::SlotWant { standby: Some(standby), active: Some(true), ..Default::default() };
    wrong.extend(expect_failure(twin("slot", ""), check::slot(primary, "twin_slot", want)).await);
    primary.safe_psql("SELECT pg_drop_replication_slot('twin_slot')").await.unwrap();
    // sync_rep: the primary commits locally, whatever its standbys do.
    for sql in ["ALTER SYSTEM SET synchronous_commit = local", "SELECT pg_reload_conf()"] {
        primary.safe_psql(sql).await.unwrap();
    }
    let ranked = [(standby, check::SyncState::Sync)];
    wrong.extend(expect_failure(twin("sync_rep", ""), check::sync_rep(primary, "*", &ranked, &[standby], Some(standby))).await);
    for sql in
        ["ALTER SYSTEM RESET synchronous_commit", "ALTER SYSTEM RESET synchronous_standby_names", "SELECT pg_reload_conf()", "DROP TABLE IF EXISTS pglab_sync"]
    {
        primary.safe_psql(sql).await.unwrap();
    }
    // cascade: pitr runs a cluster of its own, fed by nobody.
    wrong.extend(expect_failure(twin("cascade", ""), check::cascade(primary, standby, pitr)).await);

    // streaming: the standby receives but does not replay.
    standby.safe_psql("SELECT pg_wal_replay_pause()").await.unwrap();
    wrong.extend(expect_failure(twin("streaming", ""), check::streaming(primary, standby, 3, Duration::from_secs(3))).await);
    standby.safe_psql("SELECT pg_wal_replay_resume()").await.unwrap();
    primary.safe_psql("DROP TABLE IF EXISTS pglab_stream").await.unwrap();

    // cron_line and cron_fires
    let line = format!("0 23 * * * pgbackrest --stanza={stanza} --type=full backup");
    let saved = primary.sh("postgres", "crontab -l").await.unwrap().stdout;
    primary.sh("postgres", "crontab -r").await.unwrap();
    wrong.extend(expect_failure(twin("cron_line", ""), check::cron_line(primary, &line)).await);
    primary.sh("postgres", "echo '0 23 * * * pgbackrest --stanza=tutorail --type=full backup' | crontab -").await.unwrap();
    wrong.extend(expect_failure(twin("cron_fires", ""), check::cron_fires(primary, stanza)).await);
    let put_back = Cmd::new(["crontab", "-"]).user("postgres").stdin(saved);
    assert!(primary.exec(put_back).await.unwrap().success());
    check::cron_line(primary, &line).await.expect("the crontab is back");

    // retention: one more full backup keeps 3 when the repository keeps 5.
    root(
        primary,
        "sed -i 's/^repo1-retention-full=2$/repo1-retention-full=5/' /etc/pgbackrest.conf && grep -q '^repo1-retention-full=5$' /etc/pgbackrest.conf",
    )
    .await;
    wrong.extend(expect_failure(twin("retention", ""), check::retention(primary, stanza, 1, 2)).await);
    root(primary, "sed -i 's/^repo1-retention-full=5$/repo1-retention-full=2/' /etc/pgbackrest.conf").await;
    primary.pgbackrest(Br::new(BrCommand::Expire).stanza(stanza)).await.unwrap();

    // pgbackrest: verify reads every file of the repository.
    let info = primary.backup_info(stanza).await.unwrap();
    let label = info["backup"].as_array().unwrap().last().unwrap()["label"].as_str().unwrap().to_string();
    let file = format!("/var/lib/pgbackrest/backup/{stanza}/{label}/pg_data/PG_VERSION*");
    root(primary, &format!("f=$(ls {file}); cp -p $f /tmp/twin.saved && echo damaged > $f")).await;
    wrong.extend(expect_failure(twin("pgbackrest", ""), check::check_and_verify(primary, stanza)).await);
    root(primary, &format!("f=$(ls {file}); cp -p /tmp/twin.saved $f")).await;
    check::check_and_verify(primary, stanza).await.expect("the repository is whole again");

    // repo_info: without its first segment, the oldest backup cannot be restored consistently.
    check::repo_info(primary, stanza, None, None).await.expect("the repository holds each backup's WAL");
    let put_back = move_archive_segment(primary, stanza, "min").await;
    wrong.extend(expect_failure(twin("repo_info", ""), check::repo_info(primary, stanza, None, None)).await);
    root(primary, &put_back).await;
    check::repo_info(primary, stanza, None, None).await.expect("the archive is whole again");

    // archive_continuous: a hole where a restore would meet it (the archive's newest segment moved away).
    check::archive_continuous(primary, primary, stanza, None).await.expect("the archive has no hole");
    let put_back = move_archive_segment(primary, stanza, "max").await;
    wrong.extend(expect_failure(twin("archive_continuous", ""), check::archive_continuous(primary, primary, stanza, None)).await);
    root(primary, &put_back).await;
    check::archive_continuous(primary, primary, stanza, None).await.expect("the archive is whole again");

    // pitr: a setting of the host's own makes every xid target exclusive.
    root(pitr, &format!("echo 'recovery_target_inclusive = off' > /etc/postgresql/{}/main/conf.d/twin.conf", lab.platform().pg_major())).await;
    wrong.extend(expect_failure(twin("pitr", "recovery_target_inclusive"), check::pitr(primary, pitr, Some(standby), stanza, &[PitrTarget::Xid])).await);
    root(pitr, &format!("rm /etc/postgresql/{}/main/conf.d/twin.conf", lab.platform().pg_major())).await;
    // The check names its first restore point pglab_pitr_0: one of that name, earlier, is where recovery stops.
    primary.safe_psql("SELECT pg_create_restore_point('pglab_pitr_0')").await.unwrap();
    wrong.extend(expect_failure(twin("pitr", "a restore point"), check::pitr(primary, pitr, Some(standby), stanza, &[PitrTarget::Name])).await);

    // writes: a writer's acknowledged rows, some deleted behind its back.
    lab.workloads().start("twin", "pglab_twin", &[primary], Duration::from_millis(20)).await.unwrap();
    primary.poll_query_until("SELECT count(*) >= 100 FROM pglab_twin", "t", Deadline::standard()).await.unwrap();
    // pitr_acked: the same exclusive setting leaves out the drawn commit itself.
    root(pitr, &format!("echo 'recovery_target_inclusive = off' > /etc/postgresql/{}/main/conf.d/twin.conf", lab.platform().pg_major())).await;
    wrong.extend(expect_failure(twin("pitr_acked", ""), check::pitr_acked(&lab, "twin", primary, pitr, Some(standby), stanza, 7)).await);
    root(pitr, &format!("rm /etc/postgresql/{}/main/conf.d/twin.conf", lab.platform().pg_major())).await;
    primary.safe_psql("DELETE FROM pglab_twin WHERE id IN (3, 5, 8)").await.unwrap();
    wrong.extend(expect_failure(twin("writes", ""), check::writes(&lab, "twin", primary, Some(0))).await);
    primary.safe_psql("DROP TABLE pglab_twin").await.unwrap();

    // A second database, on both; then the standby promoted.
    primary.safe_psql("CREATE DATABASE shop").await.unwrap();
    primary
        .safe_psql_in("shop", "CREATE TABLE orders (id int PRIMARY KEY, total int); INSERT INTO orders SELECT g, g FROM generate_series(1, 50) g")
        .await
        .unwrap();
    check::standby_data(primary, standby).await.expect("the standby has both databases");
    standby.promote().await.unwrap();
    standby.wait_for_promotion(Deadline::standard()).await.unwrap();
    wrong.extend(expect_failure(twin("standby_data", ""), check::standby_data(primary, standby)).await);
    wrong.extend(expect_failure(twin("not_streaming", ""), check::not_streaming(standby, "could not connect")).await);
    check::same_data(primary, standby).await.expect("the promoted copy is equal before the change");
    standby.safe_psql_in("shop", "UPDATE orders SET total = total + 1 WHERE id = 7").await.unwrap();
    wrong.extend(expect_failure(twin("same_data", ""), check::same_data(primary, standby)).await);

    lab.shutdown().await.unwrap();
    assert!(wrong.is_empty(), "{} twin(s) wrong:\n{}", wrong.len(), wrong.join("\n"));
}

/// The object store's twin: s3-repo's repository is not encrypted.
#[tokio::test(flavor = "multi_thread")]
async fn repo_encrypted_fails_on_a_plain_repository() {
    let lab = ScenarioLab::new("s3-repo").through("6-pgpass").start().await.expect("s3-repo through its configuration");
    let (primary, s3) = (lab.host("primary").unwrap(), lab.host("s3").unwrap());
    primary.safe_psql("CREATE TABLE pglab_marker (v text); INSERT INTO pglab_marker VALUES ('twin-marker-7f3a9c2e')").await.unwrap();
    for line in ["pgbackrest --stanza=tutorial stanza-create", "pgbackrest --stanza=tutorial --type=full backup"] {
        let out = primary.sh("postgres", line).await.unwrap();
        assert!(out.success(), "{line}: {}", out.combined());
    }
    let wrong = expect_failure(twin("repo_encrypted", ""), check::repo_encrypted(s3, primary, "pglab_marker", "twin-marker-7f3a9c2e")).await;
    lab.shutdown().await.unwrap();
    assert!(wrong.is_none(), "{}", wrong.unwrap_or_default());
}

/// `docs/checks.md` is this table, and every check has a twin.
#[test]
fn the_twin_table_covers_every_check_and_is_in_the_docs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("docs/scenario.schema.json")).unwrap()).unwrap();
    let checks: Vec<String> =
        schema["$defs"]["CheckDecl"]["oneOf"].as_array().unwrap().iter().map(|c| c["properties"]["check"]["const"].as_str().unwrap().to_string()).collect();
    let without: Vec<&String> = checks.iter().filter(|c| !TWINS.iter().any(|t| t.check == c.as_str())).collect();
    assert!(without.is_empty(), "checks with no failing twin: {without:?}");
    let mut table = String::from("| check | broken on the lab | the check fails saying (regex) |\n|---|---|---|\n");
    for t in TWINS {
        table.push_str(&format!("| `{}` | {} | `{}` |\n", t.check, t.breaks, t.says.replace('|', r"\|")));
    }
    let doc = std::fs::read_to_string(root.join("docs/checks.md")).unwrap();
    assert!(doc.contains(&table), "docs/checks.md lacks the table as tests/twins.rs has it; put this in:\n{table}");
}
