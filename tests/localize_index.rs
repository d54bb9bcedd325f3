//! The persistent localisation index: reuse on an unchanged commit, one index per commit,
//! rebuilt when damaged, never read through a symlink, and the same ranking as a full scan.

use std::path::Path;

use patchpilot::agent::localize::{
    Candidate, IndexCache, IndexUse, LocalizeInput, localize, localize_cached,
    localize_deferring_index,
};

const COMMIT_A: &str = "0123456789abcdef0123456789abcdef01234567";
const COMMIT_B: &str = "89abcdef0123456789abcdef0123456789abcdef";

fn write(root: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let full = root.join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, c).unwrap();
    }
}

/// A small Go CLI with a man page, a completion script and a test that all mention the
/// flag and the message of the issue.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (".gitignore", "dist/\n"),
            ("go.mod", "module example.com/fz\n"),
            (
                "src/options.go",
                "package fz\n\nfunc parseOptions(args []string) {\n\tcase \"--height\":\n\t\tif h < 0 {\n\t\t\terrorExit(\"height must be positive\")\n\t\t}\n}\n",
            ),
            (
                "src/terminal.go",
                "package fz\n\ntype Terminal struct{}\n\nfunc (t *Terminal) renderPreviewWindow() {\n\t// preview window height\n}\n",
            ),
            (
                "src/util.go",
                "package fz\n\nfunc errorExit(msg string) {}\n",
            ),
            (
                "src/options_test.go",
                "package fz\n\nfunc TestHeight(t *testing.T) { parseOptions([]string{\"--height\", \"-1\"}) }\n",
            ),
            (
                "man/man1/fz.1",
                ".TP\n.B --height\nheight must be positive, preview window\n",
            ),
            (
                "shell/completion.bash",
                "complete -W '--height --preview' fz\n",
            ),
            (
                "dist/bundle.go",
                "func parseOptions() {} // height must be positive\n",
            ),
            (
                "README.md",
                "# fz\nUse --height for the preview window height.\n",
            ),
        ],
    );
    dir
}

const ISSUE: &str = "`--height=-5` prints \"height must be positive\" even for percentages\n\nRunning `fz --height=-50%` fails in parseOptions; the preview window is fine.";

fn input() -> LocalizeInput<'static> {
    LocalizeInput {
        issue_text: ISSUE,
        failure_output: Some("height must be positive\nexit status 2\n"),
        limit: 10,
    }
}

fn paths(found: &[Candidate]) -> Vec<&str> {
    found.iter().map(|c| c.path.as_str()).collect()
}

fn index_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".idx"))
        .collect();
    names.sort();
    names
}

#[test]
fn second_localisation_reuses_the_index_and_reads_only_candidate_files() {
    let tree = repo();
    let store = tempfile::tempdir().unwrap();
    let cache = IndexCache::new(store.path().join("repo.localize"));
    let direct = localize(tree.path(), &input()).unwrap();
    assert_eq!(direct[0].path, "src/options.go", "{direct:#?}");

    let first = localize_cached(tree.path(), &input(), &cache, COMMIT_A).unwrap();
    assert_eq!(first.index, IndexUse::Built);
    assert_eq!(first.candidates, direct);
    assert!(first.files_read >= 10, "{}", first.files_read);
    let idx = cache.dir().join(format!("{COMMIT_A}.idx"));
    assert!(idx.is_file());

    let second = localize_cached(tree.path(), &input(), &cache, COMMIT_A).unwrap();
    assert_eq!(second.index, IndexUse::Reused);
    assert_eq!(second.candidates, direct);
    // Only files that may hold the quoted message, the flag or a named definition are
    // read again (options.go and its test, terminal.go, the man page, the completion and
    // the README mention `height`): not go.mod, util.go or .gitignore.
    assert!(
        second.files_read > 0 && second.files_read < first.files_read,
        "{} of {}",
        second.files_read,
        first.files_read
    );
    assert!(second.files_read <= 6, "{}", second.files_read);
}

#[test]
fn a_changed_work_tree_is_honoured_on_reuse() {
    let tree = repo();
    let store = tempfile::tempdir().unwrap();
    let cache = IndexCache::new(store.path().join("r"));
    localize_cached(tree.path(), &input(), &cache, COMMIT_A).unwrap();
    // What the reproduction step may leave behind: a new file, a deleted one, an edit.
    write(
        tree.path(),
        &[
            (
                "src/height.go",
                "package fz\n\n// height must be positive: percentages\nfunc checkHeight(h int) { errorExit(\"height must be positive\") }\n",
            ),
            (
                "src/util.go",
                "package fz\n\nfunc errorExit(msg string, code int) {}\n",
            ),
        ],
    );
    std::fs::remove_file(tree.path().join("src/options.go")).unwrap();
    let reused = localize_cached(tree.path(), &input(), &cache, COMMIT_A).unwrap();
    assert_eq!(reused.index, IndexUse::Reused);
    let direct = localize(tree.path(), &input()).unwrap();
    assert_eq!(reused.candidates, direct);
    assert_eq!(direct[0].path, "src/height.go");
    assert!(!paths(&reused.candidates).contains(&"src/options.go"));
}

#[test]
fn each_commit_has_its_own_index_and_old_ones_are_evicted() {
    let tree = repo();
    let store = tempfile::tempdir().unwrap();
    let cache = IndexCache::new(store.path().join("r")).with_keep(2);
    let a = localize_cached(tree.path(), &input(), &cache, COMMIT_A).unwrap();
    assert_eq!(a.index, IndexUse::Built);
    // Another commit: the tree differs, and the index of A must not be used for it.
    write(
        tree.path(),
        &[("src/new.go", "package fz\n\nfunc percentHeight() {}\n")],
    );
    let b = localize_cached(tree.path(), &input(), &cache, COMMIT_B).unwrap();
    assert_eq!(b.index, IndexUse::Built);
    assert_eq!(
        index_files(cache.dir()),
        [format!("{COMMIT_A}.idx"), format!("{COMMIT_B}.idx")]
    );
    let c = "fedcba9876543210fedcba9876543210fedcba98";
    localize_cached(tree.path(), &input(), &cache, c).unwrap();
    let left = index_files(cache.dir());
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&format!("{c}.idx")), "{left:?}");
}

#[test]
fn a_damaged_index_is_rebuilt_not_trusted() {
    let tree = repo();
    let store = tempfile::tempdir().unwrap();
    let cache = IndexCache::new(store.path().join("r"));
    let direct = localize(tree.path(), &input()).unwrap();
    localize_cached(tree.path(), &input(), &cache, COMMIT_A).unwrap();
    let idx = cache.dir().join(format!("{COMMIT_A}.idx"));
    let good = std::fs::read(&idx).unwrap();

    let damage: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("garbage", b"not an index at all".repeat(10)),
        ("flipped", {
            let mut b = good.clone();
            let n = b.len() - 3;
            b[n] ^= 0x40;
            b
        }),
    ];
    for (what, bytes) in damage {
        std::fs::write(&idx, &bytes).unwrap();
        let run = localize_cached(tree.path(), &input(), &cache, COMMIT_A).unwrap();
        assert!(
            matches!(run.index, IndexUse::Rebuilt(_)),
            "{what}: {:?}",
            run.index
        );
        assert_eq!(run.candidates, direct, "{what}");
        assert_eq!(std::fs::read(&idx).unwrap(), good, "{what}: not rewritten");
        let again = localize_cached(tree.path(), &input(), &cache, COMMIT_A).unwrap();
        assert_eq!(again.index, IndexUse::Reused, "{what}");
    }
}

#[test]
fn symlinked_index_file_is_not_followed_and_is_replaced() {
    let tree = repo();
    let store = tempfile::tempdir().unwrap();
    let cache = IndexCache::new(store.path().join("r"));
    // A valid index elsewhere, linked in: still refused, because it is a link.
    let other = tempfile::tempdir().unwrap();
    let other_cache = IndexCache::new(other.path().join("r"));
    localize_cached(tree.path(), &input(), &other_cache, COMMIT_A).unwrap();
    let target = other_cache.dir().join(format!("{COMMIT_A}.idx"));
    let target_bytes = std::fs::read(&target).unwrap();
    std::fs::create_dir_all(cache.dir()).unwrap();
    let link = cache.dir().join(format!("{COMMIT_A}.idx"));
    std::os::unix::fs::symlink(&target, &link).unwrap();

    let run = localize_cached(tree.path(), &input(), &cache, COMMIT_A).unwrap();
    assert_eq!(
        run.index,
        IndexUse::Rebuilt("the index path is a symlink".into())
    );
    assert!(
        !std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read(&target).unwrap(),
        target_bytes,
        "link target changed"
    );
}

#[test]
fn symlinked_index_directory_disables_the_index() {
    let tree = repo();
    let store = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = store.path().join("r");
    std::os::unix::fs::symlink(elsewhere.path(), &dir).unwrap();
    let run = localize_cached(tree.path(), &input(), &IndexCache::new(dir), COMMIT_A).unwrap();
    assert!(
        matches!(&run.index, IndexUse::Unavailable(why) if why.contains("symlink")),
        "{:?}",
        run.index
    );
    assert_eq!(run.candidates, localize(tree.path(), &input()).unwrap());
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[test]
fn a_commit_id_that_is_not_hex_is_refused() {
    let tree = repo();
    let store = tempfile::tempdir().unwrap();
    let cache = IndexCache::new(store.path().join("r"));
    let run = localize_cached(tree.path(), &input(), &cache, "../../etc/passwd").unwrap();
    assert!(
        matches!(run.index, IndexUse::Unavailable(_)),
        "{:?}",
        run.index
    );
    assert!(index_files(cache.dir()).is_empty());
}

#[test]
fn the_pipeline_answers_from_a_scan_and_builds_the_index_afterwards() {
    let tree = repo();
    let store = tempfile::tempdir().unwrap();
    let cache = IndexCache::new(store.path().join("repo.localize"));
    let direct = localize(tree.path(), &input()).unwrap();

    let (first, pending) =
        localize_deferring_index(tree.path(), &input(), &cache, COMMIT_A).unwrap();
    assert_eq!(first.index, IndexUse::Deferred);
    assert_eq!(first.candidates, direct);
    assert!(
        index_files(cache.dir()).is_empty(),
        "nothing is stored before the build"
    );
    let pending = pending.expect("no index yet, so one is handed back");
    assert_eq!(pending.build(), IndexUse::Built);
    assert_eq!(index_files(cache.dir()), vec![format!("{COMMIT_A}.idx")]);

    let (again, pending) =
        localize_deferring_index(tree.path(), &input(), &cache, COMMIT_A).unwrap();
    assert_eq!(again.index, IndexUse::Reused);
    assert_eq!(again.candidates, direct);
    assert!(pending.is_none(), "a valid index is not built again");
}

#[test]
fn a_damaged_index_is_handed_back_for_rebuilding() {
    let tree = repo();
    let store = tempfile::tempdir().unwrap();
    let cache = IndexCache::new(store.path().join("repo.localize"));
    localize_cached(tree.path(), &input(), &cache, COMMIT_A).unwrap();
    let idx = cache.dir().join(format!("{COMMIT_A}.idx"));
    std::fs::write(&idx, b"not an index").unwrap();

    let (found, pending) =
        localize_deferring_index(tree.path(), &input(), &cache, COMMIT_A).unwrap();
    assert_eq!(found.index, IndexUse::Deferred);
    assert_eq!(found.candidates, localize(tree.path(), &input()).unwrap());
    assert!(matches!(pending.unwrap().build(), IndexUse::Rebuilt(_)));
    let (reused, _) = localize_deferring_index(tree.path(), &input(), &cache, COMMIT_A).unwrap();
    assert_eq!(reused.index, IndexUse::Reused);
}
