//! Binding sockets, running the HTTP server until SIGTERM/SIGINT (then draining), and reloading
//! the plugin set on SIGHUP.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};

use crate::{Gateway, Hooks, PluginLoader, ServerConfig, SettingsSources, routes};

/// Binds every configured address. Nothing is accepted until [`run`] starts.
pub fn bind(config: &ServerConfig) -> std::io::Result<Vec<TcpListener>> {
    config
        .listen
        .iter()
        .map(|addr| {
            TcpListener::bind(addr)
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
        })
        .collect()
}

/// What SIGHUP needs: where the configuration came from, and the loader that owns the engine.
#[derive(Debug, Clone)]
pub struct Reload {
    /// The same sources the daemon started with (the file is read again).
    pub sources: SettingsSources,
    /// The loader of the running daemon.
    pub loader: PluginLoader,
}

/// Serves the API on `listeners` until SIGTERM or SIGINT; in-flight requests get up to 30 s to
/// finish. SIGHUP re-reads the configuration and swaps in a new plugin set.
pub fn run(
    config: &ServerConfig,
    gateway: Gateway,
    listeners: Vec<TcpListener>,
    reload: Reload,
) -> std::io::Result<()> {
    let hooks = Arc::clone(gateway.hooks());
    let gateway = Arc::new(gateway);
    let refresher = Arc::clone(&gateway);
    let gateway = web::Data::from(gateway);
    let limits = web::Data::new(routes::Limits {
        max_body_bytes: config.max_body_bytes,
    });
    actix_web::rt::System::new().block_on(async move {
        // Installed before the server starts: SIGHUP's default action would end the process.
        let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        actix_web::rt::spawn(reload_on_hangup(hangups, reload, hooks));
        // The first CRL is published before the first request is accepted.
        refresher
            .rebuild_crl()
            .await
            .map_err(|e| std::io::Error::other(format!("cannot build the CRL: {e}")))?;
        actix_web::rt::spawn(refresh_crl(refresher));
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(gateway.clone())
                .app_data(limits.clone())
                .configure(routes::configure)
        })
        .shutdown_timeout(30)
        .client_request_timeout(Duration::from_secs(10))
        .client_disconnect_timeout(Duration::from_secs(2));
        for listener in listeners {
            let address = listener.local_addr()?;
            server = server.listen(listener)?;
            tracing::info!(%address, "listening");
        }
        server.run().await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Rebuilds the CRL at half its validity, forever; a failure is retried a minute later.
async fn refresh_crl(gateway: Arc<Gateway>) {
    loop {
        let wait = gateway.crl_refresh_in();
        actix_web::rt::time::sleep(wait).await;
        if let Err(error) = gateway.rebuild_crl().await {
            tracing::error!(%error, "scheduled CRL rebuild failed; retrying in a minute");
            actix_web::rt::time::sleep(Duration::from_secs(60)).await;
        }
    }
}

async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    reload: Reload,
    hooks: Arc<Hooks>,
) {
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the configuration and plugins");
        let (done, finished) = tokio::sync::oneshot::channel();
        let reload = reload.clone();
        let hooks = Arc::clone(&hooks);
        // Compiling plugins is blocking work: do it on its own thread, beside the serving one.
        let spawned = std::thread::Builder::new()
            .name("csrgate-reload".into())
            .spawn(move || {
                reload_once(&reload, &hooks);
                let _ = done.send(());
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the reload thread");
            continue;
        }
        // One reload at a time: signals arriving meanwhile are handled after this one.
        let _ = finished.await;
    }
}

fn reload_once(reload: &Reload, hooks: &Hooks) {
    let config = match ServerConfig::load(&reload.sources) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, generation = hooks.generation(), "reload refused: the configuration is invalid; the running plugin set stays");
            return;
        }
    };
    match reload.loader.load_blocking(&config.plugins) {
        Ok(set) => {
            let names: Vec<String> = set.plugins().into_iter().map(|p| p.name).collect();
            let generation = hooks.replace(set);
            tracing::info!(generation, plugins = ?names, "reloaded: new requests use the new plugin set");
        }
        Err(error) => {
            tracing::error!(%error, generation = hooks.generation(), "reload refused: the new plugin set does not load; the running one stays");
        }
    }
}
