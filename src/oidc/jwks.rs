use actix_web::http::header;
use actix_web::{HttpResponse, get, web};

use crate::state::AppState;

/// The public signing keys, pre-serialised by the key ring. A short cache lifetime lets
/// clients see a rotation soon; they also refetch when they meet an unknown `kid`.
#[get("/jwks.json")]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(state.keys.jwks())
}
