//! The request id (`tracing_actix_web::RequestId`, set by the root span's middleware): in the
//! log span of every request, echoed as `x-request-id`, written into login events, and shown on
//! the user's error pages so that what a user quotes can be found in the logs and events.

use std::future::Future;

use actix_web::{HttpMessage, HttpRequest};
use tracing_actix_web::RequestId;

tokio::task_local! {
    static CURRENT: String;
}

/// The id of `req`, if the request-id middleware ran.
pub fn of(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(ToString::to_string)
}

/// Runs `fut` (a request) with `id` as the current request id, for pages rendered deep in a
/// flow without the request at hand.
pub async fn scope<F: Future>(id: Option<String>, fut: F) -> F::Output {
    match id {
        Some(id) => CURRENT.scope(id, fut).await,
        None => fut.await,
    }
}

/// The id of the request being served, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// `raw` as a log field: no control characters, at most `max` characters. For values from
/// outside (a `client_id` as given) that are worth logging but must not forge or flood lines.
pub fn loggable(raw: &str, max: usize) -> String {
    raw.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_current_id_is_the_scope_s_and_none_outside() {
        assert_eq!(current(), None);
        let inside = scope(Some("r-1".into()), async { current() }).await;
        assert_eq!(inside.as_deref(), Some("r-1"));
        assert_eq!(loggable("a\nb\u{7}cdef", 3), "abc");
    }
}
