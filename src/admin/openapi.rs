//! The OpenAPI 3 document of the admin API, generated from the handlers' annotations and the
//! types they exchange, and serialised once.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::admin::webhooks::api as webhooks_api;
use crate::admin::{audit::api as audit_api, keys::api as keys_api, tokens::api as tokens_api};
use crate::admin::{clients::api as clients_api, providers::api as providers_api};
use crate::admin::{sign_ins::api as sign_ins_api, users::api as users_api};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portico admin API",
        description = "Configure Portico. Authenticate with `Authorization: Bearer <admin API token>` \
                       (mint one with `portico admin token --name N` or on the API tokens page). \
                       Errors are `{\"error\": \"<code>\", \"message\": \"<text>\"}`; lists are paginated \
                       with `limit` and `cursor`."
    ),
    servers((url = "/admin/api/v1")),
    paths(
        keys_api::list_keys,
        keys_api::rotate_keys,
        audit_api::list_audit,
        tokens_api::list_tokens,
        tokens_api::create_token,
        tokens_api::revoke_token,
        clients_api::list,
        clients_api::create,
        clients_api::show,
        clients_api::update,
        clients_api::delete,
        clients_api::rotate_secret,
        providers_api::list,
        providers_api::create,
        providers_api::show,
        providers_api::update,
        providers_api::delete,
        providers_api::discover,
        providers_api::claims_preview,
        webhooks_api::list,
        webhooks_api::create,
        webhooks_api::show,
        webhooks_api::update,
        webhooks_api::delete,
        webhooks_api::rotate_secret,
        webhooks_api::test_ping,
        webhooks_api::deliveries,
        webhooks_api::delivery,
        webhooks_api::retry,
        users_api::list,
        users_api::show,
        users_api::disable,
        users_api::enable,
        users_api::end_sessions,
        users_api::unlink_identity,
        users_api::move_identity,
        sign_ins_api::list_sign_ins,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "keys", description = "JWT signing keys"),
        (name = "audit", description = "Who changed what, when, from where"),
        (name = "tokens", description = "Admin API tokens"),
        (name = "clients", description = "Applications that sign users in through Portico"),
        (name = "providers", description = "Upstream identity providers users sign in with"),
        (name = "webhooks", description = "Endpoints that receive signed events, and their delivery log"),
        (name = "users", description = "People who logged in through Portico, and their identities"),
        (name = "sign-ins", description = "Logins that succeeded and failed, with why and the request id"),
    )
)]
pub struct AdminApiDoc;

/// Every operation takes the bearer token, so every operation can answer 401 (no or unknown
/// token) and 403 (revoked token); every one reads the database, so every one can answer 503
/// (`temporarily_unavailable`, with `Retry-After`) while it is unreachable or locked. Declared
/// here once rather than on each handler.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        let error = |description: &str| {
            let body = Content::new(Some(Ref::from_schema_name("ErrorBody")));
            ResponseBuilder::new()
                .description(description)
                .content("application/json", body)
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                responses.insert("401".into(), error("No or unknown token").into());
                responses.insert("403".into(), error("Revoked token").into());
                responses.insert(
                    "503".into(),
                    error(
                        "The database is unavailable (temporarily_unavailable); retry after the \
                         Retry-After header's seconds",
                    )
                    .into(),
                );
            }
        }
    }
}

fn serialised() -> Bytes {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    DOC.get_or_init(|| {
        Bytes::from(
            AdminApiDoc::openapi()
                .to_pretty_json()
                .expect("the OpenAPI document serialises"),
        )
    })
    .clone()
}

/// `GET /admin/api/v1/openapi.json`: public, it describes the API and holds no data.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(serialised())
}
