use actix_web::{HttpResponse, get, web};

use crate::store::Store;

/// Liveness: the process serves requests.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// Readiness: the database answers and every migration is applied.
#[get("/readyz")]
pub async fn readyz(store: web::Data<Store>) -> HttpResponse {
    if store.is_ready().await {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(r#"{"status":"ready"}"#)
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("application/json")
            .body(r#"{"status":"unavailable"}"#)
    }
}
