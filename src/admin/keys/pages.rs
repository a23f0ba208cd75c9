//! The signing keys page: what the JWKS publishes, and a rotation.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::csrf::{NoFields, Protected};
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Chrome, Done, see_other};
use crate::admin::keys::service::{self as keys_admin, KeyInfo};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/keys", web::get().to(keys_page))
        .route("/keys/rotate", web::post().to(rotate_keys));
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/keys.html")]
pub struct KeysPage {
    pub chrome: Chrome,
    pub keys: Vec<KeyInfo>,
    pub rotated: bool,
}

async fn keys_page(
    session: AdminSession,
    state: web::Data<AppState>,
    query: web::Query<Done>,
) -> Result<KeysPage, PageError> {
    Ok(KeysPage {
        chrome: Chrome::new(&session, "keys"),
        keys: keys_admin::all(&state).await?,
        rotated: query.is("rotated"),
    })
}

async fn rotate_keys(
    state: web::Data<AppState>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    keys_admin::rotate(&state.keys, &state.store, &form.session.caller()).await?;
    Ok(see_other("/admin/keys?done=rotated"))
}
