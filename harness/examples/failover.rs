//! Your own failover test: your table on a streaming pair set up by the
//! corrected tutorial, the primary's postmaster killed, the standby
//! promoted, your rows checked and written again on the new primary.
//!
//! `cargo run -p pglab --example failover` (needs a Docker engine; builds
//! the host image on first use).

use pglab::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The tutorial through step 8: the standby streams from the primary.
    let lab = ScenarioLab::new("tutorial").through("8-streaming").without_idle_spares().start().await?;
    println!("lab {}", lab.id);
    let primary = lab.host("primary")?;
    let standby = lab.host("standby")?;

    // Your schema and data, through a client of your own.
    let app = primary.client().await?;
    app.batch_execute("CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL)").await?;
    let written = app.execute("INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 500) g", &[]).await?;
    // Replayed on the standby before the crash: nothing acknowledged is lost.
    primary.wait_for_catchup(standby, LsnKind::Replay, None).await?;
    println!("before: {}", pglab::check::standby_data(primary, standby).await?);

    primary.kill(KillWhat::Postmaster).await?;
    standby.promote().await?;
    standby.wait_for_promotion(Deadline::standard()).await?;

    let app = standby.client().await?;
    let rows: i64 = app.query_one("SELECT count(*) FROM orders", &[]).await?.get(0);
    assert_eq!(rows as u64, written, "every committed order survived the failover");
    app.execute("INSERT INTO orders VALUES (501, 'after the failover')", &[]).await?;
    // The new timeline is in pg_control once a checkpoint has run on it.
    app.batch_execute("CHECKPOINT").await?;
    let timeline: i32 = app.query_one("SELECT timeline_id FROM pg_control_checkpoint()", &[]).await?.get(0);
    println!("failover: {rows} orders kept, new primary takes writes on timeline {timeline}");
    assert!(timeline >= 2);

    lab.shutdown().await?;
    Ok(())
}
