//! Classification rules: the TOML files under `profiler/rules/`, parsed and
//! validated into matchers.
//!
//! A rules file holds `[[thread]]` rules (thread-name patterns) and `[[frame]]`
//! rules (patterns on a frame's symbol, module and kind). Within a rule, every
//! field that is given must match (`symbol_*` fields count as one field: any of
//! their patterns); within a field, any pattern. See `profiler/rules/README.md`.

use std::collections::HashSet;

use regex::Regex;
use serde::Deserialize;

use crate::stacks::{Category, Frame, FrameKind};

/// A rules file that cannot be used; says which file and rule, and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rules file {file}: invalid TOML (fix the syntax or field names): {source}")]
    Parse {
        file: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("rules file {file}: `runtime = \"{found}\"` but this file is for `{expected}`")]
    WrongRuntime {
        file: String,
        expected: String,
        found: String,
    },
    #[error("rules file {file}: {kind} rule #{index} has no pattern: give at least one matcher")]
    EmptyRule {
        file: String,
        kind: &'static str,
        index: usize,
    },
    #[error(
        "rules file {file}: {kind} rule #{index} uses category `{category}`, \
         which this file may not produce ({allowed})"
    )]
    CategoryNotAllowed {
        file: String,
        kind: &'static str,
        index: usize,
        category: &'static str,
        allowed: &'static str,
    },
    #[error("rules file {file}: {kind} rule #{index}: bad regex `{pattern}`: {source}")]
    BadRegex {
        file: String,
        kind: &'static str,
        index: usize,
        pattern: String,
        #[source]
        source: Box<regex::Error>,
    },
}

/// How a rules file may use categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileRole {
    /// `native.toml`: identifies kernel frames; only `app` and `kernel`.
    Base,
    /// A managed runtime's file: `app`, `jit`, `gc`, `runtime` (never `kernel`).
    Runtime,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    runtime: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    thread: Vec<ThreadSpec>,
    #[serde(default)]
    frame: Vec<FrameSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThreadSpec {
    category: Category,
    #[serde(default)]
    exact: Vec<String>,
    #[serde(default)]
    prefix: Vec<String>,
    #[serde(default)]
    regex: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameSpec {
    category: Category,
    #[serde(default)]
    symbol_exact: Vec<String>,
    #[serde(default)]
    symbol_prefix: Vec<String>,
    #[serde(default)]
    symbol_contains: Vec<String>,
    #[serde(default)]
    symbol_regex: Vec<String>,
    #[serde(default)]
    module: Vec<String>,
    #[serde(default)]
    module_regex: Vec<String>,
    kind: Option<FrameKind>,
    #[serde(default)]
    scope: Scope,
    #[serde(default)]
    #[allow(dead_code)]
    note: String,
}

/// How far a frame rule's category reaches (see `profiler/rules/README.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Scope {
    /// The frame takes part in the precedence steps like any other.
    #[default]
    Frame,
    /// (`jit` / `gc` only) The frame and everything it calls: a collection or a
    /// compilation entry point. The innermost such frame decides before any other rule.
    Whole,
    /// (`app` only) An allocation entry point: its cost is its caller's. Frames from
    /// the leaf up to the outermost such frame decide nothing (unless one is `whole`).
    Caller,
}

/// Patterns on one string: exact names, prefixes, substrings, regexes.
#[derive(Debug, Default)]
struct TextMatcher {
    exact: HashSet<String>,
    prefix: Vec<String>,
    contains: Vec<String>,
    regex: Vec<Regex>,
}

impl TextMatcher {
    fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.prefix.is_empty()
            && self.contains.is_empty()
            && self.regex.is_empty()
    }

    fn matches(&self, s: &str) -> bool {
        self.exact.contains(s)
            || self.prefix.iter().any(|p| s.starts_with(p.as_str()))
            || self.contains.iter().any(|c| s.contains(c.as_str()))
            || self.regex.iter().any(|r| r.is_match(s))
    }
}

/// One compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub category: Category,
    symbol: TextMatcher,
    module: TextMatcher,
    kind: Option<FrameKind>,
    scope: Scope,
}

impl Rule {
    fn matches_frame(&self, frame: &Frame) -> bool {
        if let Some(kind) = self.kind
            && frame.kind != kind
        {
            return false;
        }
        if !self.module.is_empty() {
            // Modules are file names; accept a full path too.
            let file = frame
                .module
                .as_deref()
                .map(|m| m.rsplit('/').next().unwrap_or(m));
            match file {
                Some(m) if self.module.matches(m) => {}
                _ => return false,
            }
        }
        self.symbol.is_empty() || self.symbol.matches(&frame.name)
    }
}

/// The compiled rules of one file.
#[derive(Debug)]
pub(crate) struct RuleSet {
    threads: Vec<Rule>,
    frames: Vec<Rule>,
}

impl RuleSet {
    /// Parses and validates one rules file.
    pub(crate) fn parse(
        file: &str,
        expected_runtime: &str,
        role: FileRole,
        text: &str,
    ) -> Result<RuleSet, RulesError> {
        let spec: FileSpec = toml::from_str(text).map_err(|e| RulesError::Parse {
            file: file.to_string(),
            source: Box::new(e),
        })?;
        if spec.runtime != expected_runtime {
            return Err(RulesError::WrongRuntime {
                file: file.to_string(),
                expected: expected_runtime.to_string(),
                found: spec.runtime,
            });
        }
        let ctx = |kind: &'static str, index: usize| Ctx {
            file,
            kind,
            index,
            role,
        };
        let threads = spec
            .thread
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let c = ctx("thread", i + 1);
                c.check_category(t.category)?;
                let names = c.text(t.exact, t.prefix, Vec::new(), t.regex)?;
                if names.is_empty() {
                    return Err(c.empty());
                }
                Ok(Rule {
                    category: t.category,
                    // Thread rules match the thread name through `symbol`.
                    symbol: names,
                    module: TextMatcher::default(),
                    kind: None,
                    scope: Scope::Frame,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let frames = spec
            .frame
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let c = ctx("frame", i + 1);
                c.check_category(f.category)?;
                let symbol = c.text(
                    f.symbol_exact,
                    f.symbol_prefix,
                    f.symbol_contains,
                    f.symbol_regex,
                )?;
                let module = c.text(f.module, Vec::new(), Vec::new(), f.module_regex)?;
                if symbol.is_empty() && module.is_empty() && f.kind.is_none() {
                    return Err(c.empty());
                }
                c.check_scope(f.scope, f.category)?;
                Ok(Rule {
                    category: f.category,
                    symbol,
                    module,
                    kind: f.kind,
                    scope: f.scope,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RuleSet { threads, frames })
    }

    /// The first thread rule matching `name`.
    pub(crate) fn thread_category(&self, name: &str) -> Option<Category> {
        self.threads
            .iter()
            .find(|r| r.symbol.matches(name))
            .map(|r| r.category)
    }

    /// The first frame rule (in file order) matching `frame` among rules whose
    /// category passes `filter`.
    pub(crate) fn frame_category(
        &self,
        frame: &Frame,
        filter: impl Fn(Category) -> bool,
    ) -> Option<Category> {
        self.frames
            .iter()
            .filter(|r| filter(r.category))
            .find(|r| r.matches_frame(frame))
            .map(|r| r.category)
    }

    /// The category of the first rule of `scope` matching `frame`.
    pub(crate) fn scoped_category(&self, frame: &Frame, scope: Scope) -> Option<Category> {
        self.frames
            .iter()
            .filter(|r| r.scope == scope)
            .find(|r| r.matches_frame(frame))
            .map(|r| r.category)
    }

    pub(crate) fn rule_count(&self) -> usize {
        self.threads.len() + self.frames.len()
    }
}

struct Ctx<'a> {
    file: &'a str,
    kind: &'static str,
    index: usize,
    role: FileRole,
}

impl Ctx<'_> {
    fn empty(&self) -> RulesError {
        RulesError::EmptyRule {
            file: self.file.to_string(),
            kind: self.kind,
            index: self.index,
        }
    }

    /// `Ok` when `ok`, else the error saying which categories are `allowed`.
    fn allowed(
        &self,
        ok: bool,
        category: Category,
        allowed: &'static str,
    ) -> Result<(), RulesError> {
        if ok {
            return Ok(());
        }
        Err(RulesError::CategoryNotAllowed {
            file: self.file.to_string(),
            kind: self.kind,
            index: self.index,
            category: category.as_str(),
            allowed,
        })
    }

    fn check_scope(&self, scope: Scope, category: Category) -> Result<(), RulesError> {
        let (ok, allowed) = match scope {
            Scope::Frame => (true, ""),
            Scope::Whole => (
                matches!(category, Category::Jit | Category::Gc),
                "scope = \"whole\" is for jit or gc entry points",
            ),
            Scope::Caller => (
                category == Category::App,
                "scope = \"caller\" is for app (allocation entry points)",
            ),
        };
        self.allowed(ok, category, allowed)
    }

    fn check_category(&self, category: Category) -> Result<(), RulesError> {
        let (ok, allowed) = match self.role {
            FileRole::Base => (
                matches!(category, Category::App | Category::Kernel),
                "native rules give only app or kernel",
            ),
            FileRole::Runtime => (
                category != Category::Kernel,
                "kernel frames are identified by native.toml only",
            ),
        };
        self.allowed(ok, category, allowed)
    }

    fn text(
        &self,
        exact: Vec<String>,
        prefix: Vec<String>,
        contains: Vec<String>,
        regex: Vec<String>,
    ) -> Result<TextMatcher, RulesError> {
        let regex = regex
            .into_iter()
            .map(|p| {
                Regex::new(&p).map_err(|e| RulesError::BadRegex {
                    file: self.file.to_string(),
                    kind: self.kind,
                    index: self.index,
                    pattern: p.clone(),
                    source: Box::new(e),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TextMatcher {
            exact: exact.into_iter().collect(),
            prefix,
            contains,
            regex,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, module: Option<&str>, kind: FrameKind) -> Frame {
        Frame {
            name: name.to_string(),
            module: module.map(str::to_string),
            kind,
        }
    }

    #[test]
    fn all_given_fields_must_match() {
        let rs = RuleSet::parse(
            "t.toml",
            "coreclr",
            FileRole::Runtime,
            r#"runtime = "coreclr"
               [[frame]]
               category = "gc"
               module = ["libcoreclr.so"]
               symbol_contains = ["gc_heap::"]"#,
        )
        .expect("valid rules");
        let gc = frame(
            "WKS::gc_heap::mark_phase",
            Some("libcoreclr.so"),
            FrameKind::Native,
        );
        let other_module = frame(
            "WKS::gc_heap::mark_phase",
            Some("libfoo.so"),
            FrameKind::Native,
        );
        let other_symbol = frame(
            "MethodDesc::DoPrestub",
            Some("libcoreclr.so"),
            FrameKind::Native,
        );
        assert_eq!(rs.frame_category(&gc, |_| true), Some(Category::Gc));
        assert_eq!(rs.frame_category(&other_module, |_| true), None);
        assert_eq!(rs.frame_category(&other_symbol, |_| true), None);
    }

    #[test]
    fn errors_name_the_file_and_rule() {
        let bad_regex = RuleSet::parse(
            "v8.toml",
            "v8",
            FileRole::Runtime,
            "runtime = \"v8\"\n[[frame]]\ncategory = \"gc\"\nsymbol_regex = [\"(\"]\n",
        )
        .expect_err("bad regex");
        let msg = bad_regex.to_string();
        assert!(
            msg.contains("v8.toml") && msg.contains("#1") && msg.contains("`(`"),
            "{msg}"
        );

        let empty = RuleSet::parse(
            "v8.toml",
            "v8",
            FileRole::Runtime,
            "runtime = \"v8\"\n[[thread]]\ncategory = \"gc\"\n",
        )
        .expect_err("empty rule");
        assert!(matches!(empty, RulesError::EmptyRule { index: 1, .. }));

        let kernel = RuleSet::parse(
            "v8.toml",
            "v8",
            FileRole::Runtime,
            "runtime = \"v8\"\n[[frame]]\ncategory = \"kernel\"\nkind = \"kernel\"\n",
        )
        .expect_err("kernel in a runtime file");
        assert!(matches!(kernel, RulesError::CategoryNotAllowed { .. }));

        let native_gc = RuleSet::parse(
            "native.toml",
            "native",
            FileRole::Base,
            "runtime = \"native\"\n[[frame]]\ncategory = \"gc\"\nsymbol_prefix = [\"GC_\"]\n",
        )
        .expect_err("gc in native");
        assert!(native_gc.to_string().contains("only app or kernel"));

        let typo = RuleSet::parse(
            "mono.toml",
            "mono",
            FileRole::Runtime,
            "runtime = \"mono\"\n[[frame]]\ncategory = \"gc\"\nsymbol_prefx = [\"sgen_\"]\n",
        )
        .expect_err("unknown field");
        assert!(typo.to_string().contains("symbol_prefx"), "{typo}");

        let wrong = RuleSet::parse("mono.toml", "mono", FileRole::Runtime, "runtime = \"v8\"\n")
            .expect_err("wrong runtime");
        assert!(matches!(wrong, RulesError::WrongRuntime { .. }));
    }
}
