//! A small ACME client (RFC 8555) for the tests' refusal cases and the benchmark: an ES256
//! account key, flattened JWS requests signed by `jwk` or `kid`, nonces carried from answer to
//! answer, over ureq with the test CA as the only root. certbot and lego are the real clients;
//! this one exists to send what they never would (replays, foreign keys, broken bodies).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::Private;
use serde_json::{Value, json};

/// An answer: status, the headers that matter, the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub nonce: Option<String>,
    pub content_type: String,
    pub body: String,
}

impl Answer {
    /// The body as JSON (Null when it is none).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A problem document's type without the ACME prefix (`badNonce`), or "".
    pub fn problem(&self) -> String {
        self.json()["type"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("urn:ietf:params:acme:error:")
            .to_owned()
    }
}

/// An ACME account key (P-256) and what a client keeps between requests.
pub struct AcmeClient {
    agent: ureq::Agent,
    key: EcKey<Private>,
    /// The directory's URLs.
    pub directory: Value,
    /// The account URL once registered.
    pub kid: Option<String>,
    nonce: Option<String>,
}

/// `bytes` in base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl AcmeClient {
    /// A client of the directory at `directory_url`, trusting `root` (PEM) for TLS.
    pub fn new(directory_url: &str, root: &Path) -> AcmeClient {
        let pem = std::fs::read(root).expect("root");
        let certificates: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(ureq::tls::RootCerts::new_with_certs(&certificates))
            .build();
        AcmeClient::with_tls(directory_url, tls)
    }

    /// A client that does not verify the server's certificate: the benchmark, on loopback,
    /// measures rather than trusts.
    pub fn unverified(directory_url: &str) -> AcmeClient {
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .disable_verification(true)
            .build();
        AcmeClient::with_tls(directory_url, tls)
    }

    fn with_tls(directory_url: &str, tls: ureq::tls::TlsConfig) -> AcmeClient {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .into();
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        let key = EcKey::generate(&group).expect("key");
        let mut client = AcmeClient {
            agent,
            key,
            directory: Value::Null,
            kid: None,
            nonce: None,
        };
        let answer = client.get(directory_url);
        assert_eq!(answer.status, 200, "directory: {answer:?}");
        client.directory = answer.json();
        client
    }

    /// The URL of directory entry `name` (`newOrder`...).
    pub fn url(&self, name: &str) -> String {
        self.directory[name]
            .as_str()
            .expect("directory entry")
            .to_owned()
    }

    /// The account key as a JWK.
    pub fn jwk(&self) -> Value {
        let group = self.key.group();
        let mut context = BigNumContext::new().expect("ctx");
        let point = self
            .key
            .public_key()
            .to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut context)
            .expect("point");
        json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
    }

    /// The RFC 7638 thumbprint of the account key.
    pub fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().expect("x"),
            jwk["y"].as_str().expect("y")
        );
        b64(&openssl::sha::sha256(canonical.as_bytes()))
    }

    /// A GET, keeping the answer's nonce.
    pub fn get(&mut self, url: &str) -> Answer {
        let response = self.agent.get(url).call().expect("GET");
        self.keep(response)
    }

    /// A fresh nonce: the last answer's, or newNonce's.
    pub fn nonce(&mut self) -> String {
        if let Some(nonce) = self.nonce.take() {
            return nonce;
        }
        let url = self.url("newNonce");
        let response = self.agent.head(&url).call().expect("HEAD newNonce");
        self.keep(response);
        self.nonce.take().expect("Replay-Nonce")
    }

    /// The flattened JWS of `payload` (None: POST-as-GET) for `url` with `nonce`, signed by
    /// this client's key and naming it by `kid` when registered (or by `jwk` when `use_jwk`).
    pub fn sign(
        &self,
        url: &str,
        payload: Option<&Value>,
        nonce: Option<&str>,
        use_jwk: bool,
    ) -> Vec<u8> {
        let mut protected = json!({"alg": "ES256", "url": url});
        if let Some(nonce) = nonce {
            protected["nonce"] = json!(nonce);
        }
        match (&self.kid, use_jwk) {
            (Some(kid), false) => protected["kid"] = json!(kid),
            _ => protected["jwk"] = self.jwk(),
        }
        let protected = b64(protected.to_string().as_bytes());
        let payload = payload.map_or(String::new(), |p| b64(p.to_string().as_bytes()));
        let signature = self.signature(format!("{protected}.{payload}").as_bytes());
        json!({"protected": protected, "payload": payload, "signature": signature})
            .to_string()
            .into_bytes()
    }

    /// ES256 over `input`: r‖s, 32 octets each (RFC 7518 3.4).
    pub fn signature(&self, input: &[u8]) -> String {
        let digest = openssl::hash::hash(MessageDigest::sha256(), input).expect("hash");
        let signature = EcdsaSig::sign(&digest, &self.key).expect("sign");
        let mut raw = signature.r().to_vec_padded(32).expect("r");
        raw.extend(signature.s().to_vec_padded(32).expect("s"));
        b64(&raw)
    }

    /// POSTs `payload` to `url`, signed, with a fresh nonce.
    pub fn post(&mut self, url: &str, payload: Option<&Value>) -> Answer {
        let nonce = self.nonce();
        let body = self.sign(url, payload, Some(&nonce), false);
        self.post_raw(url, &body, "application/jose+json")
    }

    /// POSTs `body` as it is.
    pub fn post_raw(&mut self, url: &str, body: &[u8], content_type: &str) -> Answer {
        let response = self
            .agent
            .post(url)
            .header("Content-Type", content_type)
            .send(body)
            .expect("POST");
        self.keep(response)
    }

    /// newAccount with this key; keeps the account URL.
    pub fn register(&mut self) -> Answer {
        let url = self.url("newAccount");
        let nonce = self.nonce();
        let body = self.sign(
            &url,
            Some(&json!({"termsOfServiceAgreed": true})),
            Some(&nonce),
            true,
        );
        let answer = self.post_raw(&url, &body, "application/jose+json");
        assert!(matches!(answer.status, 200 | 201), "newAccount: {answer:?}");
        self.kid = answer.location.clone();
        answer
    }

    fn keep(&mut self, mut response: ureq::http::Response<ureq::Body>) -> Answer {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = response.status().as_u16();
        let location = header("location");
        let nonce = header("replay-nonce");
        let content_type = header("content-type").unwrap_or_default();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        if nonce.is_some() {
            self.nonce = nonce.clone();
        }
        Answer {
            status,
            location,
            nonce,
            content_type,
            body,
        }
    }
}

/// An http-01 responder (RFC 8555 8.3) on `listener`, answering each token in `answers` (token,
/// key authorization) with its key authorization, others with 404, on a thread of its own.
pub fn http01_responder(listener: TcpListener, answers: Arc<Mutex<Vec<(String, String)>>>) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let token = line
                .split_whitespace()
                .nth(1)
                .and_then(|path| path.strip_prefix("/.well-known/acme-challenge/"))
                .unwrap_or_default()
                .to_owned();
            let found = answers
                .lock()
                .expect("lock")
                .iter()
                .find(|(t, _)| *t == token)
                .map(|(_, a)| a.clone());
            let mut stream = stream;
            let reply = match found {
                Some(answer) => format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                ),
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned(),
            };
            let _ = stream.write_all(reply.as_bytes());
        }
    });
}

/// A DNS server (RFC 1035) on `socket` answering TXT queries from `records` (name without the
/// trailing dot, lower case → TXT strings) and nothing else, on a thread of its own: what a
/// dns-01 client's DNS provider would publish.
pub fn dns_responder(socket: std::net::UdpSocket, records: Arc<Mutex<Vec<(String, String)>>>) {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 512];
        while let Ok((length, peer)) = socket.recv_from(&mut buffer) {
            let query = &buffer[..length];
            if let Some(answer) = dns_answer(query, &records) {
                let _ = socket.send_to(&answer, peer);
            }
        }
    });
}

/// The answer to one query: the question echoed, and a TXT record per matching entry.
fn dns_answer(query: &[u8], records: &Mutex<Vec<(String, String)>>) -> Option<Vec<u8>> {
    // Header (12 octets), then QNAME labels up to a zero octet, QTYPE, QCLASS.
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let length = usize::from(*query.get(at)?);
        at += 1;
        if length == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + length)?).to_ascii_lowercase());
        at += length;
    }
    let question_end = at + 4;
    let question = query.get(12..question_end)?;
    let qtype = u16::from_be_bytes([query[at], query[at + 1]]);
    let name = labels.join(".");
    let values: Vec<String> = if qtype == 16 {
        records
            .lock()
            .ok()?
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .collect()
    } else {
        Vec::new()
    };
    let mut answer = Vec::with_capacity(512);
    answer.extend_from_slice(&query[..2]); // ID
    answer.extend_from_slice(&[0x84, 0x00]); // response, authoritative, no error
    answer.extend_from_slice(&[0, 1]); // one question
    answer.extend_from_slice(&(values.len() as u16).to_be_bytes());
    answer.extend_from_slice(&[0, 0, 0, 0]); // no authority, no additional
    answer.extend_from_slice(question);
    for value in values {
        answer.extend_from_slice(&[0xc0, 0x0c]); // the question's name
        answer.extend_from_slice(&[0, 16, 0, 1]); // TXT, IN
        answer.extend_from_slice(&[0, 0, 0, 0]); // TTL 0
        answer.extend_from_slice(&((value.len() + 1) as u16).to_be_bytes());
        answer.push(value.len() as u8);
        answer.extend_from_slice(value.as_bytes());
    }
    Some(answer)
}
