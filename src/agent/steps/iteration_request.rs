//! What an iteration was asked to do, read from GitHub and the branch: the feedback text, a
//! review's comments (each with its file, line and the code around it on the branch head),
//! or the annotations and log tails of the CI jobs that failed. Everything read here is
//! hostile text from GitHub users or CI logs: it goes into the prompt only, bounded.

use std::path::Path;

use crate::agent::progress::github_ref;
use crate::github::client::{CiJob, GitHub, ReviewComment};
use crate::github::reporter::SessionRef;
use crate::session::iteration::IterationRequest;

use super::{StepEnv, Stop, github_stop};

/// Lines shown above and below a review comment's line.
const CONTEXT_LINES: u64 = 4;
/// The most failing CI jobs read, and the bytes of each job's log tail kept.
const MAX_FAILED_JOBS: usize = 3;
const LOG_TAIL_BYTES: usize = 4_000;
const MAX_ANNOTATIONS: usize = 20;

/// One review comment as the reply names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedComment {
    pub author: String,
    pub path: String,
    pub line: Option<u64>,
    pub body: String,
}

/// The request, ready for the prompt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatheredRequest {
    /// Markdown sections for the prompt.
    pub text: String,
    /// Files the request points at (comment and annotation paths), for localisation.
    pub paths: Vec<String>,
    /// The review's comments, in order (empty for other requests).
    pub comments: Vec<NamedComment>,
}

pub async fn gather(env: &StepEnv, request: &IterationRequest) -> Result<GatheredRequest, Stop> {
    let (Some(github), Some(s)) = (env.deps.github.clone(), github_ref(&env.session)) else {
        return Err(Stop::failed(
            "an iteration needs the GitHub App",
            "Ask the operator to configure the GitHub App.",
        ));
    };
    match request {
        IterationRequest::Feedback { text, .. } => Ok(feedback(text)),
        IterationRequest::Review { review_id } => {
            review(github.as_ref(), &s, *review_id as u64, &env.work_dir).await
        }
        IterationRequest::CiFailure {
            head_sha,
            workflow_run_id,
            check_suite_id,
        } => {
            ci_failure(
                github.as_ref(),
                &s,
                head_sha,
                *workflow_run_id,
                *check_suite_id,
            )
            .await
        }
    }
}

fn feedback(text: &str) -> GatheredRequest {
    let text = text.trim();
    let text = if text.is_empty() {
        "A maintainer asked PatchPilot for another round on this pull request, without details: look again at the change and improve it.".to_owned()
    } else {
        format!(
            "A maintainer reviewed the pull request and asked:\n\n> {}",
            text.replace('\n', "\n> ")
        )
    };
    GatheredRequest {
        text,
        ..GatheredRequest::default()
    }
}

async fn review(
    github: &dyn GitHub,
    s: &SessionRef,
    review_id: u64,
    work_dir: &Path,
) -> Result<GatheredRequest, Stop> {
    let bot = github
        .bot_login()
        .await
        .map_err(|e| github_stop(e, "reading the App's identity"))?;
    let review = github
        .get_review(s.installation, &s.repo, s.issue, review_id)
        .await
        .map_err(|e| github_stop(e, "reading the review"))?;
    let comments: Vec<ReviewComment> = github
        .review_comments(s.installation, &s.repo, s.issue, review_id)
        .await
        .map_err(|e| github_stop(e, "reading the review's comments"))?
        .into_iter()
        .filter(|c| !c.author_is_bot && !c.author.eq_ignore_ascii_case(&bot))
        .collect();
    if comments.is_empty() && review.body.trim().is_empty() {
        return Err(Stop::failed(
            "the review has no comments for PatchPilot to address",
            "Add line comments or a review summary saying what to change.",
        ));
    }
    let mut text = format!(
        "@{} reviewed the pull request and requested changes.\n",
        review.author
    );
    if !review.body.trim().is_empty() {
        text.push_str(&format!(
            "\nReview summary:\n\n> {}\n",
            review.body.trim().replace('\n', "\n> ")
        ));
    }
    let mut named = Vec::new();
    for (i, comment) in comments.iter().enumerate() {
        let line = comment
            .line
            .map(|l| format!(" line {l}"))
            .unwrap_or_default();
        text.push_str(&format!(
            "\n## Review comment {} on `{}`{line}\n\n> {}\n",
            i + 1,
            comment.path,
            comment.body.trim().replace('\n', "\n> ")
        ));
        match comment
            .line
            .and_then(|l| code_around(work_dir, &comment.path, l))
        {
            Some(code) => text.push_str(&format!(
                "\nThe code around it on the branch:\n\n```\n{code}```\n"
            )),
            None if !comment.diff_hunk.is_empty() => text.push_str(&format!(
                "\nThe diff it was written on:\n\n```diff\n{}\n```\n",
                comment.diff_hunk.trim_end()
            )),
            None => {}
        }
        named.push(NamedComment {
            author: comment.author.clone(),
            path: comment.path.clone(),
            line: comment.line,
            body: comment.body.clone(),
        });
    }
    text.push_str("\nAddress every comment.\n");
    let mut paths: Vec<String> = comments.iter().map(|c| c.path.clone()).collect();
    paths.dedup();
    Ok(GatheredRequest {
        text,
        paths,
        comments: named,
    })
}

/// `line` and the lines around it, numbered; `None` when the file is not a regular file
/// inside the work tree.
pub fn code_around(work_dir: &Path, path: &str, line: u64) -> Option<String> {
    if path.starts_with('/') || path.split('/').any(|p| p == ".." || p == ".git") {
        return None;
    }
    let full = work_dir.join(path);
    let meta = std::fs::symlink_metadata(&full).ok()?;
    if !meta.is_file() || meta.len() > 1024 * 1024 {
        return None;
    }
    let content = std::fs::read_to_string(&full).ok()?;
    let first = line.saturating_sub(CONTEXT_LINES).max(1);
    let last = line + CONTEXT_LINES;
    let mut out = String::new();
    for (n, text) in content.lines().enumerate() {
        let n = n as u64 + 1;
        if (first..=last).contains(&n) {
            let mark = if n == line { ">" } else { " " };
            out.push_str(&format!("{mark}{n:>5} | {text}\n"));
        }
    }
    (!out.is_empty()).then_some(out)
}

async fn ci_failure(
    github: &dyn GitHub,
    s: &SessionRef,
    head_sha: &str,
    workflow_run: Option<i64>,
    check_suite: Option<i64>,
) -> Result<GatheredRequest, Stop> {
    let (inst, repo) = (s.installation, &s.repo);
    let jobs: Vec<CiJob> = match (workflow_run, check_suite) {
        (Some(run), _) => github.workflow_run_jobs(inst, repo, run as u64).await,
        (None, Some(suite)) => github.check_suite_runs(inst, repo, suite as u64).await,
        (None, None) => Ok(Vec::new()),
    }
    .map_err(|e| github_stop(e, "reading the failed CI jobs"))?;
    let failed: Vec<&CiJob> = jobs
        .iter()
        .filter(|j| matches!(j.conclusion.as_deref(), Some("failure" | "timed_out")))
        .take(MAX_FAILED_JOBS)
        .collect();
    if failed.is_empty() {
        return Err(Stop::failed(
            format!(
                "CI reported a failure on {} but no failed job could be read",
                short(head_sha)
            ),
            "Look at the CI run; comment `/patchpilot <what to fix>` on this pull request if PatchPilot should try.",
        ));
    }
    let mut text = format!(
        "CI failed on the pull request's head commit {}. Fix what makes it fail, without breaking the reproduction command.\n",
        short(head_sha)
    );
    let mut paths = Vec::new();
    for job in failed {
        text.push_str(&format!("\n## Failed CI job `{}`\n", job.name));
        let annotations = github
            .check_run_annotations(inst, repo, job.id)
            .await
            .unwrap_or_default();
        for a in annotations.iter().take(MAX_ANNOTATIONS) {
            text.push_str(&format!(
                "\n- `{}` line {} ({}): {} {}",
                a.path, a.start_line, a.level, a.title, a.message
            ));
            if !a.path.is_empty() && !paths.contains(&a.path) {
                paths.push(a.path.clone());
            }
        }
        if !annotations.is_empty() {
            text.push('\n');
        }
        if !job.summary.trim().is_empty() {
            text.push_str(&format!(
                "\nIts summary:\n\n```\n{}\n```\n",
                tail(job.summary.trim(), LOG_TAIL_BYTES)
            ));
        }
        // Workflow jobs have logs; other CI's check runs answer 404 here, which is fine.
        if workflow_run.is_some() {
            match github.job_log(inst, repo, job.id).await {
                Ok(log) => text.push_str(&format!(
                    "\nThe end of its log:\n\n```\n{}\n```\n",
                    tail(log.trim_end(), LOG_TAIL_BYTES)
                )),
                Err(err) => text.push_str(&format!("\n(Its log could not be read: {err}.)\n")),
            }
        }
    }
    Ok(GatheredRequest {
        text,
        paths,
        comments: Vec::new(),
    })
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_around_a_line_is_numbered_and_marked() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (1..=20).map(|n| format!("line {n}\n")).collect();
        std::fs::write(dir.path().join("a.py"), text).unwrap();
        let code = code_around(dir.path(), "a.py", 10).unwrap();
        assert!(code.starts_with("     6 | line 6\n"), "{code}");
        assert!(code.contains(">   10 | line 10\n"), "{code}");
        assert!(code.ends_with("    14 | line 14\n"), "{code}");
        assert_eq!(code_around(dir.path(), "../a.py", 1), None);
        assert_eq!(code_around(dir.path(), "missing.py", 1), None);
    }
}
