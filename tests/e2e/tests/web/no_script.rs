//! The storefront's writes without JavaScript: a plain HTTP client does what a browser with
//! scripts off does: signs in with the form, posts the buy form (then its confirmation page),
//! follows each Post/Redirect/Get, cancels and undoes from My subscriptions, and a superadmin
//! posts a console step. A resubmitted form
//! buys once; a form without the session's CSRF token is refused.

use std::time::Duration;

use marketplace_e2e::eventually;
use marketplace_operator::text::percent_encode;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;

/// A browser without scripts: no redirects followed by itself, one session cookie.
pub struct Plain {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

const FORM: &str = "application/x-www-form-urlencoded";

/// A form body, as a browser encodes it.
fn encoded<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encode(k.as_ref()),
                percent_encode(v.as_ref())
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `<form ...>` of `html` whose opening tag contains `needle`: its action and hidden fields.
pub fn form(html: &str, needle: &str) -> (String, Vec<(String, String)>) {
    let start = html
        .match_indices("<form")
        .map(|(i, _)| i)
        .find(|&i| {
            html[i..]
                .split('>')
                .next()
                .is_some_and(|tag| tag.contains(needle))
        })
        .unwrap_or_else(|| panic!("no form with {needle:?} in {html}"));
    let body = &html[start..start + html[start..].find("</form>").expect("form end")];
    let action = body
        .split("action=\"")
        .nth(1)
        .and_then(|a| a.split('"').next())
        .expect("action");
    let hidden = body
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|piece| {
            let name = piece.split('"').next().unwrap_or_default();
            let value = piece
                .split("value=\"")
                .nth(1)
                .and_then(|v| v.split('"').next())
                .unwrap_or_default();
            (name.to_owned(), unescape(value))
        })
        .collect();
    (unescape(action), hidden)
}

impl Plain {
    /// Signs in through the sign-in form (the token pasted, no script).
    pub async fn sign_in(base: &str, token: &str) -> Plain {
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client");
        let response = http
            .post(format!("{base}/signin"))
            .header("content-type", FORM)
            .body(encoded(&[("token", token), ("next", "/")]))
            .send()
            .await
            .expect("sign in");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .split(';')
            .next()
            .expect("pair")
            .to_owned();
        Plain {
            http,
            base: base.to_owned(),
            cookie,
        }
    }

    pub async fn page(&self, path: &str) -> String {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("page");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.text().await.expect("html")
    }

    /// Posts a form as a browser does (same origin); the status, Location and body.
    pub async fn post(
        &self,
        action: &str,
        fields: &[(String, String)],
    ) -> (StatusCode, String, String) {
        let response = self
            .http
            .post(format!("{}{action}", self.base))
            .header("cookie", &self.cookie)
            .header("origin", &self.base)
            .header("content-type", FORM)
            .body(encoded(fields))
            .send()
            .await
            .expect("post");
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, location, response.text().await.expect("body"))
    }
}

fn with(mut fields: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    fields.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    fields
}

/// Buys `listing` (plan `pro`) through the forms; returns the confirmed form, for a resubmit.
pub async fn buy(buyer: &Plain, tenant: &str, listing: &str) -> (String, Vec<(String, String)>) {
    let detail = buyer
        .page(&format!("/t/{tenant}/marketplace/{listing}"))
        .await;
    let (action, hidden) = form(&detail, "id=\"buy-form\"");
    assert_eq!(action, format!("/forms/t/{tenant}/buy"));
    let fields = with(hidden, &[("plan", "pro"), ("quantity", "1")]);
    let (status, _, confirm) = buyer.post(&action, &fields).await;
    assert_eq!(status, StatusCode::OK, "{confirm}");
    assert!(
        confirm.contains("Confirm addition of $49.00/mo to your bill?"),
        "{confirm}"
    );
    let (action, confirmed) = form(&confirm, "method=\"post\"");
    let (status, location, body) = buyer.post(&action, &confirmed).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        location,
        format!("/t/{tenant}/marketplace/{listing}#requests")
    );
    (action, confirmed)
}

/// The tenant's subscriptions to `listing`, as the buyer's API sees them.
pub async fn subscriptions_to(base: &str, token: &str, tenant: &str, listing: &str) -> Vec<Value> {
    let answer: Value = reqwest::Client::new()
        .get(format!("{base}/v1/tenants/{tenant}/subscriptions"))
        .bearer_auth(token)
        .send()
        .await
        .expect("subscriptions")
        .json()
        .await
        .expect("json");
    answer["subscriptions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s["listing"] == listing)
        .collect()
}

/// The whole scenario: an instant buy (resubmitted: one subscription), a refused form without
/// the CSRF token, an approval request and the superadmin's Invoice step from the console.
pub async fn writes_without_javascript(
    base: &str,
    tenant: &str,
    (buyer_token, superadmin_token): (&str, &str),
    (instant, approval): (&str, &str),
) {
    let buyer = Plain::sign_in(base, buyer_token).await;
    let (action, confirmed) = buy(&buyer, tenant, instant).await;
    let (status, _, _) = buyer.post(&action, &confirmed).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a resubmitted form answers as the first time"
    );
    let unsigned: Vec<(String, String)> = confirmed
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    let (status, _, _) = buyer.post(&action, &unsigned).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token, no purchase");
    assert_eq!(
        subscriptions_to(base, buyer_token, tenant, instant)
            .await
            .len(),
        1,
        "bought once"
    );

    // Cancel at the end of the period, then undo, from My subscriptions (each confirmed).
    let subscription = eventually("the purchase active", Duration::from_secs(20), || async {
        let subs = subscriptions_to(base, buyer_token, tenant, instant).await;
        (subs[0]["phase"] == "Active").then(|| subs[0]["name"].as_str().map(str::to_owned))?
    })
    .await;
    for (op, cancelled) in [("cancel", true), ("undo", false)] {
        let page = buyer.page(&format!("/t/{tenant}/subscriptions")).await;
        let (action, hidden) = form(
            &page,
            &format!(
                "class=\"inline\" method=\"post\" action=\"/forms/t/{tenant}/subscriptions/{subscription}\""
            ),
        );
        assert!(
            hidden.contains(&("op".to_owned(), op.to_owned())),
            "{hidden:?}"
        );
        let (status, _, confirm) = buyer.post(&action, &hidden).await;
        assert_eq!(status, StatusCode::OK, "{confirm}");
        let (action, confirmed) = form(&confirm, "method=\"post\"");
        let (status, location, body) = buyer.post(&action, &confirmed).await;
        assert_eq!(
            (status, location.as_str()),
            (
                StatusCode::SEE_OTHER,
                format!("/t/{tenant}/subscriptions").as_str()
            ),
            "{op}: {body}"
        );
        eventually(op, Duration::from_secs(20), || async {
            let subs = subscriptions_to(base, buyer_token, tenant, instant).await;
            (subs[0].get("cancellation").is_some_and(|c| !c.is_null()) == cancelled).then_some(())
        })
        .await;
    }

    buy(&buyer, tenant, approval).await;
    let requested = subscriptions_to(base, buyer_token, tenant, approval).await;
    let name = requested[0]["name"].as_str().expect("name").to_owned();

    let superadmin =
        Plain::sign_in(&base.replace("127.0.0.1", "localhost"), superadmin_token).await;
    let needle = format!("/subscriptions/{name}/actions\" data-action-url");
    let inbox = eventually(
        "the request in the inbox",
        Duration::from_secs(20),
        || async {
            let html = superadmin.page("/admin").await;
            html.contains(&needle).then_some(html)
        },
    )
    .await;
    let (action, hidden) = form(
        &inbox,
        &format!(
            "{needle}=\"/v1/admin/tenants/{tenant}/subscriptions/{name}/actions\" data-action=\"Invoice\""
        ),
    );
    let fields = with(hidden, &[("amount", "99.00"), ("currency", "USD")]);
    let (status, location, body) = superadmin.post(&action, &fields).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/admin"),
        "{body}"
    );
    eventually("the request invoiced", Duration::from_secs(20), || async {
        let subs = subscriptions_to(base, buyer_token, tenant, approval).await;
        (subs[0]["phase"] == "Invoiced").then_some(())
    })
    .await;
}
