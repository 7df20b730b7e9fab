//! A keep-alive HTTP/1.1 load generator: `concurrency` connections driven by one thread, each
//! sending its next prepared request as soon as the previous answer is read (closed loop, as wrk).
//! One thread keeps the generator's own CPU small and measurable on a 2-core machine. Plain TCP,
//! or TLS (openssl, the server's certificate not verified: loopback, measured not trusted).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use std::pin::Pin;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// What one bounded run saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Answers with status 200.
    pub ok: u64,
    /// Answers with another status, or broken connections.
    pub failed: u64,
    /// The first failure, for the report.
    pub first_failure: Option<String>,
    /// Latency of every 200, microseconds.
    pub latencies_us: Vec<u32>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl LoadReport {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0..=1) of the latencies in milliseconds.
    pub fn latency_ms(&mut self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        self.latencies_us.sort_unstable();
        let index = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies_us[index]) / 1000.0
    }
}

/// Sends `requests` (complete HTTP/1.1 requests, used round-robin) over `concurrency` keep-alive
/// connections for `duration`.
pub fn run(
    address: SocketAddr,
    tls: bool,
    requests: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
    duration: Duration,
) -> std::io::Result<LoadReport> {
    let connector = if tls {
        let mut builder =
            SslConnector::builder(SslMethod::tls_client()).map_err(std::io::Error::other)?;
        builder.set_verify(SslVerifyMode::NONE);
        Some(Arc::new(builder.build()))
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let deadline = started + duration;
        let mut tasks = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            let requests = Arc::clone(&requests);
            let next = Arc::clone(&next);
            let connector = connector.clone();
            tasks.push(tokio::spawn(connection(
                address, connector, requests, next, deadline,
            )));
        }
        let mut report = LoadReport::default();
        for task in tasks {
            let part = task.await.map_err(std::io::Error::other)?;
            report.ok += part.ok;
            report.failed += part.failed;
            report.first_failure = report.first_failure.or(part.first_failure);
            report.latencies_us.extend(part.latencies_us);
        }
        report.elapsed = started.elapsed();
        Ok(report)
    })
}

fn fail(report: &mut LoadReport, why: String) {
    report.failed += 1;
    report.first_failure.get_or_insert(why);
}

async fn connection(
    address: SocketAddr,
    connector: Option<Arc<SslConnector>>,
    requests: Arc<Vec<Vec<u8>>>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
) -> LoadReport {
    let mut report = LoadReport::default();
    let stream = match TcpStream::connect(address).await {
        Ok(stream) => stream,
        Err(error) => {
            fail(&mut report, format!("connect: {error}"));
            return report;
        }
    };
    let _ = stream.set_nodelay(true);
    let Some(connector) = connector else {
        return drive(stream, requests, next, deadline).await;
    };
    let tls = connector
        .configure()
        .and_then(|c| c.into_ssl("localhost"))
        .map_err(std::io::Error::other)
        .and_then(|ssl| tokio_openssl::SslStream::new(ssl, stream).map_err(std::io::Error::other));
    let mut tls = match tls {
        Ok(tls) => tls,
        Err(error) => {
            fail(&mut report, format!("TLS: {error}"));
            return report;
        }
    };
    if let Err(error) = Pin::new(&mut tls).connect().await {
        fail(&mut report, format!("TLS handshake: {error}"));
        return report;
    }
    drive(tls, requests, next, deadline).await
}

/// Sends requests over one open connection until `deadline`.
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    requests: Arc<Vec<Vec<u8>>>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
) -> LoadReport {
    let mut report = LoadReport::default();
    let mut buffer = Vec::with_capacity(16 * 1024);
    while Instant::now() < deadline {
        let request = &requests[next.fetch_add(1, Ordering::Relaxed) % requests.len()];
        let sent = Instant::now();
        if let Err(error) = stream.write_all(request).await {
            fail(&mut report, format!("write: {error}"));
            return report;
        }
        match read_response(&mut stream, &mut buffer).await {
            Ok(200) => {
                report.ok += 1;
                let micros = sent.elapsed().as_micros();
                report
                    .latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Ok(status) => fail(&mut report, format!("status {status}")),
            Err(error) => {
                fail(&mut report, format!("read: {error}"));
                return report;
            }
        }
    }
    report
}

/// Reads one response (Content-Length or chunked body) and returns its status. Bytes after it
/// stay in `buffer`.
async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
) -> std::io::Result<u16> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let header_end = loop {
        if let Some(at) = find(buffer, b"\r\n\r\n") {
            break at + 4;
        }
        fill(stream, buffer).await?;
    };
    let head = std::str::from_utf8(&buffer[..header_end]).map_err(|_| bad("header not UTF-8"))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(value.parse::<usize>().map_err(|_| bad("content-length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    buffer.drain(..header_end);
    if chunked {
        loop {
            let line_end = loop {
                if let Some(at) = find(buffer, b"\r\n") {
                    break at;
                }
                fill(stream, buffer).await?;
            };
            let size_text = std::str::from_utf8(&buffer[..line_end]).map_err(|_| bad("chunk"))?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("chunk size"))?;
            let needed = line_end + 2 + size + 2;
            while buffer.len() < needed {
                fill(stream, buffer).await?;
            }
            buffer.drain(..needed);
            if size == 0 {
                return Ok(status);
            }
        }
    }
    let length = content_length.unwrap_or(0);
    while buffer.len() < length {
        fill(stream, buffer).await?;
    }
    buffer.drain(..length);
    Ok(status)
}

async fn fill<S: AsyncRead + Unpin>(stream: &mut S, buffer: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    let read = stream.read(&mut chunk).await?;
    if read == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buffer.extend_from_slice(&chunk[..read]);
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A complete HTTP/1.1 request with a body.
pub fn request(method: &str, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    request_with_headers(method, path, content_type, &[], body)
}

/// [`request`] with more header lines.
pub fn request_with_headers(
    method: &str,
    path: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
