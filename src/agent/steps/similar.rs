//! Step 4: related closed issues and merged PRs of the same repository (GitHub search), plus
//! Exa web results when `EXA_API_KEY` is set. Helpful context only: this step never fails a
//! session.

use crate::agent::pipeline::Progress;
use crate::agent::pipeline::progress::github_ref;
use crate::agent::prompt::SimilarFix;
use crate::github::messages::PipelineStep;
use crate::session::EventLevel;

use super::SessionContext;

const RESULTS: u8 = 5;

pub async fn run(ctx: &mut SessionContext, progress: &mut Progress) {
    progress.start(PipelineStep::SimilarFixes).await;
    let (Some(github), Some(s)) = (ctx.deps.github.clone(), github_ref(&ctx.session)) else {
        progress
            .skipped(PipelineStep::SimilarFixes, "not a GitHub session")
            .await;
        return;
    };
    let query = search_terms(&ctx.failing_output, &ctx.title);
    match github
        .search_issues(s.installation, &s.repo, &query, RESULTS)
        .await
    {
        Ok(hits) => {
            for hit in hits.into_iter().filter(|h| h.number != s.issue) {
                let files = if hit.is_pr {
                    github
                        .pull_request_files(s.installation, &s.repo, hit.number)
                        .await
                        .map(|f| f.into_iter().map(|f| f.filename).collect())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                progress
                    .log(
                        "similar_fixes",
                        EventLevel::Info,
                        &format!("{} {}", hit.title, hit.html_url),
                    )
                    .await;
                ctx.similar.push(SimilarFix {
                    title: hit.title,
                    url: hit.html_url,
                    files,
                    snippet: None,
                });
            }
        }
        Err(err) => {
            progress
                .log(
                    "similar_fixes",
                    EventLevel::Warn,
                    &format!("GitHub search failed: {err}"),
                )
                .await
        }
    }
    let message = format!("{} related issues or pull requests", ctx.similar.len());
    progress.done(PipelineStep::SimilarFixes, &message).await;
}

/// A short search query: the last error-looking line of the output, else the title.
pub fn search_terms(failing_output: &str, title: &str) -> String {
    let error_line = failing_output.lines().rev().map(str::trim).find(|l| {
        l.contains("Error")
            || l.contains("error:")
            || l.contains("panicked")
            || l.contains("Exception")
    });
    let source = error_line.unwrap_or(title);
    let words: Vec<&str> = source
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| w.len() >= 3 && !w.chars().all(|c| c.is_ascii_digit()))
        .take(8)
        .collect();
    format!("{} is:closed", words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_prefers_the_error_line() {
        let output = "collected 3 items\nFAILED tests/test_x.py::test_div\nE   ZeroDivisionError: division by zero\n";
        assert_eq!(
            search_terms(output, "Crash"),
            "ZeroDivisionError division zero is:closed"
        );
        assert_eq!(
            search_terms("all good", "Crash on empty input"),
            "Crash empty input is:closed"
        );
    }
}
