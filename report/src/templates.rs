//! The templates and per-language strings of `templates/report/`: embedded
//! as defaults, each file replaceable by an admin's copy (`report.templates`).

use std::collections::BTreeMap;

use engine::contract::Language;
use minijinja::{Environment, context};
use serde::Deserialize;

use crate::ReportView;

/// Every file of the folder, by its name inside it.
pub const FILES: &[(&str, &str)] = &[
    (
        "report.html",
        include_str!("../../templates/report/report.html"),
    ),
    (
        "statement.html",
        include_str!("../../templates/report/statement.html"),
    ),
    (
        "style.css",
        include_str!("../../templates/report/style.css"),
    ),
    (
        "balances.html",
        include_str!("../../templates/report/balances.html"),
    ),
    (
        "page.html",
        include_str!("../../templates/report/page.html"),
    ),
    (
        "strings/en.toml",
        include_str!("../../templates/report/strings/en.toml"),
    ),
    (
        "strings/lv.toml",
        include_str!("../../templates/report/strings/lv.toml"),
    ),
    (
        "strings/pl.toml",
        include_str!("../../templates/report/strings/pl.toml"),
    ),
    (
        "strings/sv.toml",
        include_str!("../../templates/report/strings/sv.toml"),
    ),
    (
        "strings/da.toml",
        include_str!("../../templates/report/strings/da.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{file}: {message}")]
    Strings { file: String, message: String },
    #[error("{file}: {source:#}")]
    Template {
        file: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("{file} is not a file of the report templates; known files: {known}")]
    Unknown { file: String, known: String },
}

/// One language's strings: the texts by key and the month names.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct Strings {
    pub months: Vec<String>,
    #[serde(flatten)]
    pub text: BTreeMap<String, String>,
}

/// The compiled templates and every language's strings.
pub struct Templates {
    env: Environment<'static>,
    strings: BTreeMap<Language, Strings>,
}

impl Templates {
    /// The embedded defaults.
    pub fn embedded() -> Result<Templates, TemplateError> {
        Templates::with_overrides(Vec::new())
    }

    /// The defaults with some files replaced: `(name inside the folder, text)`.
    /// A strings file must hold every key of the English one, and 12 months.
    pub fn with_overrides(overrides: Vec<(String, String)>) -> Result<Templates, TemplateError> {
        let mut files: BTreeMap<String, String> = FILES
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        for (name, text) in overrides {
            if !files.contains_key(&name) {
                return Err(TemplateError::Unknown {
                    file: name,
                    known: FILES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                });
            }
            files.insert(name, text);
        }
        let mut strings = BTreeMap::new();
        for lang in Language::ALL {
            let file = format!("strings/{}.toml", lang.code());
            let s: Strings = toml::from_str(&files[&file]).map_err(|e| TemplateError::Strings {
                file: file.clone(),
                message: e.to_string(),
            })?;
            if s.months.len() != 12 {
                return Err(TemplateError::Strings {
                    file,
                    message: format!("`months` lists {} names; write all 12", s.months.len()),
                });
            }
            strings.insert(lang, s);
        }
        let en = strings[&Language::En].text.clone();
        for (lang, s) in &strings {
            let missing: Vec<&str> = en
                .keys()
                .filter(|k| !s.text.contains_key(*k))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(TemplateError::Strings {
                    file: format!("strings/{}.toml", lang.code()),
                    message: format!("missing keys (see strings/en.toml): {}", missing.join(", ")),
                });
            }
        }
        let mut env = Environment::new();
        for name in [
            "report.html",
            "statement.html",
            "balances.html",
            "page.html",
            "style.css",
        ] {
            env.add_template_owned(name.to_owned(), files[name].clone())
                .map_err(|source| TemplateError::Template {
                    file: name.to_owned(),
                    source,
                })?;
        }
        Ok(Templates { env, strings })
    }

    pub fn strings(&self, lang: Language) -> &Strings {
        &self.strings[&lang]
    }

    /// The work report page.
    pub fn render(&self, view: &ReportView) -> Result<String, TemplateError> {
        self.render_page("report.html", view)
    }

    /// The balance statement page: the header, the balances and the chart.
    pub fn render_statement(&self, view: &ReportView) -> Result<String, TemplateError> {
        self.render_page("statement.html", view)
    }

    fn render_page(&self, name: &str, view: &ReportView) -> Result<String, TemplateError> {
        let lang = Language::parse(view.lang).unwrap_or_default();
        let err = |source| TemplateError::Template {
            file: name.to_owned(),
            source,
        };
        let tmpl = self.env.get_template(name).map_err(err)?;
        tmpl.render(context! {
            r => minijinja::value::Serde(view),
            t => minijinja::value::Serde(&self.strings[&lang].text),
        })
        .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_key_of_english() {
        Templates::embedded().unwrap();
    }

    #[test]
    fn a_strings_override_missing_a_key_names_the_file_and_key() {
        let err = Templates::with_overrides(vec![(
            "strings/lv.toml".into(),
            "months = [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\"]\ntitle = \"x\"\n"
                .into(),
        )])
        .err()
        .unwrap()
        .to_string();
        assert!(err.starts_with("strings/lv.toml: missing keys"), "{err}");
        assert!(err.contains("invoice"), "{err}");
    }

    #[test]
    fn an_unknown_file_is_refused_with_the_known_names() {
        let err = Templates::with_overrides(vec![("report.htm".into(), String::new())])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("report.htm is not") && err.contains("report.html"),
            "{err}"
        );
    }
}
