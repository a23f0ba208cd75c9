//! `/admin/guides/providers/{kind}`: each provider kind's setup guide (docs/providers/), compiled
//! into the binary and rendered from Markdown inside the admin layout, so the guide a form links
//! to is the one of the running version and needs nothing from elsewhere.
//!
//! The Markdown is the repository's own, but it is rendered as if it were not: HTML in it is
//! shown as text, never passed through, and link targets with a scheme other than http(s) or
//! mailto are dropped. Links between the provider guides (`oidc.md`) lead to their pages here;
//! other relative links (`../SECURITY.md`) have no page here and become plain text.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

use crate::admin::auth::session::AdminSession;
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{self, Chrome};
use crate::providers::supported_kind;
use crate::upstream::ProviderKind;

/// Each kind's guide. A kind without one has no guide page (and its form no link).
const GUIDES: [(ProviderKind, &str); 4] = [
    (
        ProviderKind::Google,
        include_str!("../../docs/providers/google.md"),
    ),
    (
        ProviderKind::Github,
        include_str!("../../docs/providers/github.md"),
    ),
    (
        ProviderKind::Oidc,
        include_str!("../../docs/providers/oidc.md"),
    ),
    (
        ProviderKind::Saml,
        include_str!("../../docs/providers/saml.md"),
    ),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/guides/providers/{kind}", web::get().to(provider_guide));
}

/// The page of a guide for `kind`.
pub fn url(kind: ProviderKind) -> String {
    format!("/admin/guides/providers/{kind}")
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/guide.html")]
struct GuidePage {
    chrome: Chrome,
    title: String,
    /// The guide as HTML, rendered by [`render`] (safe to insert as it is).
    body: String,
}

async fn provider_guide(
    session: AdminSession,
    kind: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let guide = supported_kind(&kind)
        .ok()
        .and_then(|k| GUIDES.iter().find(|(g, _)| *g == k));
    let Some((_, markdown)) = guide else {
        return pages::not_found(Ok(session)).await;
    };
    let page = GuidePage {
        chrome: Chrome::new(&session, "providers"),
        title: title(markdown),
        body: render(markdown),
    };
    pages::render(actix_web::http::StatusCode::OK, &page)
}

/// The first heading's text.
fn title(markdown: &str) -> String {
    let mut title = String::new();
    let mut inside = false;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Heading { .. }) => inside = true,
            Event::End(TagEnd::Heading(_)) => break,
            Event::Text(t) | Event::Code(t) if inside => title.push_str(&t),
            _ => {}
        }
    }
    title
}

/// The guide as HTML: the Markdown's own HTML shown as text, links checked (module doc),
/// images as their address, code blocks and tables reachable by keyboard when they scroll.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    // A link that may lead nowhere is kept as its text (links do not nest).
    let mut unlinked = false;
    let events = Parser::new_ext(markdown, options).flat_map(move |event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => vec![Event::Text(raw)],
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => match link(&dest_url) {
            Some(dest_url) => vec![Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            })],
            None => {
                unlinked = true;
                vec![]
            }
        },
        Event::End(TagEnd::Link) if unlinked => {
            unlinked = false;
            vec![]
        }
        Event::Start(Tag::Image { dest_url, .. }) => vec![Event::Text(dest_url)],
        Event::End(TagEnd::Image) => vec![],
        Event::Start(Tag::CodeBlock(_)) => vec![Event::Html("<pre tabindex=\"0\"><code>".into())],
        Event::Start(Tag::Table(alignments)) => vec![
            Event::Html(
                "<div class=\"table-wrap\" tabindex=\"0\" role=\"region\" aria-label=\"Table\">"
                    .into(),
            ),
            Event::Start(Tag::Table(alignments)),
        ],
        Event::End(TagEnd::Table) => {
            vec![Event::End(TagEnd::Table), Event::Html("</div>\n".into())]
        }
        other => vec![other],
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// Where a link of a guide may lead: another provider guide's page, or an http(s) or mailto
/// URL; anything else (a relative file of the repository, `javascript:`) leads nowhere.
fn link(dest: &str) -> Option<CowStr<'static>> {
    let (path, fragment) = dest.split_once('#').unwrap_or((dest, ""));
    if let Some(kind) = path
        .strip_suffix(".md")
        .and_then(|k| supported_kind(k).ok())
        && GUIDES.iter().any(|(g, _)| *g == kind)
    {
        let anchor = if fragment.is_empty() {
            String::new()
        } else {
            format!("#{fragment}")
        };
        return Some(format!("{}{anchor}", url(kind)).into());
    }
    let lower = dest.to_ascii_lowercase();
    let allowed = ["https://", "http://", "mailto:"];
    allowed
        .iter()
        .any(|scheme| lower.starts_with(scheme))
        .then(|| dest.to_owned().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_in_a_guide_is_text_and_links_are_checked() {
        let html = render(
            "# Title\n\n<script>alert(1)</script>\n\nInline <b>bold</b>, \
             [bad](javascript:alert(1)), [repo](../SECURITY.md), [oidc](oidc.md#claims), \
             [site](https://example.com/x).\n\n![logo](https://example.com/l.png)\n",
        );
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(!html.contains("<script") && !html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(
            !html.contains("SECURITY.md\"") && html.contains(" repo,"),
            "{html}"
        );
        assert!(!html.contains("href=\"\""), "{html}");
        assert!(
            html.contains("href=\"/admin/guides/providers/oidc#claims\""),
            "{html}"
        );
        assert!(html.contains("href=\"https://example.com/x\""), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert_eq!(title("# A *guide*\n\ntext"), "A guide");
    }
}
