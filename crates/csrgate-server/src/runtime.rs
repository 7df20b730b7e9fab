//! Binding sockets and running the HTTP server until SIGTERM/SIGINT, then draining.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};

use crate::{Gateway, ServerConfig, routes};

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

/// Serves the API on `listeners` until SIGTERM or SIGINT; in-flight requests get up to 30 s to finish.
pub fn run(
    config: &ServerConfig,
    gateway: Gateway,
    listeners: Vec<TcpListener>,
) -> std::io::Result<()> {
    let gateway = web::Data::from(Arc::new(gateway));
    let limits = web::Data::new(routes::Limits {
        max_body_bytes: config.max_body_bytes,
    });
    actix_web::rt::System::new().block_on(async move {
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
