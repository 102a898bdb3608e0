//! Outcomes of checks, and the text, JSON and JUnit XML renderings of a run.

use serde_json::{Value, json};

use crate::config::Profile;

/// The request a failing check sent last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Request body, if any.
    pub body: Option<String>,
}

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The last request sent, if any.
    pub request: Option<RequestRecord>,
    /// What the check expected, in words and values.
    pub expected: String,
    /// What came back: status and body excerpt, or a specific observation.
    pub actual: String,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server behaved as expected.
    Pass,
    /// The server did not behave as expected.
    Fail(Failure),
    /// The check did not apply (the reason says why, e.g. a feature declared unsupported).
    Skip(String),
}

impl Outcome {
    /// `"pass"`, `"fail"` or `"skip"`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail(_) => "fail",
            Self::Skip(_) => "skip",
        }
    }
}

/// The result of one check in a run.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// Stable id, e.g. `filter.eq.username-case-insensitive`.
    pub id: String,
    /// Area name, e.g. `filter`.
    pub area: String,
    /// One-line title.
    pub title: String,
    /// RFC section or client behaviour the check comes from.
    pub reference: String,
    /// The profile the check belongs to.
    pub profile: Profile,
    /// What happened.
    pub outcome: Outcome,
    /// Wall time of the check, cleanup included.
    pub duration_ms: u128,
}

/// The results of a run, in the order the checks ran.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Base URL the run was pointed at.
    pub base_url: String,
    /// Run id used as the prefix of every created name.
    pub run_id: String,
    /// One entry per check that ran.
    pub results: Vec<CheckResult>,
}

/// Cuts `s` to at most `max` characters, marking the cut.
pub fn excerpt(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push_str("...");
        out
    }
}

impl Report {
    /// Number of passed checks.
    pub fn passed(&self) -> usize {
        self.count("pass")
    }
    /// Number of failed checks.
    pub fn failed(&self) -> usize {
        self.count("fail")
    }
    /// Number of skipped checks.
    pub fn skipped(&self) -> usize {
        self.count("skip")
    }
    fn count(&self, label: &str) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome.label() == label)
            .count()
    }

    /// Whether the run had no failure.
    pub fn success(&self) -> bool {
        self.failed() == 0
    }

    /// The result of the check `id`, if it ran.
    pub fn get(&self, id: &str) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.id == id)
    }

    /// `N passed, M failed` with `, K skipped` when any were skipped.
    pub fn summary_line(&self) -> String {
        let mut s = format!("{} passed, {} failed", self.passed(), self.failed());
        if self.skipped() > 0 {
            s.push_str(&format!(", {} skipped", self.skipped()));
        }
        s
    }

    /// Renders the full text report: one block per check, then the summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for r in &self.results {
            out.push_str(&format_result(r));
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    /// Renders the report as a JSON document.
    pub fn to_json(&self) -> Value {
        let results: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                let mut v = json!({
                    "id": r.id, "area": r.area, "title": r.title, "reference": r.reference,
                    "profile": r.profile.name(), "outcome": r.outcome.label(),
                    "duration_ms": r.duration_ms as u64,
                });
                match &r.outcome {
                    Outcome::Pass => {}
                    Outcome::Skip(reason) => v["reason"] = json!(reason),
                    Outcome::Fail(f) => {
                        v["expected"] = json!(f.expected);
                        v["actual"] = json!(f.actual);
                        if let Some(req) = &f.request {
                            v["request"] =
                                json!({"method": req.method, "url": req.url, "body": req.body});
                        }
                    }
                }
                v
            })
            .collect();
        json!({
            "base_url": self.base_url,
            "run_id": self.run_id,
            "summary": {"passed": self.passed(), "failed": self.failed(), "skipped": self.skipped()},
            "results": results,
        })
    }

    /// Renders the report as JUnit XML (one `testcase` per check, classname = area).
    pub fn to_junit(&self) -> String {
        let total_ms: u128 = self.results.iter().map(|r| r.duration_ms).sum();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!(
            "<testsuites name=\"scim-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n",
            self.results.len(),
            self.failed(),
            self.skipped(),
            total_ms as f64 / 1000.0
        ));
        out.push_str(&format!(
            "  <testsuite name=\"scim-conformance\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">\n",
            self.results.len(),
            self.failed(),
            self.skipped(),
            total_ms as f64 / 1000.0
        ));
        for r in &self.results {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
                xml_escape(&r.area),
                xml_escape(&format!("{} - {} ({})", r.id, r.title, r.reference)),
                r.duration_ms as f64 / 1000.0
            ));
            match &r.outcome {
                Outcome::Pass => {}
                Outcome::Skip(reason) => {
                    out.push_str(&format!("<skipped message=\"{}\"/>", xml_escape(reason)));
                }
                Outcome::Fail(f) => {
                    out.push_str(&format!(
                        "<failure message=\"{}\">{}</failure>",
                        xml_escape(&f.expected),
                        xml_escape(&failure_details(f))
                    ));
                }
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 forbids.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn failure_details(f: &Failure) -> String {
    let mut s = String::new();
    if let Some(req) = &f.request {
        s.push_str(&format!("request: {} {}", req.method, req.url));
        if let Some(b) = &req.body {
            s.push(' ');
            s.push_str(&excerpt(b, 600));
        }
        s.push('\n');
    }
    s.push_str(&format!(
        "expected: {}\nactual:   {}\n",
        f.expected, f.actual
    ));
    s
}

/// Formats one result as printed during a run: `PASS id  title (reference)`, and for a
/// failure the request, the expectation and what came back on indented lines.
pub fn format_result(r: &CheckResult) -> String {
    let tag = match r.outcome {
        Outcome::Pass => "PASS",
        Outcome::Fail(_) => "FAIL",
        Outcome::Skip(_) => "SKIP",
    };
    let mut s = format!("{tag} {:<48} {} ({})", r.id, r.title, r.reference);
    match &r.outcome {
        Outcome::Pass => {}
        Outcome::Skip(reason) => s.push_str(&format!(" [skipped: {reason}]")),
        Outcome::Fail(f) => {
            s.push('\n');
            for line in failure_details(f).lines() {
                s.push_str("     ");
                s.push_str(line);
                s.push('\n');
            }
            s.pop();
        }
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, outcome: Outcome) -> CheckResult {
        CheckResult {
            id: id.into(),
            area: "users".into(),
            title: "t <1>".into(),
            reference: "RFC 7644 §3.3".into(),
            profile: Profile::Rfc,
            outcome,
            duration_ms: 5,
        }
    }

    fn failure() -> Outcome {
        Outcome::Fail(Failure {
            request: Some(RequestRecord {
                method: "PATCH".into(),
                url: "http://h/Groups/1".into(),
                body: Some("{\"a\":\"<&>\"}".into()),
            }),
            expected: "204 or 200".into(),
            actual: "400 {\"detail\":\"x\"}".into(),
        })
    }

    #[test]
    fn summary_line_without_skips() {
        let r = Report {
            results: vec![result("a", Outcome::Pass), result("b", failure())],
            ..Default::default()
        };
        assert_eq!(r.summary_line(), "1 passed, 1 failed");
        assert!(!r.success());
        assert!(r.to_text().ends_with("1 passed, 1 failed\n"));
    }

    #[test]
    fn summary_line_with_skips() {
        let r = Report {
            results: vec![
                result("a", Outcome::Pass),
                result("b", Outcome::Skip("no bulk".into())),
            ],
            ..Default::default()
        };
        assert_eq!(r.summary_line(), "1 passed, 0 failed, 1 skipped");
        assert!(r.success());
    }

    #[test]
    fn failure_block_shows_request_expected_actual() {
        let text = format_result(&result("groups.x", failure()));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("FAIL groups.x"));
        assert!(lines[1].starts_with("     request: PATCH http://h/Groups/1 {"));
        assert_eq!(lines[2], "     expected: 204 or 200");
        assert_eq!(lines[3], "     actual:   400 {\"detail\":\"x\"}");
    }

    #[test]
    fn junit_escapes_markup() {
        let r = Report {
            results: vec![
                result("a", failure()),
                result("b", Outcome::Skip("x\"y".into())),
            ],
            ..Default::default()
        };
        let xml = r.to_junit();
        assert!(xml.contains("t &lt;1&gt;"));
        assert!(xml.contains("{&quot;a&quot;:&quot;&lt;&amp;&gt;&quot;}"));
        assert!(xml.contains("<skipped message=\"x&quot;y\"/>"));
        assert!(xml.contains("failures=\"1\""));
        assert!(!xml.contains("<&>"));
        assert_eq!(xml_escape("a\u{1}b'"), "a\u{FFFD}b&apos;");
    }

    #[test]
    fn json_has_outcomes_and_summary() {
        let r = Report {
            results: vec![result("a", Outcome::Pass), result("b", failure())],
            ..Default::default()
        };
        let j = r.to_json();
        assert_eq!(j["summary"]["failed"], 1);
        assert_eq!(j["results"][1]["outcome"], "fail");
        assert_eq!(j["results"][1]["request"]["method"], "PATCH");
    }

    #[test]
    fn excerpt_cuts_on_char_boundaries() {
        assert_eq!(excerpt("ééééé", 3), "ééé...");
        assert_eq!(excerpt(" ab ", 3), "ab");
    }
}
