//! The white-label theme from a YAML file (`--web-theme-file`, the `theme:` block of a
//! company's configuration) and the `--web-*` flags, which override the file's values.

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use super::theme::{Theme, ThemeError};

/// The theme settings of `marketplace api` and `marketplace catalog preview`.
#[derive(Args, Debug, Clone, Default)]
pub struct ThemeArgs {
    /// A YAML file with the theme: productName, brandColor, logoUrl, footer (at the top or
    /// under `theme:`). The flags below override its values.
    #[arg(long, env = "MARKETPLACE_WEB_THEME_FILE", value_name = "PATH")]
    pub web_theme_file: Option<PathBuf>,
    /// The web UI's product name (white-label), shown in its header and titles.
    #[arg(long, env = "MARKETPLACE_WEB_PRODUCT_NAME")]
    pub web_product_name: Option<String>,
    /// The web UI's brand colour, #rrggbb; white text on it must reach contrast 4.5:1.
    #[arg(long, env = "MARKETPLACE_WEB_BRAND_COLOR")]
    pub web_brand_color: Option<String>,
    /// The web UI's logo: an https:// URL or a path on the API's host.
    #[arg(long, env = "MARKETPLACE_WEB_LOGO_URL")]
    pub web_logo_url: Option<String>,
    /// The web UI's footer text.
    #[arg(long, env = "MARKETPLACE_WEB_FOOTER")]
    pub web_footer: Option<String>,
}

/// Theme values a file or the flags set; unset ones keep what was there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThemeValues {
    pub product_name: Option<String>,
    pub brand_color: Option<String>,
    pub logo_url: Option<String>,
    pub footer: Option<String>,
}

const FIELDS: [&str; 4] = ["productName", "brandColor", "logoUrl", "footer"];

/// A theme file's values; errors name the file and the field.
pub fn parse_theme_file(path: &str, text: &str) -> Result<ThemeValues, ThemeError> {
    let error = |reason: String| ThemeError::File {
        path: path.to_owned(),
        reason,
    };
    let document: Value =
        serde_saphyr::from_str(text).map_err(|e| error(format!("not YAML: {e}")))?;
    let block = match document.get("theme") {
        Some(theme) => theme,
        None => &document,
    };
    let Some(map) = block.as_object() else {
        return Err(error(
            "give a mapping with productName, brandColor, logoUrl and footer".into(),
        ));
    };
    let mut values = ThemeValues::default();
    for (key, value) in map {
        let Some(text) = value.as_str() else {
            return Err(error(format!("{key}: give a string")));
        };
        let text = Some(text.to_owned());
        match key.as_str() {
            "productName" => values.product_name = text,
            "brandColor" => values.brand_color = text,
            "logoUrl" => values.logo_url = text,
            "footer" => values.footer = text,
            other => {
                return Err(error(format!(
                    "{other}: unknown field (the theme has {})",
                    FIELDS.join(", ")
                )));
            }
        }
    }
    Ok(values)
}

impl ThemeValues {
    /// `base` with these values over it.
    pub fn over(&self, base: Theme) -> Theme {
        Theme {
            product_name: self.product_name.clone().unwrap_or(base.product_name),
            brand_color: self.brand_color.clone().unwrap_or(base.brand_color),
            logo_url: self.logo_url.clone().or(base.logo_url),
            footer: self.footer.clone().unwrap_or(base.footer),
        }
    }
}

/// The defaults, then the file, then the flags; checked, each error naming the flag or the
/// file's field its value came from.
pub fn resolve(
    file: Option<(&str, ThemeValues)>,
    flags: &ThemeValues,
) -> Result<Theme, ThemeError> {
    let mut theme = Theme::default();
    let mut file_fields: Vec<&str> = Vec::new();
    let mut file_path = "";
    if let Some((path, values)) = &file {
        theme = values.over(theme);
        file_path = path;
        for (field, set) in [
            ("brandColor", values.brand_color.is_some()),
            ("logoUrl", values.logo_url.is_some()),
        ] {
            if set {
                file_fields.push(field);
            }
        }
    }
    let flagged = |field: &str| match field {
        "brandColor" => flags.brand_color.is_some(),
        _ => flags.logo_url.is_some(),
    };
    flags.over(theme).checked_as(&|field| {
        if !flagged(field) && file_fields.contains(&field) {
            format!("--web-theme-file {file_path}: {field}")
        } else if field == "brandColor" {
            "--web-brand-color".into()
        } else {
            "--web-logo-url".into()
        }
    })
}

impl ThemeArgs {
    fn flags(&self) -> ThemeValues {
        ThemeValues {
            product_name: self.web_product_name.clone(),
            brand_color: self.web_brand_color.clone(),
            logo_url: self.web_logo_url.clone(),
            footer: self.web_footer.clone(),
        }
    }

    /// The flags over the defaults, unchecked and without the file (for settings built
    /// without reading files; [`ThemeArgs::theme`] is what a process runs with).
    pub fn flags_only(&self) -> Theme {
        self.flags().over(Theme::default())
    }

    /// The theme: the file read, the flags over it, checked.
    pub fn theme(&self) -> Result<Theme, ThemeError> {
        let file = match &self.web_theme_file {
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| ThemeError::File {
                    path: shown.clone(),
                    reason: format!("cannot read: {e}"),
                })?;
                let values = parse_theme_file(&shown, &text)?;
                Some((shown, values))
            }
            None => None,
        };
        resolve(
            file.as_ref().map(|(p, v)| (p.as_str(), v.clone())),
            &self.flags(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str =
        "theme:\n  productName: Fleetly\n  brandColor: '#0f766e'\n  footer: Fleetly Inc.\n";

    #[test]
    fn file_values_apply_and_flags_override_them() {
        let file = parse_theme_file("theme.yaml", FILE).expect("parses");
        let flags = ThemeValues {
            footer: Some("From the flag".into()),
            ..ThemeValues::default()
        };
        let theme = resolve(Some(("theme.yaml", file)), &flags).expect("valid");
        assert_eq!(theme.product_name, "Fleetly");
        assert_eq!(theme.brand_color, "#0f766e");
        assert_eq!(theme.footer, "From the flag");
        assert_eq!(theme.logo_url, None);
    }

    #[test]
    fn a_flat_file_works_too() {
        let file = parse_theme_file("t.yaml", "productName: Fleetly\n").expect("parses");
        assert_eq!(file.product_name.as_deref(), Some("Fleetly"));
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let unknown = parse_theme_file("t.yaml", "theme:\n  brandColour: '#000000'\n")
            .expect_err("unknown field")
            .to_string();
        assert!(
            unknown.contains("t.yaml") && unknown.contains("brandColour: unknown field"),
            "{unknown}"
        );
        let not_text = parse_theme_file("t.yaml", "footer: [a]\n")
            .expect_err("list")
            .to_string();
        assert!(not_text.contains("footer: give a string"), "{not_text}");
    }

    #[test]
    fn contrast_applies_and_names_where_the_colour_came_from() {
        let pale = parse_theme_file("t.yaml", "brandColor: '#fde68a'\n").expect("parses");
        let from_file = resolve(Some(("t.yaml", pale.clone())), &ThemeValues::default())
            .expect_err("pale")
            .to_string();
        assert!(
            from_file.contains("--web-theme-file t.yaml: brandColor"),
            "{from_file}"
        );
        let flags = ThemeValues {
            brand_color: Some("#ffffff".into()),
            ..ThemeValues::default()
        };
        let from_flag = resolve(Some(("t.yaml", pale)), &flags)
            .expect_err("white")
            .to_string();
        assert!(from_flag.starts_with("--web-brand-color"), "{from_flag}");
    }
}
