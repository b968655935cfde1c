//! Your own backup tooling against the lab's object store: a PostgreSQL
//! host and an S3 store (HTTPS, a certificate from the lab's CA, a key made
//! for this lab), pgBackRest configured by hand from what
//! [`Lab::object_store`] hands back, a full backup into the bucket.
//!
//! `cargo run -p pglab --example object_store` (needs a Docker engine).

use pglab::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let platform = Platform::Debian12;
    let lab = LabSpec::new(platform, ["pg1"]).host("s3", HostKind::S3).start().await?;
    println!("lab {}", lab.id);
    let store = lab.object_store("s3")?;
    println!("store {} bucket {} region {}", store.url, store.bucket, store.region);
    let pg1 = lab.host("pg1")?;

    // Your configuration: the repository in the bucket, the lab's CA checked.
    pg1.exec(Cmd::shell("apt-get -qq update && apt-get -y -qq install pgbackrest >/dev/null").user("root")).await?;
    let conf = format!(
        "[global]\nrepo1-type=s3\nrepo1-path=/mine\nrepo1-s3-endpoint={}\nrepo1-s3-bucket={}\nrepo1-s3-region={}\n\
         repo1-s3-uri-style=path\nrepo1-s3-key={}\nrepo1-s3-key-secret={}\nrepo1-storage-ca-file={}\nstart-fast=y\n\n\
         [mine]\npg1-path=/var/lib/postgresql/{}/main\n",
        store.endpoint,
        store.bucket,
        store.region,
        store.key,
        store.key_secret,
        store.ca_file,
        platform.pg_major()
    );
    pg1.write_file("/etc/pgbackrest.conf", conf.as_bytes(), 0o640, "postgres", Some("postgres")).await?;
    pg1.safe_psql("ALTER SYSTEM SET archive_mode = on").await?;
    pg1.safe_psql("ALTER SYSTEM SET archive_command = 'pgbackrest --stanza=mine archive-push %p'").await?;
    pg1.restart().await?;

    pg1.pgbackrest(Br::new(BrCommand::StanzaCreate).stanza("mine")).await?;
    pg1.pgbackrest(Br::new(BrCommand::Check).stanza("mine")).await?;
    pg1.pgbackrest(Br::new(BrCommand::Backup).stanza("mine").opt("type", "full")).await?;
    let info = pg1.backup_info("mine").await?;
    let backups = info["backup"].as_array().map(Vec::len).unwrap_or(0);
    let status = info["status"]["message"].as_str().unwrap_or("?").to_string();
    println!("stanza mine in {}/{}: {status}, {backups} full backup(s)", store.url, store.bucket);
    assert_eq!((status.as_str(), backups), ("ok", 1));

    lab.shutdown().await?;
    Ok(())
}
