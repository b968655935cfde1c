//! `s3`: the lab's object store, moto's S3 server on HTTPS port 443 with a
//! certificate from the lab's CA (its own image: Python and moto, no
//! PostgreSQL, no sshd). pglab makes its access key and bucket at start;
//! ready when an authenticated `ListObjectsV2` of the bucket answers over
//! TLS, checked against the lab's CA.

use futures_util::future::{BoxFuture, FutureExt};

use super::{Kind, Provided};
use crate::engine::image::HostImage;
use crate::error::{Error, Result};
use crate::lab::host::Host;
use crate::lab::tls::CA_FILE;
use crate::lab::Cmd;
use crate::platform::Platform;
use crate::time::{poll_until, Deadline, Probe};
use crate::vocab::Needs;

pub(crate) struct S3;

/// The region every lab store answers for (moto's default).
pub(crate) const REGION: &str = "us-east-1";
/// The bucket pglab makes in each store.
pub(crate) const BUCKET: &str = "pglab";

/// How a store is reached: its bucket and the lab's access key for it.
#[derive(Clone)]
pub(crate) struct S3Access {
    pub bucket: String,
    pub key: String,
    pub key_secret: String,
}

impl std::fmt::Debug for S3Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Access").field("bucket", &self.bucket).finish_non_exhaustive()
    }
}

impl S3Access {
    /// A fresh access key for a store (random: nothing of it is guessable).
    pub(crate) fn generate() -> Result<Self> {
        let mut buf = [0u8; 38];
        getrandom::fill(&mut buf).map_err(|e| Error::Environment(format!("no random source for the lab's access keys: {e}")))?;
        let hex = hex::encode(buf);
        Ok(S3Access { bucket: BUCKET.into(), key: format!("PGLAB{}", hex[..15].to_uppercase()), key_secret: hex[15..55].to_string() })
    }

    /// curl's config on stdin (`curl -K -`): the key never on a command line.
    fn curl_config(&self) -> Vec<u8> {
        format!("user = \"{}:{}\"\naws-sigv4 = \"aws:amz:{REGION}:s3\"\ncacert = \"{CA_FILE}\"\n", self.key, self.key_secret).into_bytes()
    }
}

/// The names its certificate holds: the host, and `<bucket>.<host>` for
/// virtual-host addressing.
pub(crate) fn cert_names(host: &str, ip: std::net::Ipv4Addr) -> Vec<String> {
    std::iter::once(host.to_string()).chain(aliases(host)).chain([ip.to_string()]).collect()
}

/// moto's settings (none yet: a request to `<host>` is path-style, one to
/// `<bucket>.<host>` virtual-host style, by moto's own reading of the name).
fn store_env(_host: &str) -> String {
    String::from("# moto's environment, written by pglab\n")
}

/// The other names it answers to, beside its host name: `<bucket>.<host>`.
pub(crate) fn aliases(host: &str) -> Vec<String> {
    vec![format!("{BUCKET}.{host}")]
}

impl Kind for S3 {
    fn about(&self) -> &'static str {
        "an S3-compatible object store (moto) on HTTPS, no PostgreSQL"
    }

    fn has(&self, needs: Needs) -> bool {
        needs == Needs::Any
    }

    fn init_args(&self, _: Platform) -> Vec<String> {
        Vec::new()
    }

    fn log_units(&self) -> &'static [&'static str] {
        &["pglab-s3.service", "pglab-s3-tls.service"]
    }

    fn image(&self) -> Option<HostImage> {
        Some(HostImage::object_store())
    }

    /// Its certificate and key, the unit started, the bucket made with the lab's key.
    fn provision<'a>(&'a self, host: &'a Host, provided: &'a Provided) -> BoxFuture<'a, Result<()>> {
        async move {
            let t = std::time::Instant::now();
            let access = provided.store(&host.name)?;
            let issued = provided.issue(&cert_names(&host.name, host.ip))?;
            host.write_file("/etc/pglab/s3/tls.crt", issued.cert_pem.as_bytes(), 0o644, "root", None).await?;
            host.write_file("/etc/pglab/s3/tls.key", issued.key_pem.as_bytes(), 0o600, "root", None).await?;
            host.write_file("/etc/pglab/s3/env", store_env(&host.name).as_bytes(), 0o644, "root", None).await?;
            crate::lab::boot::wait_for_host_boot(host).await?;
            // Enabled: a restarted host serves again (an empty store: moto keeps objects in memory).
            host.exec(Cmd::shell("systemctl enable --now pglab-s3.service pglab-s3-tls.service").user("root")).await?;
            wait_for_tls(host).await?;
            let base = format!("https://{}/{}", host.name, access.bucket);
            // Recorded: the transcript shows the bucket being made; the key is on stdin, never shown.
            host.exec(Cmd::shell(format!("curl -sS -f -K - -X PUT '{base}'")).user("root").stdin(access.curl_config())).await?;
            let out = host.exec(Cmd::shell(format!("curl -sS -f -K - '{base}?list-type=2'")).user("root").stdin(access.curl_config())).await?;
            if !out.stdout.contains("<ListBucketResult") {
                return Err(Error::Other(format!("{}: ListObjectsV2 of {} did not answer: {}", host.name, access.bucket, out.combined().trim())));
            }
            let what = format!("object store: https://{}/{} (moto)", host.name, access.bucket);
            host.note("pglab (harness)", &what, "certificate from the lab CA; bucket made and listed (ListObjectsV2) with the lab's key", t.elapsed());
            Ok(())
        }
        .boxed()
    }

    /// Its server answers TLS with the lab CA's certificate (after a
    /// restart: empty, its bucket gone, as moto keeps objects in memory).
    fn ready<'a>(&'a self, host: &'a Host) -> BoxFuture<'a, Result<()>> {
        async move {
            if host.probe(&Cmd::shell("test -e /etc/pglab/s3/tls.key").user("root").any_status()).await?.status == 0 {
                wait_for_tls(host).await?;
            }
            Ok(())
        }
        .boxed()
    }
}

/// Polls until the server answers HTTPS, its certificate checked against
/// the lab's CA; a timeout carries the store's journal.
async fn wait_for_tls(host: &Host) -> Result<()> {
    let probe = Cmd::shell(format!("curl -sS -o /dev/null -w '%{{http_code}}' --cacert {CA_FILE} https://{}/", host.name)).user("root").any_status();
    let waited = poll_until(&format!("{} to answer HTTPS", host.name), "an HTTP status over TLS", Deadline::standard(), || async {
        let out = host.probe(&probe).await?;
        Ok(match out.status {
            0 => Probe::Ready(()),
            _ => Probe::NotYet(out.combined().trim().to_string()),
        })
    })
    .await;
    match waited {
        Err(Error::Timeout(mut t)) => {
            t.last = format!("{}\n{}", t.last, host.relevant_logs().await);
            Err(Error::Timeout(t))
        }
        r => r,
    }
}
