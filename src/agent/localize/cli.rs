//! `patchpilot localize`: the localiser as a stand-alone triage tool, and the entry point
//! the evaluation drives (`--json`).

use std::path::PathBuf;

use anyhow::Context;

use super::{Candidate, LocalizeInput, localize};

/// Arguments of `patchpilot localize`.
#[derive(clap::Args, Debug, Clone)]
pub struct LocalizeArgs {
    /// Root of the repository's work tree.
    #[arg(long)]
    pub repo: PathBuf,
    /// File holding the bug report (title and body); `-` reads standard input.
    #[arg(long)]
    pub issue: PathBuf,
    /// File holding the failing command's output.
    #[arg(long)]
    pub failure_output: Option<PathBuf>,
    /// Print JSON (an array of {path, kind, score, reasons, lines}) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Number of files to list.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

/// Runs the command, printing to standard output.
pub fn run_cli(args: &LocalizeArgs) -> anyhow::Result<()> {
    let issue = read_input(&args.issue)?;
    let failure = args.failure_output.as_deref().map(read_input).transpose()?;
    let input = LocalizeInput {
        issue_text: &issue,
        failure_output: failure.as_deref(),
        limit: args.limit,
    };
    let found = localize(&args.repo, &input)
        .with_context(|| format!("localising in {}", args.repo.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        print!("{}", render_text(&found));
    }
    Ok(())
}

fn read_input(path: &std::path::Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        return std::io::read_to_string(std::io::stdin()).context("reading standard input");
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Plain-text listing: one numbered file per block, its reasons indented below.
pub fn render_text(found: &[Candidate]) -> String {
    if found.is_empty() {
        return "No candidate files: nothing in the text matched the repository.\n".to_owned();
    }
    let mut out = String::new();
    for (n, c) in found.iter().enumerate() {
        let lines = if c.lines.is_empty() {
            String::new()
        } else {
            format!(
                " (lines {})",
                c.lines
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        out.push_str(&format!(
            "{:>2}. {}{lines}  [{}, score {:.3}]\n",
            n + 1,
            c.path,
            c.kind,
            c.score
        ));
        for r in &c.reasons {
            out.push_str(&format!("      - {r}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rendering_lists_reasons_and_lines() {
        let c = Candidate {
            path: "src/a.rs".into(),
            kind: "implementation".into(),
            score: 3.5,
            reasons: vec!["named in the Rust panic message (line 3)".into()],
            lines: vec![3],
        };
        assert_eq!(
            render_text(&[c]),
            " 1. src/a.rs (lines 3)  [implementation, score 3.500]\n      - named in the Rust panic message (line 3)\n"
        );
        assert!(render_text(&[]).starts_with("No candidate files"));
    }
}
