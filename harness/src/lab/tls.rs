//! The lab's certificate authority: made at lab start when a host of the
//! lab serves TLS, so that every certificate in the lab chains to one CA
//! that exists nowhere else. Its key stays in the harness's memory; each
//! host gets the CA's certificate, a TLS host (an object store, a host
//! declared with `certificate = true`) its own key and certificate.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::error::{Error, Result};

/// Where every host of a lab with a CA finds its certificate (`{lab.ca}`).
pub(crate) const CA_FILE: &str = "/etc/pglab/lab-ca.crt";

/// Where a host with `certificate = true` finds its own certificate
/// (`{tls.cert}`) and key (`{tls.key}`, the `postgres` user's, 0600).
pub(crate) const HOST_CERT: &str = "/etc/pglab/tls/host.crt";
/// See [`HOST_CERT`].
pub(crate) const HOST_KEY: &str = "/etc/pglab/tls/host.key";

/// A lab's CA.
pub(crate) struct LabCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate the CA issued, and its key.
pub(crate) struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for LabCa {
    /// The certificate is public; the key is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabCa").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

fn tls_error(what: &str, e: rcgen::Error) -> Error {
    Error::Other(format!("lab CA: {what}: {e}"))
}

impl LabCa {
    /// A new CA named for the lab `lab`.
    pub(crate) fn new(lab: &str) -> Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_error("parameters", e))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.distinguished_name.push(DnType::CommonName, format!("pglab lab {lab} CA"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().map_err(|e| tls_error("key", e))?;
        let cert = params.self_signed(&key).map_err(|e| tls_error("self-signing", e))?;
        Ok(LabCa { cert_pem: cert.pem(), issuer: Issuer::new(params, key) })
    }

    /// The CA's certificate (PEM), for every host's trust.
    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A server and client certificate for `names` (host names or
    /// addresses; the first is its common name).
    pub(crate) fn issue(&self, names: &[String]) -> Result<Issued> {
        let mut params = CertificateParams::new(names.to_vec()).map_err(|e| tls_error("parameters", e))?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first.clone());
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().map_err(|e| tls_error("key", e))?;
        let cert = params.signed_by(&key, &self.issuer).map_err(|e| tls_error("signing", e))?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lab_has_its_own_ca_and_its_key_is_never_printed() {
        let (a, b) = (LabCa::new("aaaa0000").unwrap(), LabCa::new("bbbb1111").unwrap());
        assert_ne!(a.cert_pem(), b.cert_pem());
        assert!(a.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let issued = a.issue(&["s3".into(), "pglab.s3".into(), "198.18.0.13".into()]).unwrap();
        assert!(issued.key_pem.contains("PRIVATE KEY"));
        assert!(!format!("{a:?}").contains("PRIVATE"), "Debug shows no key");
    }
}
