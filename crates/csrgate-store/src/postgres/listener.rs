//! LISTEN for CRLs that other replicas publish, on a connection and a thread of its own (it
//! must outlive whichever runtime opened the store).

use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::watch;
use tokio_postgres::AsyncMessage;

use super::crl::CRL_CHANNEL;

/// Wakes subscribers when a replica published a CRL (or when the listening connection was
/// re-established, since a notice may have been missed meanwhile).
#[derive(Debug)]
pub struct CrlNotices {
    sender: watch::Sender<u64>,
    /// Notified when the store is dropped: the listener closes its connection and ends.
    stop: std::sync::Arc<tokio::sync::Notify>,
}

impl Drop for CrlNotices {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

impl CrlNotices {
    /// Starts listening with `config`, reconnecting after a second when the connection drops.
    pub(super) fn start(
        config: tokio_postgres::Config,
        tls: postgres_openssl::MakeTlsConnector,
    ) -> std::sync::Arc<Self> {
        let (sender, _) = watch::channel(0);
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let notices = std::sync::Arc::new(CrlNotices {
            sender,
            stop: std::sync::Arc::clone(&stop),
        });
        let weak = std::sync::Arc::downgrade(&notices);
        let spawned = std::thread::Builder::new()
            .name("csrgate-crl-listen".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        tracing::error!(%error, "cannot start the CRL listener");
                        return;
                    }
                };
                runtime.block_on(async {
                    tokio::select! {
                        () = listen(config, tls, weak) => {}
                        () = stop.notified() => {}
                    }
                });
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the CRL listener thread");
        }
        notices
    }

    /// A receiver whose value changes at every notice.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sender.subscribe()
    }
}

async fn listen(
    config: tokio_postgres::Config,
    tls: postgres_openssl::MakeTlsConnector,
    notices: std::sync::Weak<CrlNotices>,
) {
    let mut connected_before = false;
    while notices.strong_count() > 0 {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let (heard, mut notifications) = tokio::sync::mpsc::unbounded_channel();
                // Drives the connection; ends (closing the channel) when the connection does.
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => {
                                if heard.send(()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(error) => {
                                tracing::warn!(%error, "the CRL listener lost its connection");
                                return;
                            }
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CRL_CHANNEL}")).await {
                    Ok(()) => {
                        if connected_before {
                            tracing::info!("listening for CRLs again");
                            bump(&notices);
                        }
                        connected_before = true;
                        while notifications.recv().await.is_some() {
                            bump(&notices);
                        }
                    }
                    Err(error) => tracing::warn!(%error, "LISTEN for CRLs failed; retrying"),
                }
                drop(client);
                driver.abort();
            }
            Err(error) => tracing::debug!(%error, "CRL listener cannot connect; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn bump(notices: &std::sync::Weak<CrlNotices>) {
    if let Some(notices) = notices.upgrade() {
        notices.sender.send_modify(|count| *count += 1);
    }
}
