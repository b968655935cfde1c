//! Your own backup-and-restore test: your schema backed up by pgBackRest as
//! the corrected tutorial sets it up, a mistake made, and the backup restored
//! on another host to the restore point before the mistake.
//!
//! `cargo run -p pglab --example backup_restore` (needs a Docker engine).

use pglab::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Through the tutorial's first full backup: stanza, archiving, repository on the primary.
    let lab = ScenarioLab::new("tutorial").through("7-backup").without_idle_spares().start().await?;
    println!("lab {}", lab.id);
    let primary = lab.host("primary")?;

    primary
        .safe_psql(
            "CREATE TABLE accounts (id int PRIMARY KEY, balance numeric NOT NULL); \
             INSERT INTO accounts SELECT g, g * 10 FROM generate_series(1, 1000) g",
        )
        .await?;
    // Your backup of your schema (incremental: the tutorial's full backup
    // is its base), then a restore point, then the mistake.
    primary.pgbackrest(Br::new(BrCommand::Backup).stanza("tutorial").opt("type", "incr").flag("start-fast")).await?;
    let before = primary.safe_psql("SELECT count(*), sum(balance) FROM accounts").await?;
    primary.safe_psql("SELECT pg_create_restore_point('before_mistake')").await?;
    primary.safe_psql("UPDATE accounts SET balance = 0").await?;
    // The WAL holding the restore point reaches the repository.
    let segment = primary.safe_psql("SELECT pg_walfile_name(pg_switch_wal())").await?;
    let archived = format!("SELECT coalesce(last_archived_wal >= '{segment}', false) FROM pg_stat_archiver");
    primary.poll_query_until(&archived, "t", Deadline::standard()).await?;

    // The standby has the tutorial's pgBackRest client set up: restore there,
    // to the restore point, and promote.
    let standby = lab.host("standby")?;
    standby.stop(StopMode::Fast).await?;
    standby
        .pgbackrest(
            Br::new(BrCommand::Restore).stanza("tutorial").flag("delta").opt("type", "name").opt("target", "before_mistake").opt("target-action", "promote"),
        )
        .await?;
    standby.start().await?;
    standby.wait_for_promotion(Deadline::standard()).await?;

    let after = standby.safe_psql("SELECT count(*), sum(balance) FROM accounts").await?;
    println!("restored to before_mistake: {after} (was {before})");
    assert_eq!(after, before, "the restore point has the accounts as they were");

    lab.shutdown().await?;
    Ok(())
}
