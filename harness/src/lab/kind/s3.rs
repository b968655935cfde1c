//! `s3`: the lab's object store, the S3 server s3s-fs behind stunnel on
//! HTTPS port 443 with a certificate from the lab's CA (its own image: no
//! PostgreSQL, no sshd), its objects files on its disk. pglab makes its
//! access key at start and the bucket through the S3 API; ready when an
//! authenticated `ListObjectsV2` of the bucket answers over TLS, checked
//! against the lab's CA.

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

/// The region every lab store answers for (any: s3s-fs signs for the one asked).
pub(crate) const REGION: &str = "us-east-1";
/// SHA-256 of nothing: the payload hash of a request without a body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The bucket pglab makes in each store.
pub(crate) const BUCKET: &str = "pglab";

/// Where the server keeps its objects (`PGLAB_S3_ROOT`'s default).
const DATA_DIR: &str = "/var/lib/pglab-s3";

/// How a store is reached: its bucket and the lab's access key for it
/// (made by pglab at start from the OS's random source).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct S3Access {
    #[serde(default = "bucket")]
    pub bucket: String,
    pub key: String,
    pub key_secret: String,
}

fn bucket() -> String {
    BUCKET.into()
}

impl std::fmt::Debug for S3Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Access").field("bucket", &self.bucket).finish_non_exhaustive()
    }
}

impl S3Access {
    /// curl's config on stdin (`curl -K -`) for a request without a body:
    /// the key never on a command line. S3 signs the payload's hash too.
    fn curl_config(&self) -> Vec<u8> {
        format!(
            "user = \"{}:{}\"\naws-sigv4 = \"aws:amz:{REGION}:s3\"\ncacert = \"{CA_FILE}\"\nheader = \"x-amz-content-sha256: {EMPTY_SHA256}\"\n",
            self.key, self.key_secret
        )
        .into_bytes()
    }
}

/// The names its certificate holds: the host, and `<bucket>.<host>` for
/// virtual-host addressing.
pub(crate) fn cert_names(host: &str, ip: std::net::Ipv4Addr) -> Vec<String> {
    std::iter::once(host.to_string()).chain(aliases(host)).chain([ip.to_string()]).collect()
}

/// The other names it answers to, beside its host name: `<bucket>.<host>`.
pub(crate) fn aliases(host: &str) -> Vec<String> {
    vec![format!("{BUCKET}.{host}")]
}

impl Kind for S3 {
    fn about(&self) -> &'static str {
        "an S3-compatible object store (s3s-fs) on HTTPS, no PostgreSQL"
    }

    fn has(&self, needs: Needs) -> bool {
        matches!(needs, Needs::Any | Needs::ObjectStore)
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

    /// s3s-fs makes three files per object, two of them in one flat
    /// directory: a full backup of the tutorial's cluster (965 objects)
    /// took 16-41 s in the layers, growing with the store, 6-8 s on a volume.
    fn data_dir(&self) -> Option<&'static str> {
        Some(DATA_DIR)
    }

    /// Its key, certificate and units; its bucket made through the S3
    /// API; then proven over TLS: a list signed with the lab's key
    /// answers, one signed with another key is refused.
    fn provision<'a>(&'a self, host: &'a Host, provided: &'a Provided) -> BoxFuture<'a, Result<()>> {
        async move {
            let access = S3Access::generate(host)?;
            serve(host, provided, &access).await?;
            make_bucket(host, &access).await?;
            prove_access(host, &access).await?;
            provided.set_store(&host.name, access)
        }
        .boxed()
    }

    /// Its server answers TLS with the lab CA's certificate (after a
    /// restart too, with the objects it held: they are files on its disk).
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

impl S3Access {
    /// A new key for the store `host`, handed to the lab's redactor before
    /// anything can show it.
    fn generate(host: &Host) -> Result<Self> {
        let mut buf = [0u8; 38];
        getrandom::fill(&mut buf).map_err(|e| Error::Environment(format!("no random source for the store's key: {e}")))?;
        let (id, secret) = buf.split_at(8);
        let access = S3Access { bucket: BUCKET.into(), key: format!("PGLAB{}", hex::encode_upper(id)), key_secret: hex::encode(secret) };
        host.transcript().redactor().add(&access.key);
        host.transcript().redactor().add(&access.key_secret);
        Ok(access)
    }

    /// A request without a body to `url`, signed with this key, run as
    /// root on the store: its stdout is the HTTP status.
    fn status_of(&self, method: &str, url: &str) -> Cmd {
        Cmd::shell(format!("curl -sS -o /dev/null -w '%{{http_code}}' -X {method} -K - '{url}'")).user("root").stdin(self.curl_config())
    }

    /// The server's environment file (root's alone): its key, and the
    /// name under which it answers virtual-host requests.
    fn env_file(&self, host: &str) -> Vec<u8> {
        format!("PGLAB_S3_KEY={}\nPGLAB_S3_KEY_SECRET={}\nPGLAB_S3_DOMAIN={host}\n", self.key, self.key_secret).into_bytes()
    }
}

/// Gives the store its key and its certificate from the lab CA and starts
/// its units (enabled in the image: a restarted host serves again), until
/// HTTPS answers.
async fn serve(host: &Host, provided: &Provided, access: &S3Access) -> Result<()> {
    let t = std::time::Instant::now();
    let issued = provided.issue(&cert_names(&host.name, host.ip))?;
    host.write_file("/etc/pglab/s3/access.env", &access.env_file(&host.name), 0o600, "root", None).await?;
    host.write_file("/etc/pglab/s3/tls.crt", issued.cert_pem.as_bytes(), 0o644, "root", None).await?;
    host.write_file("/etc/pglab/s3/tls.key", issued.key_pem.as_bytes(), 0o600, "root", None).await?;
    // Enabled in the image, they start at boot once these files are there;
    // when boot came first they were skipped. Started (or found running)
    // as soon as systemd takes a request, without waiting for the whole boot.
    let start = Cmd::shell("systemctl start pglab-s3.service pglab-s3-tls.service").user("root").any_status();
    let units = poll_until(&format!("systemd on {} to start the store", host.name), "its units started", Deadline::standard(), || async {
        let out = host.probe(&start).await?;
        Ok(if out.status == 0 { Probe::Ready(()) } else { Probe::NotYet(out.combined().trim().to_string()) })
    })
    .await;
    host.with_logs(units).await?;
    let started = std::time::Instant::now();
    wait_for_tls(host).await?;
    let serving = format!("{} ms after its units had started", started.elapsed().as_millis());
    host.note("pglab (harness)", "the store answers HTTPS", &serving, t.elapsed());
    Ok(())
}

/// `CreateBucket`, signed with the lab's key, over TLS.
async fn make_bucket(host: &Host, access: &S3Access) -> Result<()> {
    let t = std::time::Instant::now();
    let out = host.exec(access.status_of("PUT", &format!("https://{}/{}", host.name, access.bucket))).await?;
    if out.stdout.trim() != "200" {
        return Err(Error::Other(format!("{}: CreateBucket {} answered {} (200 expected)", host.name, access.bucket, out.combined().trim())));
    }
    host.note("pglab (harness)", &format!("CreateBucket {}", access.bucket), "200, signed with the lab's key (made by pglab, never shown)", t.elapsed());
    Ok(())
}

/// Over TLS, checked against the lab CA: a list signed with the lab's key
/// answers, and the same list signed with another key gets 403 (a store
/// that checks no signature would take any key, and prove nothing).
async fn prove_access(host: &Host, access: &S3Access) -> Result<()> {
    let t = std::time::Instant::now();
    let base = format!("https://{}/{}", host.name, access.bucket);
    let out = host.exec(Cmd::shell(format!("curl -sS -f -K - '{base}?list-type=2'")).user("root").stdin(access.curl_config())).await?;
    if !out.stdout.contains("<ListBucketResult") {
        return Err(Error::Other(format!("{}: ListObjectsV2 of {} did not answer: {}", host.name, access.bucket, out.combined().trim())));
    }
    let other = S3Access { key: "PGLABNOTTHEKEY00000".into(), key_secret: "not-the-secret".into(), ..access.clone() };
    let refused = host.exec(other.status_of("GET", &format!("{base}?list-type=2"))).await?;
    if refused.stdout.trim() != "403" {
        let got = refused.stdout.trim();
        return Err(Error::Other(format!("{}: a list signed with an unknown key answered {got} (403 expected): the store checks no signature", host.name)));
    }
    let what = format!("object store: https://{}/{} (s3s-fs behind stunnel)", host.name, access.bucket);
    host.note("pglab (harness)", &what, "ListObjectsV2 signed with the lab's key answered over TLS (lab CA); another key: 403", t.elapsed());
    Ok(())
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
    host.with_logs(waited).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn its_certificate_names_every_way_a_lab_host_reaches_it() {
        let names = cert_names("s3", std::net::Ipv4Addr::new(198, 18, 0, 14));
        assert_eq!(names, ["s3", "pglab.s3", "198.18.0.14"], "host, virtual-host bucket, address");
        let config = String::from_utf8(S3Access { bucket: BUCKET.into(), key: "K".into(), key_secret: "S".into() }.curl_config()).unwrap();
        assert!(config.contains("user = \"K:S\"") && config.contains(EMPTY_SHA256) && config.contains(CA_FILE), "{config}");
        assert!(!format!("{:?}", S3Access { bucket: BUCKET.into(), key: "K".into(), key_secret: "SECRET".into() }).contains("SECRET"));
    }

    #[test]
    fn the_servers_environment_holds_the_key_and_its_name() {
        let env = String::from_utf8(S3Access { bucket: BUCKET.into(), key: "K1".into(), key_secret: "S1".into() }.env_file("store")).unwrap();
        assert_eq!(env, "PGLAB_S3_KEY=K1\nPGLAB_S3_KEY_SECRET=S1\nPGLAB_S3_DOMAIN=store\n");
    }
}
