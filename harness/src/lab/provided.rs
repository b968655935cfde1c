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
    /// Each store's access, once the store has made it.
    stores: BTreeMap<String, OnceLock<S3Access>>,
    /// Some host has a certificate of its own (`{tls.cert}`, `{tls.key}`).
    certificates: bool,
}

impl Provided {
    /// A CA for a lab with a TLS host, a place for each store's key: nothing for a lab of neither.
    pub(crate) fn for_spec(lab: &str, spec: &LabSpec) -> Result<Self> {
        let stores: BTreeMap<String, OnceLock<S3Access>> =
            spec.hosts.iter().filter(|h| h.kind == HostKind::S3).map(|h| (h.name.clone(), OnceLock::new())).collect();
        let certificates = spec.hosts.iter().any(|h| h.certificate);
        let ca = if stores.is_empty() && !certificates { None } else { Some(LabCa::new(lab)?) };
        Ok(Provided { ca, stores, certificates })
    }

    /// The CA's certificate, when the lab has one.
    pub(crate) fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(LabCa::cert_pem)
    }

    /// A certificate from the lab's CA.
    pub(crate) fn issue(&self, names: &[String]) -> Result<Issued> {
        self.ca.as_ref().ok_or_else(|| Error::Other("this lab has no CA".into()))?.issue(names)
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
