//! An upstream that hangs, as a raw TCP server: it accepts connections, reads the request and
//! then either never answers or sends headers and the start of a body and stalls. Its
//! connections stay open until it is dropped, as a dead provider's would.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// Accepts, reads the request, never answers.
    Silent,
    /// Answers `200 OK` with headers announcing a JSON body, sends a few bytes of it, stalls.
    AfterHeaders,
}

impl Stall {
    fn reply(self) -> &'static [u8] {
        match self {
            Stall::Silent => b"",
            Stall::AfterHeaders => {
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n{\"issuer\": \""
            }
        }
    }
}

pub struct StallingUpstream {
    /// Its base URL, used as a provider's issuer.
    pub issuer: String,
    accepted: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StallingUpstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl StallingUpstream {
    pub async fn start(how: Stall) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let server = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 8192];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(how.reply()).await;
                open.push(socket);
            }
        });
        Self {
            issuer,
            accepted,
            server,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits until it has accepted `n` connections, at most `bound`.
    pub async fn wait_for(&self, n: usize, bound: Duration) {
        let started = Instant::now();
        while self.accepted() < n {
            assert!(
                started.elapsed() < bound,
                "only {} of {n} connections in {bound:?}",
                self.accepted()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
