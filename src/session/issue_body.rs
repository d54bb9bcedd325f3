//! Issue-body parser (minimal; replaced by the full parser from the gitops branch).

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReproSource {
    Line,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repro {
    Found {
        command: String,
        source: ReproSource,
    },
    Missing,
    Ambiguous(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedIssue {
    pub repro: Repro,
    pub branch: Option<String>,
}

pub fn parse_issue_body(body: &str) -> ParsedIssue {
    let value = |key: &str| {
        body.lines()
            .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_owned()))
            .filter(|v| !v.is_empty())
    };
    ParsedIssue {
        repro: value("repro:").map_or(Repro::Missing, |command| Repro::Found {
            command,
            source: ReproSource::Line,
        }),
        branch: value("branch:"),
    }
}
