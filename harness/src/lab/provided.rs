//! What pglab makes for a lab's hosts as it starts them: the lab's CA when
//! a host serves TLS, and each object store's access key. Its secrets are
//! the lab's (redacted wherever the lab's text goes); its variables join a
//! run's `{...}` set.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::kind::s3::{S3Access, REGION};
use super::tls::{Issued, LabCa, CA_FILE, HOST_CERT, HOST_KEY};
use super::LabSpec;
use crate::error::{Error, Result};
use crate::vocab::HostKind;

/// The lab's CA and stores' keys.
#[derive(Debug, Default)]
pub(crate) struct Provided {
    ca: Option<LabCa>,
    /// The CA's certificate of the lab a checkpoint saved (its key was not
    /// kept: a restored lab issues no certificate).
    kept_ca: Option<String>,
    /// Each store's access, once the store has made it.
    stores: BTreeMap<String, OnceLock<S3Access>>,
    /// Some host has a certificate of its own (`{tls.cert}`, `{tls.key}`).
    certificates: bool,
}

impl Provided {
    /// A CA for a lab with a TLS host, a place for each store's key:
    /// nothing for a lab of neither. A lab started from a checkpoint that
    /// had a CA keeps its certificate and its stores' keys instead.
    pub(crate) fn for_spec(lab: &str, spec: &LabSpec) -> Result<Self> {
        // Of the hosts it starts: a lab saving a checkpoint leaves those
        // added after its point idle, and must not give its hosts a CA
        // whose key the checkpoint cannot keep.
        let live = || spec.hosts.iter().filter(|h| !h.idle);
        let stores: BTreeMap<String, OnceLock<S3Access>> = live().filter(|h| h.kind == HostKind::S3).map(|h| (h.name.clone(), OnceLock::new())).collect();
        let certificates = live().any(|h| h.certificate);
        if let Some(Kept { ca_pem: Some(pem), stores: kept }) = &spec.kept {
            let provided = Provided { ca: None, kept_ca: Some(pem.clone()), stores, certificates };
            for (name, access) in kept {
                provided.set_store(name, access.clone())?;
            }
            return Ok(provided);
        }
        let ca = if stores.is_empty() && !certificates { None } else { Some(LabCa::new(lab)?) };
        Ok(Provided { ca, kept_ca: None, stores, certificates })
    }

    /// The CA's certificate, when the lab has one.
    pub(crate) fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(LabCa::cert_pem).or(self.kept_ca.as_deref())
    }

    /// Whether the CA is a checkpoint's: restored hosts already trust it.
    pub(crate) fn ca_kept(&self) -> bool {
        self.kept_ca.is_some()
    }

    /// A certificate from the lab's CA.
    pub(crate) fn issue(&self, names: &[String]) -> Result<Issued> {
        let no_ca =
            if self.ca_kept() { "this lab was started from a checkpoint, which keeps its CA's certificate but not its key" } else { "this lab has no CA" };
        self.ca.as_ref().ok_or_else(|| Error::Other(no_ca.into()))?.issue(names)
    }

    /// What a checkpoint keeps of it: the CA's certificate and each store's access.
    pub(crate) fn kept(&self) -> Kept {
        Kept { ca_pem: self.ca_pem().map(str::to_string), stores: self.made().map(|(n, a)| (n.clone(), a.clone())).collect() }
    }

    /// The store `host`, once it is up.
    pub(crate) fn object_store(&self, host: &str) -> Result<ObjectStore> {
        let access = self.stores.get(host).and_then(OnceLock::get).ok_or_else(|| Error::Other(format!("{host} is not an object store of this lab")))?;
        Ok(ObjectStore {
            endpoint: host.to_string(),
            url: format!("https://{host}"),
            bucket: access.bucket.clone(),
            region: REGION.to_string(),
            ca_file: CA_FILE.to_string(),
            ca_pem: self.ca_pem().unwrap_or_default().to_string(),
            key: access.key.clone(),
            key_secret: access.key_secret.clone(),
        })
    }

    /// Records the access the store `host` made.
    pub(crate) fn set_store(&self, host: &str, access: S3Access) -> Result<()> {
        let slot = self.stores.get(host).ok_or_else(|| Error::Other(format!("{host} is not an object store of this lab")))?;
        slot.set(access).map_err(|_| Error::Other(format!("{host}: its access was made twice")))
    }

    fn made(&self) -> impl Iterator<Item = (&String, &S3Access)> {
        self.stores.iter().filter_map(|(n, a)| a.get().map(|a| (n, a)))
    }

    /// Its variables: `{lab.ca}`, `{tls.cert}` and `{tls.key}` when a host
    /// has a certificate, and per store `{<name>.bucket}`, `{<name>.region}`,
    /// `{secret.<name>.key}`, `{secret.<name>.key_secret}`.
    pub(crate) fn vars(&self) -> Vec<(String, String)> {
        let ca = lab_vars(self.ca.is_some(), self.certificates);
        ca.into_iter().chain(self.made().flat_map(|(name, a)| store_vars(name, a))).collect()
    }
}

/// An object store of a lab (a host of kind `s3`): where it answers and
/// how to sign for it, to point your own backup tooling at it. From
/// [`Lab::object_store`](super::Lab::object_store).
#[derive(Clone)]
pub struct ObjectStore {
    /// Its host name inside the lab (`repo1-s3-endpoint`).
    pub endpoint: String,
    /// `https://<endpoint>` (port 443).
    pub url: String,
    /// The bucket made for the lab.
    pub bucket: String,
    /// The region to sign for.
    pub region: String,
    /// Where every host of the lab has the CA that signed its certificate
    /// (`repo1-storage-ca-file`).
    pub ca_file: String,
    /// That CA's certificate (PEM), for a client outside the lab's hosts.
    pub ca_pem: String,
    /// The lab's access key (a secret: the lab's transcript redacts it).
    pub key: String,
    /// Its secret (never shown by `Debug`).
    pub key_secret: String,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStore").field("url", &self.url).field("bucket", &self.bucket).field("region", &self.region).finish_non_exhaustive()
    }
}

/// What a checkpoint keeps of what pglab made for its lab, so that the
/// restored hosts' files (the CA they trust, the store's certificate and
/// key, the key in pgBackRest's configuration) still hold.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Kept {
    pub ca_pem: Option<String>,
    pub stores: BTreeMap<String, S3Access>,
}

fn lab_vars(ca: bool, certificates: bool) -> Vec<(String, String)> {
    let ca = ca.then(|| ("lab.ca".to_string(), CA_FILE.to_string()));
    let own = [("tls.cert", HOST_CERT), ("tls.key", HOST_KEY)].map(|(k, v)| (k.to_string(), v.to_string()));
    ca.into_iter().chain(own.into_iter().filter(|_| certificates)).collect()
}

fn store_vars(name: &str, a: &S3Access) -> Vec<(String, String)> {
    vec![
        (format!("{name}.bucket"), a.bucket.clone()),
        (format!("{name}.region"), REGION.to_string()),
        (format!("secret.{name}.key"), a.key.clone()),
        (format!("secret.{name}.key_secret"), a.key_secret.clone()),
    ]
}

/// The variables a lab with these object stores (by name), and hosts with
/// certificates or not, will have, with placeholders for its secrets: what
/// validation checks a scenario's `{...}` against.
pub(crate) fn declared_vars(stores: &[&str], certificates: bool) -> Vec<(String, String)> {
    let placeholder = S3Access { bucket: super::kind::s3::BUCKET.into(), key: "<secret>".into(), key_secret: "<secret>".into() };
    let ca = lab_vars(!stores.is_empty() || certificates, certificates);
    ca.into_iter().chain(stores.iter().flat_map(|n| store_vars(n, &placeholder))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_without_a_store_gets_no_ca_and_no_vars() {
        let spec = LabSpec::new(crate::platform::Platform::Debian12, ["pg1", "pg2"]);
        let p = Provided::for_spec("abcd0123", &spec).unwrap();
        assert!(p.ca_pem().is_none() && p.vars().is_empty());
    }

    #[test]
    fn a_store_has_a_ca_and_its_own_key_once_made() {
        let spec = LabSpec::new(crate::platform::Platform::Debian12, ["pg1"]).host("s3", HostKind::S3).host("s3b", HostKind::S3);
        let p = Provided::for_spec("abcd0123", &spec).unwrap();
        assert!(p.ca_pem().is_some());
        assert_eq!(p.vars().len(), 1, "no key before the store made one, only the CA: {:?}", p.vars());
        let access = |k: &str| S3Access { bucket: "pglab".into(), key: format!("K{k}"), key_secret: format!("S{k}") };
        p.set_store("s3", access("a")).unwrap();
        p.set_store("s3b", access("b")).unwrap();
        assert!(p.set_store("s3", access("c")).is_err(), "made once");
        assert!(p.set_store("pg1", access("d")).is_err(), "not a store");
        let secrets: Vec<String> = p.vars().into_iter().filter(|(k, _)| k.starts_with("secret.")).map(|(_, v)| v).collect();
        assert_eq!(secrets, ["Ka", "Sa", "Kb", "Sb"]);
        let names: Vec<String> = p.vars().into_iter().map(|(k, _)| k).collect();
        let declared: Vec<String> = declared_vars(&["s3", "s3b"], false).into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, declared, "validation knows the names a run gives");
        assert!(names.contains(&"secret.s3.key_secret".to_string()) && names.contains(&"lab.ca".to_string()));
    }

    #[test]
    fn a_host_with_a_certificate_brings_the_ca_and_its_own_paths() {
        let spec = LabSpec::new(crate::platform::Platform::Debian12, ["pg1"]).host("repo", HostKind::Repo).certificate("repo");
        let p = Provided::for_spec("abcd0123", &spec).unwrap();
        let issued = p.issue(&["repo".into()]).unwrap();
        assert!(issued.cert_pem.contains("CERTIFICATE") && p.ca_pem().is_some());
        let names: Vec<String> = p.vars().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["lab.ca", "tls.cert", "tls.key"]);
        let declared: Vec<String> = declared_vars(&[], true).into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, declared);
        assert!(declared_vars(&[], false).is_empty());
    }
}
