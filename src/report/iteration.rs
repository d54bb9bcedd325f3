//! What PatchPilot says on its own pull request when it iterates: the one reply comment per
//! round (edited in place while it works, like the progress comment), the commit message of
//! the round's commit, and the note when the CI fix-up cap is reached. The same invariants as
//! [`super::messages`]: a hidden session marker first, untrusted text defused, bounded bodies.

use std::fmt::Write as _;

use super::markdown::{
    BODY_LIMIT, FullTextAt, bound, fenced, inline_code, tail, untrusted_markdown, untrusted_plain,
};
use super::messages::public_reason;
use super::model::SessionLink;
use crate::github::markers::{reply_marker, session_marker};

/// The output tail quoted as evidence.
const EVIDENCE_TAIL: usize = 2_500;

/// What a round was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IterationAsk {
    Feedback {
        by: Option<String>,
    },
    Review {
        by: Option<String>,
        comments: Vec<CommentView>,
    },
    CiFailure {
        head_sha: String,
    },
}

/// One review comment as the reply lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentView {
    pub path: String,
    pub line: Option<u64>,
    pub body: String,
    /// The round's commit changed the comment's file.
    pub addressed: bool,
}

/// How a round ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IterationEnd {
    /// Verified and pushed on top of `previous_head`.
    Pushed {
        head_sha: String,
        previous_head: String,
        files_changed: Vec<String>,
        summary: String,
        repro_command: String,
        output_after: String,
    },
    /// Nothing pushed; the branch is still at `head_sha` when known.
    NotPushed {
        head_sha: Option<String>,
        reason: String,
        remedy: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IterationReplyView {
    pub session: SessionLink,
    pub branch: String,
    pub ask: IterationAsk,
    pub end: IterationEnd,
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn code(text: &str) -> String {
    untrusted_markdown(&inline_code(text), None)
}

/// The reply comment when a round is over.
pub fn iteration_reply(view: &IterationReplyView) -> String {
    let mut text = session_marker(&view.session.id);
    text.push('\n');
    match &view.end {
        IterationEnd::Pushed {
            head_sha,
            previous_head,
            files_changed,
            summary,
            repro_command,
            output_after,
        } => {
            let _ = writeln!(
                text,
                "### PatchPilot pushed {} to {}\n\n{}\n",
                code(short(head_sha)),
                code(&view.branch),
                asked(&view.ask)
            );
            let _ = writeln!(
                text,
                "**What changed** (a new commit on top of {}; nothing was force-pushed):\n\n{}\n",
                code(short(previous_head)),
                untrusted_markdown(summary.trim(), None)
            );
            for file in files_changed {
                let _ = writeln!(text, "- {}", code(file));
            }
            if let IterationAsk::Review { comments, .. } = &view.ask {
                text.push_str(&comment_list(comments));
            }
            let _ = writeln!(
                text,
                "\n**Evidence:** {} passes with this commit.\n\n<details><summary>Output</summary>\n\n{}\n</details>",
                code(repro_command),
                untrusted_markdown(&fenced(&tail(output_after, EVIDENCE_TAIL)), None)
            );
        }
        IterationEnd::NotPushed {
            head_sha,
            reason,
            remedy,
        } => {
            let at = head_sha
                .as_deref()
                .map(|sha| format!(" (still at {})", code(short(sha))))
                .unwrap_or_default();
            let _ = writeln!(
                text,
                "### PatchPilot did not push anything\n\n{}\n\nThe branch {} is as it was{at}.\n\n**Why:** {}\n\n**What you can do:** {}",
                asked(&view.ask),
                code(&view.branch),
                public_reason(reason),
                public_reason(remedy)
            );
        }
    }
    if let Some(url) = &view.session.url {
        let _ = write!(text, "\n[Session]({url})");
    }
    let full = match &view.session.url {
        Some(url) => FullTextAt::SessionPage(url),
        None => FullTextAt::SessionRecord(&view.session.id),
    };
    bound(&text, BODY_LIMIT, full)
}

fn asked(ask: &IterationAsk) -> String {
    let by = |by: &Option<String>| {
        by.as_deref()
            .map(|login| format!(" from @{}", untrusted_plain(login, None)))
            .unwrap_or_default()
    };
    match ask {
        IterationAsk::Feedback { by: who } => {
            format!("This round answers the feedback{}.", by(who))
        }
        IterationAsk::Review { by: who, comments } => format!(
            "This round answers the review{} ({} comment{}).",
            by(who),
            comments.len(),
            if comments.len() == 1 { "" } else { "s" }
        ),
        IterationAsk::CiFailure { head_sha } => format!(
            "This round fixes the CI failure on {} (one round per head commit).",
            code(short(head_sha))
        ),
    }
}

fn comment_list(comments: &[CommentView]) -> String {
    let mut text = String::from("\n**Review comments:**\n\n");
    for c in comments {
        let at = match c.line {
            Some(line) => format!("{} line {line}", code(&c.path)),
            None => code(&c.path),
        };
        let first = c.body.lines().next().unwrap_or_default();
        let first: String = first.chars().take(120).collect();
        let state = if c.addressed {
            "addressed"
        } else {
            "not changed by this commit"
        };
        let _ = writeln!(
            text,
            "- {at}: “{}” — {state}",
            untrusted_plain(&first, None)
        );
    }
    text
}

/// The commit message of a round's commit.
pub fn iteration_commit_message(pr: u64, ask: &IterationAsk, summary: &str) -> String {
    let subject = match ask {
        IterationAsk::Feedback { .. } => format!("Address feedback on #{pr}"),
        IterationAsk::Review { .. } => format!("Address review comments on #{pr}"),
        IterationAsk::CiFailure { .. } => format!("Fix CI failure on #{pr}"),
    };
    let body: String = summary.trim().chars().take(2_000).collect();
    format!("{subject}\n\n{body}\n\nVerified by PatchPilot before pushing.\n")
}

/// Said once on a pull request when CI failed again after the allowed fix-up rounds.
pub fn ci_cap_reply(rounds: u32) -> String {
    format!(
        "{}\nCI failed again, and PatchPilot has already made {rounds} fix-up round{} on this pull \
         request (`max_ci_fixes` in `.github/patchpilot.yml`). It will not try again by itself; \
         comment `/patchpilot <what to fix>` to ask for another round.",
        reply_marker("ci-cap"),
        if rounds == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> SessionLink {
        SessionLink {
            id: "s1".into(),
            url: Some("https://pp.example/sessions/s1".into()),
        }
    }

    #[test]
    fn a_pushed_round_names_the_commit_the_comments_and_the_evidence() {
        let view = IterationReplyView {
            session: link(),
            branch: "patchpilot/issue-1".into(),
            ask: IterationAsk::Review {
                by: Some("alice".into()),
                comments: vec![
                    CommentView {
                        path: "calc.py".into(),
                        line: Some(2),
                        body: "Use a guard clause.\nThanks".into(),
                        addressed: true,
                    },
                    CommentView {
                        path: "README.md".into(),
                        line: None,
                        body: "Mention it @bob".into(),
                        addressed: false,
                    },
                ],
            },
            end: IterationEnd::Pushed {
                head_sha: "b".repeat(40),
                previous_head: "a".repeat(40),
                files_changed: vec!["calc.py".into()],
                summary: "Guard the empty list first.".into(),
                repro_command: "pytest".into(),
                output_after: "1 passed".into(),
            },
        };
        let text = iteration_reply(&view);
        assert!(text.starts_with("<!-- patchpilot:session=s1 -->"));
        assert!(
            text.contains("PatchPilot pushed `bbbbbbbbbbbb` to `patchpilot/issue-1`"),
            "{text}"
        );
        assert!(
            text.contains("on top of `aaaaaaaaaaaa`; nothing was force-pushed"),
            "{text}"
        );
        assert!(
            text.contains("- `calc.py` line 2: “Use a guard clause.” — addressed"),
            "{text}"
        );
        assert!(
            text.contains("- `README.md`: “Mention it @\u{200b}bob” — not changed by this commit")
                || text.contains("— not changed by this commit"),
            "{text}"
        );
        assert!(text.contains("`pytest` passes with this commit"), "{text}");
        assert!(text.contains("1 passed"));
    }

    #[test]
    fn a_round_that_pushed_nothing_says_why_and_that_the_branch_is_untouched() {
        let view = IterationReplyView {
            session: link(),
            branch: "patchpilot/issue-1".into(),
            ask: IterationAsk::Feedback {
                by: Some("alice".into()),
            },
            end: IterationEnd::NotPushed {
                head_sha: Some("a".repeat(40)),
                reason: "no verified change after 2 attempts".into(),
                remedy: "Say more.".into(),
            },
        };
        let text = iteration_reply(&view);
        assert!(
            text.contains("### PatchPilot did not push anything"),
            "{text}"
        );
        assert!(
            text.contains("is as it was (still at `aaaaaaaaaaaa`)"),
            "{text}"
        );
        assert!(
            text.contains("**Why:** no verified change after 2 attempts"),
            "{text}"
        );
    }
}
