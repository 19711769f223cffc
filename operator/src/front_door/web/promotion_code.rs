//! The promotion code field of the buy forms (a listing's and a bundle's): labelled, optional,
//! with a hint and a place for why a code was refused, which the field is described by. The
//! code a buyer entered is echoed back escaped.

use super::html::escape;

/// What the field shows: the code entered, and why it was refused (none: not refused).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeField {
    pub code: String,
    pub error: Option<String>,
}

impl CodeField {
    /// The field after `code` was refused for `why` (an API message, made a sentence).
    pub fn refused(code: &str, why: &str) -> CodeField {
        CodeField {
            code: code.to_string(),
            error: Some(sentence(why)),
        }
    }

    /// The status of the page showing the field: 422 when its code was refused.
    pub fn page_status(&self) -> axum::http::StatusCode {
        if self.error.is_some() {
            axum::http::StatusCode::UNPROCESSABLE_ENTITY
        } else {
            axum::http::StatusCode::OK
        }
    }
}

/// An API message ("promotion code ... is not on offer ...") as a sentence on a page.
fn sentence(message: &str) -> String {
    let mut chars = message.trim_end_matches('.').chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// The field: `promotionCode`, described by its hint and its error (empty until a code is
/// refused; the page's script fills it in place, announced politely).
pub fn render(field: &CodeField) -> String {
    format!(
        "<div class=\"code-row\"><label for=\"promotion-code\">Promotion code <span class=\"muted\">(optional)</span></label>\
<input id=\"promotion-code\" name=\"promotionCode\" type=\"text\" value=\"{code}\" autocomplete=\"off\" \
autocapitalize=\"characters\" spellcheck=\"false\" aria-describedby=\"promotion-code-hint promotion-code-error\"{invalid}>\
<small id=\"promotion-code-hint\">With a code you confirm its price before anything is bought.</small>\
<p id=\"promotion-code-error\" class=\"error\" aria-live=\"polite\">{error}</p></div>",
        code = escape(&field.code),
        invalid = if field.error.is_some() {
            " aria-invalid=\"true\""
        } else {
            ""
        },
        error = field.error.as_deref().map(escape).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_is_labelled_optional_and_described() {
        let html = render(&CodeField::default());
        assert!(html.contains("<label for=\"promotion-code\">Promotion code"));
        assert!(
            html.contains("id=\"promotion-code\" name=\"promotionCode\" type=\"text\" value=\"\"")
        );
        assert!(html.contains("aria-describedby=\"promotion-code-hint promotion-code-error\""));
        assert!(!html.contains("aria-invalid"));
        assert!(!html.contains(" required"));
    }

    #[test]
    fn a_refused_code_is_echoed_escaped_with_why_next_to_it() {
        let field = CodeField::refused(
            "<b>\"X\"",
            "promotion code \"<B>\" is not on offer for routes/pro to this tenant now",
        );
        let html = render(&field);
        assert!(html.contains("value=\"&lt;b&gt;&quot;X&quot;\""), "{html}");
        assert!(html.contains("aria-invalid=\"true\""));
        assert!(
            html.contains(
                "<p id=\"promotion-code-error\" class=\"error\" aria-live=\"polite\">Promotion code &quot;&lt;B&gt;&quot; is not on offer for routes/pro to this tenant now.</p>"
            ),
            "{html}"
        );
        assert!(!html.contains("<b>"));
    }
}
