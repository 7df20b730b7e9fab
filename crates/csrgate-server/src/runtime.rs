//! Binding sockets, running the HTTP server until SIGTERM/SIGINT (then draining), and reloading
//! the plugin set on SIGHUP.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use actix_service::{IntoServiceFactory as _, ServiceFactoryExt as _, fn_service, map_config};
use actix_web::dev::{AppConfig, Service as _};
use actix_web::{App, web};

use crate::expect::ExpectContinue;

use crate::{
    AdminListen, Gateway, GenerationParts, PluginLoader, ServerConfig, SettingsSources, routes,
};

/// A listening socket: TCP, or a Unix stream socket (socket activation, nginx upstream).
#[derive(Debug)]
enum Socket {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Which endpoints a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Surface {
    /// Everything (no `admin_listen` configured).
    All,
    /// The public endpoints only (an `admin_listen` takes the admin API).
    Public,
    /// The admin API and `/health` only (`admin_listen`).
    Admin,
}

impl Surface {
    fn public(self) -> bool {
        self != Surface::Admin
    }

    fn admin(self) -> bool {
        self != Surface::Public
    }
}

/// A bound socket, whether it speaks TLS, and which endpoints it serves.
#[derive(Debug)]
pub struct Listener {
    socket: Socket,
    tls: bool,
    surface: Surface,
}

/// The sockets to serve on: those passed by systemd (`LISTEN_FDS`/`LISTEN_PID`, TCP or Unix,
/// plain HTTP) or else every `listen`, `listen_unix` and `listen_tls` address; and every
/// `admin_listen`. All bound now; nothing is accepted until [`run`] starts.
pub fn bind(config: &ServerConfig) -> std::io::Result<Vec<Listener>> {
    let public = if config.admin_listen.is_empty() {
        Surface::All
    } else {
        Surface::Public
    };
    let listener = |socket, tls, surface| Listener {
        socket,
        tls,
        surface,
    };
    let tcp = |addr: &SocketAddr| {
        TcpListener::bind(addr)
            .map(Socket::Tcp)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
    };
    let mut listeners = Vec::new();
    let mut passed = listenfd::ListenFd::from_env();
    // Sockets systemd passes take the place of `listen` and `listen_unix` (plain HTTP); TLS and
    // admin listeners are bound by us either way.
    if passed.len() > 0 {
        for index in 0..passed.len() {
            if let Ok(Some(socket)) = passed.take_tcp_listener(index) {
                listeners.push(listener(Socket::Tcp(socket), false, public));
            } else if let Some(unix) = passed.take_unix_listener(index)? {
                listeners.push(listener(Socket::Unix(unix), false, public));
            }
        }
        tracing::info!(
            sockets = listeners.len(),
            "using the sockets passed by systemd"
        );
    } else {
        for addr in &config.listen {
            listeners.push(listener(tcp(addr)?, false, public));
        }
        if let Some(path) = &config.listen_unix {
            let socket = Socket::Unix(bind_unix(path, config.listen_unix_mode)?);
            listeners.push(listener(socket, false, public));
        }
    }
    for addr in &config.listen_tls {
        listeners.push(listener(tcp(addr)?, true, public));
    }
    for admin in &config.admin_listen {
        listeners.push(match admin {
            AdminListen::Tcp(addr) => listener(tcp(addr)?, false, Surface::Admin),
            AdminListen::Tls(addr) => listener(tcp(addr)?, true, Surface::Admin),
            AdminListen::Unix(path) => listener(
                Socket::Unix(bind_unix(path, config.listen_unix_mode)?),
                false,
                Surface::Admin,
            ),
        });
    }
    Ok(listeners)
}

/// Binds a Unix socket at `path` with `mode`. A stale socket file (left by a crash) is replaced;
/// any other file there is an error, never deleted.
fn bind_unix(path: &std::path::Path, mode: u32) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    let context = |e: std::io::Error| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {}: {e}", path.display()),
        )
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(context(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(context(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another process is serving this socket",
            )));
        }
        std::fs::remove_file(path).map_err(context)?;
    }
    let listener = UnixListener::bind(path).map_err(context)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(context)?;
    Ok(listener)
}

/// Tells systemd (when `NOTIFY_SOCKET` is set; a no-op otherwise).
fn notify(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::debug!(%error, "sd_notify failed");
    }
}

/// What SIGHUP needs: where the configuration came from, the loader that owns the engine, and
/// the TLS key's passphrase as read at start (a prompt cannot be repeated at reload).
#[derive(Debug, Clone)]
pub struct Reload {
    /// The same sources the daemon started with (the file is read again).
    pub sources: SettingsSources,
    /// The loader of the running daemon.
    pub loader: PluginLoader,
    /// The passphrase of an encrypted TLS key (as read at start; `tls_key_passphrase_file` is
    /// read again at every reload).
    pub tls_passphrase: Option<Arc<csrgate_pki::Passphrase>>,
    /// TLS listeners are bound: a reload must keep TLS material for them.
    pub tls_listeners: bool,
}

/// The HTTP service of one connection, as actix-web's HttpServer makes it, with our expect
/// service: `http_service!(app, request_timeout, expect, shutdown)`, optionally followed by
/// `; builder_method(args)` steps (TLS listeners add `on_connect_ext`). A macro because the
/// service's type names the application's closures.
macro_rules! http_service {
    ($app:expr, $request_timeout:expr, $expect:expr, $shutdown:expr $(; $step:ident($($arg:expr),*))*) => {{
        let shutdown = $shutdown.clone();
        actix_http::HttpService::build()
            .client_request_timeout($request_timeout)
            .client_disconnect_timeout(Duration::from_secs(2))
            // Idle keep-alive connections close as soon as a drain starts, as under HttpServer
            // (the builder method is doc-hidden; it is how actix-web wires the same signal).
            .graceful_shutdown_signal(move || {
                let signal = shutdown.clone();
                async move { signal.notified().await }
            })
            .expect($expect.clone())
            $(.$step($($arg),*))*
            .finish(map_config(
                ($app)()
                    .into_factory()
                    .map_err(|error: actix_web::Error| error.error_response()),
                |_| AppConfig::default(),
            ))
    }};
}

/// Serves the API on `listeners` until SIGTERM or SIGINT; in-flight requests get up to 30 s to
/// finish. SIGHUP re-reads the configuration and swaps in a new plugin set.
pub fn run(
    config: &ServerConfig,
    gateway: Gateway,
    listeners: Vec<Listener>,
    reload: Reload,
) -> std::io::Result<()> {
    let gateway = Arc::new(gateway);
    let refresher = Arc::clone(&gateway);
    let gateway = web::Data::from(gateway);
    let acme = web::Data::new(crate::acme::AcmeState::default());
    let limits = web::Data::new(routes::Limits {
        max_body_bytes: config.max_body_bytes,
        body_timeout: config.request_timeout,
    });
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    actix_web::rt::System::new().block_on(async move {
        // Installed before the server starts: SIGHUP's default action would end the process.
        let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        // SIGTERM/SIGINT too, before anything is bound or logged: a stop that arrives during
        // start-up is kept and honoured as soon as the server exists, never the default kill.
        let stops = (
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
        );
        actix_web::rt::spawn(reload_on_hangup(hangups, reload, Arc::clone(&refresher)));
        // The first CRL is published before the first request is accepted.
        refresher
            .refresh_crl()
            .await
            .map_err(|e| std::io::Error::other(format!("cannot build the CRL: {e}")))?;
        let follower = Arc::clone(&refresher);
        actix_web::rt::spawn(async move { follower.follow_crls().await });
        if refresher.retention().is_some() {
            actix_web::rt::spawn(prune_expired(Arc::clone(&refresher)));
        }
        actix_web::rt::spawn(renew_ocsp_responder(Arc::clone(&refresher)));
        actix_web::rt::spawn(refresh_crl(refresher));
        let expect_metrics = Arc::clone(gateway.metrics());
        let acceptor = if listeners.iter().any(|l| l.tls) {
            Some(
                crate::tls::acceptor(gateway.clone().into_inner())
                    .map_err(std::io::Error::other)?,
            )
        } else {
            None
        };
        let app = move |surface: Surface| {
            let counted = gateway.clone();
            App::new()
                .app_data(gateway.clone())
                .app_data(limits.clone())
                .app_data(acme.clone())
                .wrap_fn(move |request, service| {
                    let metrics = Arc::clone(counted.metrics());
                    let refused = routes::refuse_oversized_head(request.request());
                    let call = match refused {
                        None => Ok(service.call(request)),
                        Some(error) => Err(request.into_response(error.error_response_public())),
                    };
                    async move {
                        let response = match call {
                            Ok(call) => call.await?,
                            Err(refused) => refused,
                        };
                        let route = response
                            .request()
                            .match_pattern()
                            .unwrap_or_else(|| "unmatched".to_owned());
                        metrics.count_request(&route, response.status().as_u16());
                        Ok(response)
                    }
                })
                .configure(move |config| {
                    routes::configure(config, surface.public(), surface.admin())
                })
        };
        // What actix-web's HttpServer does, with our own `Expect: 100-continue` service
        // (docs/decisions/0002-expect-continue.md).
        let mut server = actix_server::Server::build()
            .shutdown_timeout(30)
            .workers(workers)
            // actix counts connections per worker; beyond the limit, new ones wait in the backlog.
            .max_concurrent_connections(config.max_connections.div_ceil(workers))
            // SIGTERM/SIGINT are ours: we tell systemd STOPPING=1, then drain.
            .disable_signals();
        let request_timeout = config.request_timeout;
        let expect = ExpectContinue {
            max_body_bytes: config.max_body_bytes,
            metrics: expect_metrics,
        };
        let shutdown = server.graceful_shutdown_signal();
        let count = listeners.len();
        for Listener {
            socket,
            tls,
            surface,
        } in listeners
        {
            let app = app.clone();
            let app = move || app(surface);
            let shutdown = shutdown.clone();
            let expect = expect.clone();
            let role = match surface {
                Surface::All => "public and admin",
                Surface::Public => "public",
                Surface::Admin => "admin",
            };
            match socket {
                Socket::Tcp(listener) if tls => {
                    let address = listener.local_addr()?;
                    let acceptor = acceptor.clone().ok_or_else(|| {
                        std::io::Error::other("a TLS listener without TLS material")
                    })?;
                    server =
                        server.listen(format!("csrgate-tls-{address}"), listener, move || {
                            http_service!(
                                app,
                                request_timeout,
                                expect,
                                shutdown;
                                on_connect_ext(crate::tls::peer_certificate)
                            )
                            .openssl(acceptor.clone())
                        })?;
                    tracing::info!(role, tls = true, %address, "listening");
                }
                Socket::Tcp(listener) => {
                    let address = listener.local_addr()?;
                    server = server.listen(format!("csrgate-{address}"), listener, move || {
                        http_service!(app, request_timeout, expect, shutdown).tcp()
                    })?;
                    tracing::info!(role, %address, "listening");
                }
                Socket::Unix(listener) => {
                    let address = listener
                        .local_addr()?
                        .as_pathname()
                        .map_or_else(|| "(unnamed)".to_owned(), |p| p.display().to_string());
                    server =
                        server.listen_uds(format!("csrgate-{address}"), listener, move || {
                            fn_service(|io: actix_web::rt::net::UnixStream| async {
                                Ok((io, actix_http::Protocol::Http1, None))
                            })
                            .and_then(http_service!(
                                app,
                                request_timeout,
                                expect,
                                shutdown
                            ))
                        })?;
                    tracing::info!(role, %address, "listening");
                }
            }
        }
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(stop_on_signal(handle, stops));
        if let Some(interval) = watchdog_interval() {
            actix_web::rt::spawn(pet_watchdog(interval / 2));
        }
        // Sockets are listening, the key is unlocked, the store open, plugins loaded, CRL built.
        let status = format!("serving on {count} socket(s)");
        notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
        server.await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Retention: at start, then every hour, removes what expired longer ago than `retention`.
async fn prune_expired(gateway: Arc<Gateway>) {
    loop {
        match gateway.prune_expired().await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(
                pruned,
                "retention: removed certificates expired for longer than retention"
            ),
            Err(error) => tracing::warn!(%error, "retention: pruning failed; retrying in an hour"),
        }
        actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// Refreshes the CRL at half its validity, forever; a failure is retried a minute later.
async fn refresh_crl(gateway: Arc<Gateway>) {
    loop {
        let wait = gateway.crl_refresh_in();
        actix_web::rt::time::sleep(wait).await;
        if let Err(error) = gateway.refresh_crl().await {
            tracing::error!(%error, "scheduled CRL rebuild failed; retrying in a minute");
            actix_web::rt::time::sleep(Duration::from_secs(60)).await;
        }
    }
}

/// Renews a delegated OCSP responder certificate when a third of its validity is left (returns
/// at once when the CA signs its own responses). Signing is a blocking openssl call plus two
/// synced file writes: it runs on the blocking pool.
async fn renew_ocsp_responder(gateway: Arc<Gateway>) {
    while let Some(wait) = gateway.ocsp().renewal_in() {
        actix_web::rt::time::sleep(wait).await;
        let renewing = Arc::clone(&gateway);
        let renewed =
            actix_web::rt::task::spawn_blocking(move || renewing.ocsp().renew(renewing.identity()))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(error) = renewed {
            tracing::error!(%error, "OCSP responder certificate not renewed; retrying in a minute");
            actix_web::rt::time::sleep(Duration::from_secs(60)).await;
        }
    }
}

/// SIGTERM or SIGINT: STOPPING=1, then stop accepting and let in-flight requests finish.
async fn stop_on_signal(
    handle: actix_web::dev::ServerHandle,
    (mut term, mut int): (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
) {
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping: draining in-flight requests");
    notify(&[NotifyState::Stopping, NotifyState::Status("draining")]);
    handle.stop(true).await;
}

/// `WATCHDOG_USEC`, when it is meant for this process: as libsystemd's sd_watchdog_enabled, an
/// absent `WATCHDOG_PID` means "this process".
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    let for_us = match std::env::var("WATCHDOG_PID") {
        Ok(pid) if !pid.is_empty() => pid.parse::<u32>().ok() == Some(std::process::id()),
        _ => true,
    };
    (for_us && usec > 0).then(|| Duration::from_micros(usec))
}

/// WATCHDOG=1 at half the interval systemd asked for.
async fn pet_watchdog(every: Duration) {
    let every = every.max(Duration::from_millis(100));
    loop {
        notify(&[NotifyState::Watchdog]);
        actix_web::rt::time::sleep(every).await;
    }
}

async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    reload: Reload,
    gateway: Arc<Gateway>,
) {
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the configuration and plugins");
        let reloading = sd_notify::NotifyState::monotonic_usec_now().ok();
        let mut states = vec![NotifyState::Reloading];
        states.extend(reloading);
        notify(&states);
        let (done, finished) = tokio::sync::oneshot::channel();
        let reload = reload.clone();
        let gateway = Arc::clone(&gateway);
        // Compiling plugins is blocking work: do it on its own thread, beside the serving one.
        let spawned = std::thread::Builder::new()
            .name("csrgate-reload".into())
            .spawn(move || {
                reload_once(&reload, &gateway);
                let _ = done.send(());
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the reload thread");
            continue;
        }
        // One reload at a time: signals arriving meanwhile are handled after this one.
        let _ = finished.await;
        notify(&[NotifyState::Ready]);
    }
}

/// Re-reads the configuration and installs it as one new generation (signing policy, issuance
/// rules, admin tokens, plugins), all or nothing. Listeners, identity, data directory and plugin
/// cache need a restart.
fn reload_once(reload: &Reload, gateway: &Gateway) {
    let running = gateway.generation().number();
    let refused = |what: &str, error: &dyn std::fmt::Display| {
        tracing::error!(%error, generation = running, "reload refused: {what}; the running configuration stays");
    };
    let config = match ServerConfig::load(&reload.sources)
        .and_then(|config| config.refuse_open_issuance().map(|()| config))
    {
        Ok(config) => config,
        Err(error) => return refused("the configuration is invalid", &error),
    };
    let admin = match crate::AdminTokens::load(config.admin_tokens_file.as_deref()) {
        Ok(admin) => admin,
        Err(error) => return refused("the admin tokens do not load", &error),
    };
    let est = match crate::EstCredentials::load(config.est_credentials_file.as_deref()) {
        Ok(est) => est,
        Err(error) => return refused("the EST credentials do not load", &error),
    };
    let acme = match crate::AcmeConfig::load(&config.acme) {
        Ok(acme) => acme,
        Err(error) => return refused("the ACME EAB keys do not load", &error),
    };
    let tls = match &config.tls {
        None if reload.tls_listeners => {
            return refused(
                "TLS listeners are bound",
                &"keep tls_certificate and tls_private_key (listeners change at the next restart)",
            );
        }
        None => None,
        Some(files) => match load_tls(reload, &config, files, gateway) {
            Ok(material) => Some(material),
            Err(error) => return refused("the TLS certificate or key does not load", &error),
        },
    };
    let plugins = match reload.loader.load_blocking(&config.plugins) {
        Ok(plugins) => plugins,
        Err(error) => return refused("the new plugin set does not load", &error),
    };
    if let Some(material) = &tls {
        tracing::info!(subject = %material.subject, not_after = %material.not_after, "TLS certificate loaded");
    }
    let names: Vec<String> = plugins.plugins().into_iter().map(|p| p.name).collect();
    let generation = gateway.generations().install(GenerationParts {
        signing: config.policy,
        issuance: config.issuance,
        admin,
        est,
        acme,
        plugins,
        open_issuance: config.open_issuance,
        tls,
    });
    tracing::info!(
        generation,
        plugins = ?names,
        "reloaded signing policy, issuance rules, admin tokens, EST credentials, ACME settings and EAB keys, plugins and TLS material as one generation (listeners, identity, data, plugin_cache and logging change at the next restart)"
    );
    warn_if_open(&gateway.generation());
}

/// The TLS material of a reload: the key's passphrase from `tls_key_passphrase_file` (read
/// again), else the one kept from the start; the client CA kept apart from csrgate's own.
fn load_tls(
    reload: &Reload,
    config: &ServerConfig,
    files: &crate::TlsFiles,
    gateway: &Gateway,
) -> Result<crate::TlsMaterial, String> {
    let from_file = config
        .tls_key_passphrase_file
        .as_deref()
        .map(csrgate_pki::Passphrase::from_file)
        .transpose()
        .map_err(|e| e.to_string())?;
    let passphrase = from_file
        .as_ref()
        .or(reload.tls_passphrase.as_deref())
        .map(|p| p.expose_secret().as_bytes());
    let material = crate::TlsMaterial::load(files, passphrase)?;
    material.check_client_ca_apart(gateway.identity().chain_pem())?;
    Ok(material)
}

/// The WARN an open CA gets at start and after every reload that leaves it open.
pub fn warn_if_open(generation: &crate::Generation) {
    if generation.issuance_is_open() {
        tracing::warn!(
            generation = generation.number(),
            "OPEN ISSUANCE: no [[issuance]] rule and no authorize plugin; every client that reaches the socket gets a certificate for any name (open_issuance = true or --dev)"
        );
    }
}
