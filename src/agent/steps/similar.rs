//! Step 4: related closed issues and merged PRs of the same repository (GitHub search), plus
//! Exa web results when `EXA_API_KEY` is set. Helpful context only: this step never fails a
//! session.

use crate::agent::progress::{Progress, github_ref};
use crate::agent::prompt::SimilarFix;
use crate::report::PipelineStep;
use crate::store::EventLevel;

use super::{Prepared, Reproduced, StepEnv};

/// Closed issues, pull requests and pages about a similar failure (may be empty).
#[derive(Clone, Debug, Default)]
pub struct SimilarFixes {
    pub fixes: Vec<SimilarFix>,
}

const RESULTS: u8 = 5;

/// Never stops the session: a failed search is logged and the patch step goes on without it.
pub async fn run(
    env: &StepEnv,
    progress: &mut Progress,
    prepared: &Prepared,
    reproduced: &Reproduced,
) -> SimilarFixes {
    progress.start(PipelineStep::SimilarFixes).await;
    let terms = key_terms(&reproduced.failing_output, &prepared.title);
    let mut found = SimilarFixes::default();
    let from_github = search_github(env, progress, &terms, &mut found.fixes).await;
    let from_web = search_web(env, progress, &terms, &mut found.fixes).await;
    if !from_github && !from_web {
        progress
            .skipped(
                PipelineStep::SimilarFixes,
                "no GitHub repository and no EXA_API_KEY",
            )
            .await;
        return found;
    }
    let message = format!(
        "{} related issues, pull requests or pages",
        found.fixes.len()
    );
    progress.done(PipelineStep::SimilarFixes, &message).await;
    found
}

/// Closed issues and merged pull requests of the same repository; false when not on GitHub.
async fn search_github(
    env: &StepEnv,
    progress: &Progress,
    terms: &str,
    found: &mut Vec<SimilarFix>,
) -> bool {
    let (Some(github), Some(s)) = (env.deps.github.clone(), github_ref(&env.session)) else {
        return false;
    };
    match github
        .search_issues(s.installation, &s.repo, &github_query(terms), RESULTS)
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
                found.push(SimilarFix {
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
    true
}

/// Exa web results; false when `EXA_API_KEY` is not set.
async fn search_web(
    env: &StepEnv,
    progress: &Progress,
    terms: &str,
    found: &mut Vec<SimilarFix>,
) -> bool {
    let Some(exa) = env.deps.exa.clone() else {
        return false;
    };
    match exa
        .search(&format!("how to fix: {terms}"), usize::from(RESULTS))
        .await
    {
        Ok(results) => {
            for result in results {
                progress
                    .log(
                        "similar_fixes",
                        EventLevel::Info,
                        &format!("{} {}", result.title, result.url),
                    )
                    .await;
                found.push(SimilarFix {
                    title: result.title,
                    url: result.url,
                    files: Vec::new(),
                    snippet: Some(result.snippet),
                });
            }
        }
        Err(err) => {
            progress
                .log(
                    "similar_fixes",
                    EventLevel::Warn,
                    &format!("Exa search failed: {err}"),
                )
                .await
        }
    }
    true
}

/// The GitHub search query for similar closed issues and pull requests.
fn github_query(terms: &str) -> String {
    format!("{terms} is:closed")
}

/// A few key words: from the last error-looking line of the output, else the title.
fn key_terms(failing_output: &str, title: &str) -> String {
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
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_prefers_the_error_line() {
        let output = "collected 3 items\nFAILED tests/test_x.py::test_div\nE   ZeroDivisionError: division by zero\n";
        assert_eq!(
            github_query(&key_terms(output, "Crash")),
            "ZeroDivisionError division zero is:closed"
        );
        assert_eq!(
            github_query(&key_terms("all good", "Crash on empty input")),
            "Crash empty input is:closed"
        );
    }
}
