//! Ready-to-paste configuration for a client, with its real values: the issuer, its client ID,
//! its first registered redirect URI and its scopes. Never its secret: Portico keeps only the
//! secret's digest, so each snippet reads it from an environment variable named in the snippet.
//! One snippet per framework that docs/integrations/ has a worked guide for; the page names the
//! guide, which says the rest (refresh, sign-out, local testing).

use crate::admin::clients::service::ClientView;

/// The environment variable every snippet reads the client secret from.
pub const SECRET_ENV: &str = "PORTICO_CLIENT_SECRET";

/// One framework's snippet.
pub struct Snippet {
    /// The element id of its `<pre>` (the Copy button's target).
    pub id: &'static str,
    pub title: &'static str,
    /// The guide in docs/integrations/.
    pub doc: &'static str,
    /// Where the snippet goes in the application.
    pub file: &'static str,
    pub code: String,
}

/// The values the snippets are made of.
struct Values<'a> {
    issuer: &'a str,
    client_id: &'a str,
    redirect: &'a str,
    scopes: String,
    public: bool,
}

/// The lines of the plain configuration block: what every application needs (the client page
/// and the reveal page; the reveal page adds the secret after `client_id`).
pub fn config_lines(issuer: &str, client: &ClientView) -> Vec<(&'static str, String)> {
    let mut lines = vec![
        ("issuer", issuer.to_owned()),
        ("client_id", client.client_id.clone()),
    ];
    if let Some(uri) = client.redirect_uris.first() {
        lines.push(("redirect_uri", uri.clone()));
    }
    lines.push(("scope", scopes(client)));
    lines.push((
        "discovery",
        format!("{issuer}/.well-known/openid-configuration"),
    ));
    lines
}

/// The scopes a sign-in asks for: the client's, `openid` first.
fn scopes(client: &ClientView) -> String {
    let mut list: Vec<&str> = vec!["openid"];
    list.extend(
        client
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|s| *s != "openid"),
    );
    list.join(" ")
}

/// Every framework's snippet for `client`.
pub fn for_client(issuer: &str, client: &ClientView) -> Vec<Snippet> {
    let v = Values {
        issuer,
        client_id: &client.client_id,
        redirect: client
            .redirect_uris
            .first()
            .map_or("https://app.example.com/callback", String::as_str),
        scopes: scopes(client),
        public: client.client_type == "public",
    };
    vec![
        nextjs(&v),
        authlib(&v),
        go(&v),
        oauth2_proxy(&v),
        grafana(&v),
    ]
}

fn nextjs(v: &Values<'_>) -> Snippet {
    let secret = if v.public {
        "client: { token_endpoint_auth_method: \"none\" }, // a public client: no secret".into()
    } else {
        format!("clientSecret: process.env.{SECRET_ENV},")
    };
    Snippet {
        id: "snippet-nextjs",
        title: "Next.js (Auth.js / next-auth)",
        doc: "docs/integrations/nextjs.md",
        file: "auth.ts",
        code: format!(
            r#"import NextAuth from "next-auth"

// Auth.js answers at /api/auth/callback/portico: register that URL as a redirect URI.
// This client's first redirect URI: {redirect}
export const {{ handlers, auth, signIn, signOut }} = NextAuth({{
  providers: [{{
    id: "portico",
    name: "Portico",
    type: "oidc",
    issuer: "{issuer}",
    clientId: "{client_id}",
    {secret}
    authorization: {{ params: {{ scope: "{scopes}" }} }},
    checks: ["pkce", "state", "nonce"],
  }}],
}})"#,
            redirect = v.redirect,
            issuer = v.issuer,
            client_id = v.client_id,
            scopes = v.scopes,
        ),
    }
}

fn authlib(v: &Values<'_>) -> Snippet {
    let secret = if v.public {
        "token_endpoint_auth_method=\"none\",  # a public client: no secret".into()
    } else {
        format!("client_secret=os.environ[\"{SECRET_ENV}\"],")
    };
    Snippet {
        id: "snippet-authlib",
        title: "Python (Authlib)",
        doc: "docs/integrations/python-authlib.md",
        file: "app.py",
        code: format!(
            r#"import os
from authlib.integrations.flask_client import OAuth

oauth = OAuth(app)
oauth.register(
    name="portico",
    client_id="{client_id}",
    {secret}
    server_metadata_url="{issuer}/.well-known/openid-configuration",
    client_kwargs={{"scope": "{scopes}", "code_challenge_method": "S256"}},
)

@app.route("/login")
def login():
    return oauth.portico.authorize_redirect("{redirect}")"#,
            client_id = v.client_id,
            issuer = v.issuer,
            scopes = v.scopes,
            redirect = v.redirect,
        ),
    }
}

fn go(v: &Values<'_>) -> Snippet {
    Snippet {
        id: "snippet-go",
        title: "Go (validating Portico's tokens)",
        doc: "docs/integrations/go.md",
        file: "main.go",
        code: format!(
            r#"import "github.com/coreos/go-oidc/v3/oidc"

// Discovery and the signing keys (JWKS, cached and refreshed) from the issuer.
provider, err := oidc.NewProvider(ctx, "{issuer}")
if err != nil {{
	log.Fatal(err)
}}
// ID tokens of this client: aud is its client ID. (An API checks its access tokens' aud
// against its own resource indicator instead: see the guide.)
verifier := provider.Verifier(&oidc.Config{{ClientID: "{client_id}"}})
idToken, err := verifier.Verify(ctx, rawIDToken)"#,
            issuer = v.issuer,
            client_id = v.client_id,
        ),
    }
}

fn oauth2_proxy(v: &Values<'_>) -> Snippet {
    let secret = if v.public {
        "# oauth2-proxy runs on a server and authenticates with a client secret: give it a \
         confidential client rather than this public one"
            .into()
    } else {
        format!("# the secret, from the environment:\nOAUTH2_PROXY_CLIENT_SECRET=${{{SECRET_ENV}}}")
    };
    Snippet {
        id: "snippet-oauth2-proxy",
        title: "oauth2-proxy",
        doc: "docs/integrations/oauth2-proxy.md",
        file: "oauth2-proxy flags",
        code: format!(
            r#"--provider=oidc
--provider-display-name=Portico
--oidc-issuer-url={issuer}
--client-id={client_id}
--redirect-url={redirect}
--code-challenge-method=S256
--scope="{scopes}"
{secret}"#,
            issuer = v.issuer,
            client_id = v.client_id,
            redirect = v.redirect,
            scopes = v.scopes,
        ),
    }
}

fn grafana(v: &Values<'_>) -> Snippet {
    let secret = if v.public {
        "; a public client: no secret, the client ID goes in the request body\nauth_style = InParams".into()
    } else {
        format!("client_secret = $__env{{{SECRET_ENV}}}\nauth_style = InHeader")
    };
    Snippet {
        id: "snippet-grafana",
        title: "Grafana (generic OAuth)",
        doc: "docs/integrations/grafana.md",
        file: "grafana.ini",
        code: format!(
            r#"[auth.generic_oauth]
enabled = true
name = Portico
client_id = {client_id}
{secret}
scopes = {scopes}
auth_url = {issuer}/authorize
token_url = {issuer}/token
api_url = {issuer}/userinfo
use_pkce = true
; Grafana's redirect URI is <root_url>/login/generic_oauth; this client's first one is
; {redirect}"#,
            client_id = v.client_id,
            scopes = v.scopes,
            issuer = v.issuer,
            redirect = v.redirect,
        ),
    }
}
