//! PEM certificates for the HTTPS clients' trust (the Alertmanager notifier, `srv-opr status`),
//! in the form ureq takes, with why not in words for the caller to name its file.

use ureq::tls::Certificate;

/// Every certificate of a PEM bundle (at least one), for an HTTPS client's trust: why not, in
/// words, for the caller to name the file.
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<Certificate<'static>>, String> {
    let certs = openssl::x509::X509::stack_from_pem(pem)
        .map_err(|e| format!("not PEM certificates ({e})"))?;
    if certs.is_empty() {
        return Err("holds no certificate".into());
    }
    certs
        .iter()
        .map(|c| {
            c.to_der()
                .map(|der| Certificate::from_der(&der).to_owned())
                .map_err(|e| e.to_string())
        })
        .collect()
}
