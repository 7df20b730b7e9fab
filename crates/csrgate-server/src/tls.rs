//! Native TLS through openssl: the server certificate, its key and the optional client CA as one
//! [`TlsMaterial`] per configuration generation, and the acceptor that takes the current
//! generation's material at every handshake, so a SIGHUP replaces the certificate without
//! dropping a connection.
//!
//! Protocols and ciphers are Mozilla's "intermediate" profile (v5): TLS 1.2 and 1.3, AEAD
//! ciphers with forward secrecy only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    ClientHelloResponse, SslAcceptor, SslContext, SslMethod, SslVerifyMode, SslVersion,
};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

use crate::Gateway;

/// Where the TLS material comes from (`tls_certificate`, `tls_private_key`, `tls_client_ca`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server certificate first, then its chain.
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8, traditional RSA/EC; encrypted or not).
    pub private_key: PathBuf,
    /// PEM CA certificates whose client certificates authenticate on the admin API (mTLS).
    pub client_ca: Option<PathBuf>,
    /// Ask every client for a certificate (optional) and complete the handshake whatever it
    /// presents: EST re-enrollment (RFC 7030 4.2.2) authenticates with a certificate csrgate
    /// issued, which no `client_ca` may vouch for. Only a certificate that verifies against
    /// `client_ca` is an admin; any other is only [`PresentedCertificate`], checked by its user.
    pub accept_any_client_certificate: bool,
}

/// A loaded server certificate: an openssl context with the certificate, chain and key (checked
/// to match) and, with a client CA, optional client-certificate verification.
pub struct TlsMaterial {
    context: SslContext,
    /// The client CA certificates, DER, to tell them apart from csrgate's own CA.
    client_ca_der: Vec<Vec<u8>>,
    /// [`TlsFiles::accept_any_client_certificate`].
    accept_any_client_certificate: bool,
    /// The server certificate's subject, for logs.
    pub subject: String,
    /// Its notAfter, as openssl prints it.
    pub not_after: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// One line for a name: `CN=ops,O=Example` (short names where openssl has them).
pub(crate) fn one_line(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let key = entry.object().nid().short_name().unwrap_or("?");
            let value = String::from_utf8_lossy(entry.data().as_slice());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The Mozilla intermediate profile with our session id context (client verification needs one).
fn base_builder() -> Result<openssl::ssl::SslAcceptorBuilder, String> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(|e| format!("openssl: {e}"))?;
    builder
        .set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(|e| format!("openssl: {e}"))?;
    builder
        .set_session_id_context(b"csrgate")
        .map_err(|e| format!("openssl: {e}"))?;
    Ok(builder)
}

impl TlsMaterial {
    /// Reads and checks the files: the certificate chain parses, the key decrypts (with
    /// `passphrase` when it is encrypted) and matches the certificate, the client CA parses.
    /// Errors name the file and what to change.
    pub fn load(files: &TlsFiles, passphrase: Option<&[u8]>) -> Result<Self, String> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        let chain_pem = read(&files.certificate)?;
        let client_ca_pem = match &files.client_ca {
            Some(path) => read(path)?,
            None => Vec::new(),
        };
        let mut chain = X509::stack_from_pem(&chain_pem).map_err(|e| {
            format!(
                "{}: not a PEM certificate chain: {e}",
                files.certificate.display()
            )
        })?;
        if chain.is_empty() {
            return Err(format!(
                "{}: no certificate in it",
                files.certificate.display()
            ));
        }
        let leaf = chain.remove(0);
        let key_pem = read(&files.private_key)?;
        let key = private_key(&key_pem, passphrase)
            .map_err(|why| format!("{}: {why}", files.private_key.display()))?;
        let mut builder = base_builder()?;
        builder
            .set_certificate(&leaf)
            .map_err(|e| format!("openssl: {e}"))?;
        for extra in chain {
            builder
                .add_extra_chain_cert(extra)
                .map_err(|e| format!("openssl: {e}"))?;
        }
        let mismatch = || {
            format!(
                "{} is not the key of the certificate in {}",
                files.private_key.display(),
                files.certificate.display()
            )
        };
        builder.set_private_key(&key).map_err(|_| mismatch())?;
        builder.check_private_key().map_err(|_| mismatch())?;
        // Sessions are bound to this material: one resumed after a reload that changed the
        // certificate or the client CA would bring back a client identity the new CA may not
        // vouch for. The ClientHello callback installs this context before session lookup.
        let mut binding = chain_pem.clone();
        binding.extend_from_slice(&client_ca_pem);
        builder
            .set_session_id_context(&openssl::sha::sha256(&binding))
            .map_err(|e| format!("openssl: {e}"))?;
        let mut client_ca_der = Vec::new();
        if let Some(path) = &files.client_ca {
            let cas = X509::stack_from_pem(&client_ca_pem)
                .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
            if cas.is_empty() {
                return Err(format!("{}: no certificate in it", path.display()));
            }
            let mut store = X509StoreBuilder::new().map_err(|e| format!("openssl: {e}"))?;
            for ca in cas {
                client_ca_der.push(ca.to_der().map_err(|e| format!("openssl: {e}"))?);
                builder
                    .add_client_ca(&ca)
                    .map_err(|e| format!("openssl: {e}"))?;
                store.add_cert(ca).map_err(|e| format!("openssl: {e}"))?;
            }
            builder
                .set_verify_cert_store(store.build())
                .map_err(|e| format!("openssl: {e}"))?;
            // Only certificates made for TLS clients (clientAuth, if an EKU is present).
            builder
                .verify_param_mut()
                .set_purpose(openssl::x509::X509PurposeId::SSL_CLIENT)
                .map_err(|e| format!("openssl: {e}"))?;
            // Optional: the public API needs no client certificate; a presented one must verify
            // (unless any is accepted, below).
            builder.set_verify(SslVerifyMode::PEER);
        } else if files.accept_any_client_certificate {
            // An empty trust store: without tls_client_ca no presented certificate verifies, so
            // none is an admin, whatever the system's roots.
            let store = X509StoreBuilder::new().map_err(|e| format!("openssl: {e}"))?;
            builder
                .set_verify_cert_store(store.build())
                .map_err(|e| format!("openssl: {e}"))?;
        }
        if files.accept_any_client_certificate {
            // The handshake completes whatever the certificate (it still proves its key with
            // CertificateVerify); the verification result stays in the connection for
            // `peer_certificate` to read, and decides admin alone.
            builder.set_verify_callback(SslVerifyMode::PEER, accept_any);
        }
        let subject = one_line(leaf.subject_name());
        let not_after = leaf.not_after().to_string();
        Ok(TlsMaterial {
            context: builder.build().into_context(),
            client_ca_der,
            accept_any_client_certificate: files.accept_any_client_certificate,
            subject,
            not_after,
        })
    }
}

impl TlsMaterial {
    /// Refuses a `tls_client_ca` that contains a certificate of csrgate's own chain
    /// (`identity_chain_pem`) or vouches for csrgate's CA certificate (an issuer above it, a
    /// cross-certificate: the CA certificate verifies against it, partial chains allowed):
    /// every requester gets a clientAuth certificate from csrgate, and would then be an admin.
    pub fn check_client_ca_apart(&self, identity_chain_pem: &str) -> Result<(), String> {
        let openssl = |e: openssl::error::ErrorStack| format!("openssl: {e}");
        let own = X509::stack_from_pem(identity_chain_pem.as_bytes())
            .map_err(|e| format!("the identity's chain does not parse: {e}"))?;
        let refused = |certificate: &X509| {
            format!(
                "tls_client_ca contains or vouches for csrgate's own CA ({}): every requester \
                 would authenticate as an admin with the certificate csrgate issued it; use a \
                 separate CA for admin clients",
                one_line(certificate.subject_name())
            )
        };
        for certificate in &own {
            if self
                .client_ca_der
                .contains(&certificate.to_der().map_err(openssl)?)
            {
                return Err(refused(certificate));
            }
        }
        let (Some(ca), false) = (own.first(), self.client_ca_der.is_empty()) else {
            return Ok(());
        };
        let mut store = X509StoreBuilder::new().map_err(openssl)?;
        for der in &self.client_ca_der {
            store
                .add_cert(X509::from_der(der).map_err(openssl)?)
                .map_err(openssl)?;
        }
        store
            .set_flags(openssl::x509::verify::X509VerifyFlags::PARTIAL_CHAIN)
            .map_err(openssl)?;
        let store = store.build();
        let mut untrusted = openssl::stack::Stack::new().map_err(openssl)?;
        for issuer in own.iter().skip(1) {
            untrusted.push(issuer.clone()).map_err(openssl)?;
        }
        let mut context = openssl::x509::X509StoreContext::new().map_err(openssl)?;
        let vouched = context
            .init(&store, ca, &untrusted, |context| context.verify_cert())
            .map_err(openssl)?;
        if vouched {
            return Err(refused(ca));
        }
        Ok(())
    }
}

/// An encrypted PEM key needs the passphrase; a plain one must not be given one silently.
fn private_key(pem: &[u8], passphrase: Option<&[u8]>) -> Result<PKey<Private>, String> {
    match (csrgate_pki::pem_key_is_encrypted(pem), passphrase) {
        (false, _) => {
            PKey::private_key_from_pem(pem).map_err(|e| format!("not a PEM private key: {e}"))
        }
        (true, Some(passphrase)) => PKey::private_key_from_pem_passphrase(pem, passphrase)
            .map_err(|_| "the passphrase does not decrypt this key".to_owned()),
        (true, None) => Err(
            "the key is encrypted: give tls_key_passphrase_file, or the CA passphrase through \
             its usual sources"
                .to_owned(),
        ),
    }
}

/// The acceptor of every TLS listener: at each ClientHello it switches the connection to the
/// current generation's context, so the certificate served is always the latest loaded one.
pub(crate) fn acceptor(gateway: Arc<Gateway>) -> Result<SslAcceptor, String> {
    let generation = gateway.generation();
    let Some(material) = generation.tls.as_ref() else {
        return Err("a TLS listener needs tls_certificate and tls_private_key".into());
    };
    let mut builder = base_builder()?;
    // Start from the first material, so a handshake is valid even before the callback.
    let first = material.context.certificate().map(ToOwned::to_owned);
    if let Some(certificate) = first {
        builder
            .set_certificate(&certificate)
            .map_err(|e| format!("openssl: {e}"))?;
    }
    if let Some(key) = material.context.private_key() {
        builder
            .set_private_key(key)
            .map_err(|e| format!("openssl: {e}"))?;
    }
    builder.set_verify(material.context.verify_mode());
    builder.set_client_hello_callback(move |ssl, _alert| {
        if let Some(material) = gateway.generation().tls.as_ref() {
            ssl.set_ssl_context(&material.context)?;
            // The verify mode and callback are the connection's own: follow the material's.
            if material.accept_any_client_certificate {
                ssl.set_verify_callback(SslVerifyMode::PEER, accept_any);
            } else {
                ssl.set_verify(material.context.verify_mode());
            }
        }
        Ok(ClientHelloResponse::SUCCESS)
    });
    Ok(builder.build())
}

/// Marks a connection as TLS in its data (EST is served over TLS only: `est.rs`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TlsConnection;

/// The certificate a TLS client presented, verified or not (DER): the TLS handshake proved the
/// client holds its key. Present only with `accept_any_client_certificate`; what it is worth is
/// for its user to check (EST re-enrollment compares it with the stored record).
#[derive(Clone, Debug)]
pub(crate) struct PresentedCertificate {
    pub(crate) der: Vec<u8>,
}

/// The verify callback of `accept_any_client_certificate`: never fails the handshake. The
/// verification result stays readable (`SslRef::verify_result`), and only `X509_V_OK` from the
/// `client_ca` store makes an admin.
fn accept_any(_preverified: bool, _context: &mut openssl::x509::X509StoreContextRef) -> bool {
    true
}

/// Marks the connection as TLS in its data (actix-http `on_connect_ext`), with the client's
/// certificate if it sent one ([`PresentedCertificate`]), and its subject as an admin
/// ([`crate::admin::ClientCertificate`]) only when it verified against `tls_client_ca`. Without
/// `tls_client_ca` and EST no certificate is asked for.
pub(crate) fn peer_certificate(
    io: &actix_tls::accept::openssl::TlsStream<actix_web::rt::net::TcpStream>,
    data: &mut actix_http::Extensions,
) {
    data.insert(TlsConnection);
    let ssl = io.ssl();
    let Some(certificate) = ssl.peer_certificate() else {
        return;
    };
    if ssl.verify_mode().contains(SslVerifyMode::PEER)
        && ssl.verify_result() == openssl::x509::X509VerifyResult::OK
    {
        data.insert(crate::admin::ClientCertificate {
            subject: one_line(certificate.subject_name()),
        });
    }
    if let Ok(der) = certificate.to_der() {
        data.insert(PresentedCertificate { der });
    }
}
