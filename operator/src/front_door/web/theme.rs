//! The white-label theme: each SaaS company's storefront shows its own product name, logo,
//! brand colour and footer (`--web-*` flags of `marketplace api`).

/// How the storefront looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Theme {
    pub product_name: String,
    /// `#rrggbb`: buttons, links and the header's accent.
    pub brand_color: String,
    /// An image URL shown before the product name (https, or a path on this server).
    pub logo_url: Option<String>,
    pub footer: String,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            product_name: "Marketplace".into(),
            brand_color: "#1d4ed8".into(),
            logo_url: None,
            footer: "Add-ons are billed with your subscription.".into(),
        }
    }
}

/// Why a theme setting is refused; `setting` names where the value came from (a flag, or a
/// field of the theme file).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ThemeError {
    #[error(
        "{setting} {value:?}: give a colour as #rrggbb, dark enough for white text (contrast 4.5:1 or more)"
    )]
    BrandColor { setting: String, value: String },
    #[error("{setting} {value:?}: give an https:// URL or a path starting with /")]
    LogoUrl { setting: String, value: String },
    #[error("--web-theme-file {path}: {reason}")]
    File { path: String, reason: String },
}

fn rgb(hex: &str) -> Option<[f64; 3]> {
    let digits = hex.strip_prefix('#')?;
    if digits.len() != 6 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| {
        u8::from_str_radix(&digits[i..i + 2], 16)
            .ok()
            .map(f64::from)
    };
    Some([channel(0)?, channel(2)?, channel(4)?])
}

/// WCAG 2 relative luminance of `#rrggbb`.
pub fn luminance(hex: &str) -> Option<f64> {
    let linear = |c: f64| {
        let c = c / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let [r, g, b] = rgb(hex)?;
    Some(0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b))
}

/// WCAG 2 contrast ratio of two `#rrggbb` colours.
pub fn contrast(a: &str, b: &str) -> Option<f64> {
    let (la, lb) = (luminance(a)?, luminance(b)?);
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    Some((hi + 0.05) / (lo + 0.05))
}

impl Theme {
    /// The theme, once its colour carries white text at WCAG AA and its logo URL is safe;
    /// errors name the flags.
    pub fn checked(self) -> Result<Theme, ThemeError> {
        self.checked_as(&|field| match field {
            "brandColor" => "--web-brand-color".into(),
            _ => "--web-logo-url".into(),
        })
    }

    /// As [`Theme::checked`], with `setting` naming where a field's value came from (given the
    /// theme file's field name: `brandColor`, `logoUrl`).
    pub fn checked_as(self, setting: &dyn Fn(&str) -> String) -> Result<Theme, ThemeError> {
        if !contrast(&self.brand_color, "#ffffff").is_some_and(|c| c >= 4.5) {
            return Err(ThemeError::BrandColor {
                setting: setting("brandColor"),
                value: self.brand_color,
            });
        }
        if let Some(logo) = &self.logo_url
            && !(logo.starts_with("https://") || (logo.starts_with('/') && !logo.starts_with("//")))
        {
            return Err(ThemeError::LogoUrl {
                setting: setting("logoUrl"),
                value: logo.clone(),
            });
        }
        Ok(self)
    }
}
