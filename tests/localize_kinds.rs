//! Localisation on synthetic multi-language repositories shaped like the misses in
//! issue 10: a Go tool whose man page, vim plugin and fish script used to outrank its
//! Go sources, and a JavaScript library whose karma config, `types/*.d.ts` and locale
//! files competed with the implementation. Each test asserts what a maintainer would see
//! at the top of the "Find the relevant code" step, kinds and reasons included.

use std::path::Path;

use patchpilot::agent::localize::{Candidate, LocalizeInput, localize};

fn write(root: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let full = root.join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, c).unwrap();
    }
}

fn run(root: &Path, issue: &str) -> Vec<Candidate> {
    localize(
        root,
        &LocalizeInput {
            issue_text: issue,
            failure_output: None,
            limit: 10,
        },
    )
    .unwrap()
}

fn top(found: &[Candidate], n: usize) -> Vec<&str> {
    found.iter().take(n).map(|c| c.path.as_str()).collect()
}

/// A Go command-line tool with the non-Go files real ones ship; the man page, plugin
/// and scripts mention every option, so plain keyword overlap favours them.
fn go_tool() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let options = "package fzf\n\nfunc parseOptions(opts *Options, args []string) error {\n\tfor i := 0; i < len(args); i++ {\n\t\tswitch args[i] {\n\t\tcase \"--height\":\n\t\t\topts.Height = args[i+1]\n\t\tcase \"--padding\":\n\t\t\topts.Padding = args[i+1]\n\t\tcase \"--tmux\":\n\t\t\topts.Tmux = true\n\t\t}\n\t}\n\tif opts.Height.adaptive && opts.Padding.percent {\n\t\treturn errors.New(\"adaptive height is not compatible with top/bottom percent padding\")\n\t}\n\treturn nil\n}\n";
    let man = ".TH fzf 1\n.SH OPTIONS\n.TP\n.B \"--height=HEIGHT\"\nadaptive height padding tmux height padding percent\n.TP\n.B \"--padding\"\npadding height tmux percent adaptive\n.B \"--tmux\"\ntmux height padding\n";
    write(
        dir.path(),
        &[
            (
                "main.go",
                "package main\n\nimport \"github.com/x/fzf/src\"\n\nfunc main() { fzf.Run() }\n",
            ),
            ("src/options.go", options),
            (
                "src/terminal.go",
                "package fzf\n\n// Terminal draws the finder.\ntype Terminal struct{ height int }\n\nfunc (t *Terminal) Loop() { t.height++ }\n",
            ),
            (
                "src/core.go",
                "package fzf\n\nfunc Run() { parseOptions(nil, nil) }\n",
            ),
            (
                "src/options_test.go",
                "package fzf\n\nfunc TestHeight(t *testing.T) { parseOptions(\"--height\", \"--padding\", \"--tmux\") }\n",
            ),
            ("man/man1/fzf.1", man),
            (
                "plugin/fzf.vim",
                "\" fzf.vim\nlet s:height = '--height'\nlet s:padding = '--padding'\n\" tmux height padding adaptive percent\n",
            ),
            (
                "shell/key-bindings.fish",
                "function fzf-file-widget\n  set -l opts --height 40% --padding 1 --tmux\n  # height padding tmux\nend\n",
            ),
            (
                "shell/key-bindings.zsh",
                "fzf-cd-widget() {\n  cd \"$dir\"\n  zle reset-prompt\n}\n# chpwd hook runs for every cd\n",
            ),
            (
                "CHANGELOG.md",
                "# Changelog\n- --height adaptive height with --padding percent and --tmux\n",
            ),
            ("LICENSE", "MIT License\nheight padding tmux\n"),
        ],
    );
    dir
}

#[test]
fn go_sources_outrank_man_page_plugin_and_scripts() {
    let dir = go_tool();
    let issue = "--height=~50% not compatible with --padding=10% even when --height is overridden by --tmux\n\n### Checklist\n- [x] I have read through the manual page (`man fzf`)\n\n```\n$ fzf --height=~50% --tmux 100%,50% --padding=10%\nadaptive height is not compatible with top/bottom percent padding\n```\n";
    let found = run(dir.path(), issue);
    assert_eq!(found[0].path, "src/options.go", "{found:#?}");
    assert_eq!(found[0].kind, "implementation");
    let why = found[0].reasons.join("\n");
    assert!(why.contains("adaptive height is not compatible"), "{why}");
    assert!(
        why.contains("implementation in Go, a main language"),
        "{why}"
    );
    // The man page, changelog and licence repeat every option but never make the top five;
    // the plugin and the fish script may follow the Go code, saying why they rank low.
    let rank = |p: &str| found.iter().position(|c| c.path == p);
    for noise in ["man/man1/fzf.1", "CHANGELOG.md", "LICENSE"] {
        let r = rank(noise);
        assert!(
            r.is_none_or(|r| r >= 5),
            "{noise} ranked {r:?}: {:?}",
            top(&found, 6)
        );
    }
    for script in ["plugin/fzf.vim", "shell/key-bindings.fish"] {
        if let Some(c) = found.iter().find(|c| c.path == script) {
            assert_eq!(c.kind, "script or completion");
            assert!(c.score < found[0].score / 2.0, "{c:?}");
            assert!(
                c.reasons
                    .iter()
                    .any(|r| r.contains("ranked below implementation")),
                "{c:?}"
            );
        }
    }
    let man = found.iter().find(|c| c.path == "man/man1/fzf.1");
    if let Some(man) = man {
        assert_eq!(man.kind, "licence or man page");
        assert!(
            man.reasons
                .iter()
                .any(|r| r.contains("ranked below implementation")),
            "{man:?}"
        );
    }
}

#[test]
fn a_shell_the_issue_names_brings_its_script_up() {
    let dir = go_tool();
    let found = run(
        dir.path(),
        "zsh cd widget calls zsh's chpwd hook functions twice\n\nIn zsh the fzf-cd-widget (alt-c) executes cd twice, so my chpwd hook runs twice.",
    );
    assert_eq!(
        found[0].path,
        "shell/key-bindings.zsh",
        "{:?}",
        top(&found, 5)
    );
    assert_eq!(found[0].kind, "script or completion");
    assert!(
        found[0]
            .reasons
            .iter()
            .any(|r| r.contains("the issue mentions zsh")),
        "{:?}",
        found[0].reasons
    );
    assert!(
        found
            .iter()
            .all(|c| c.path != "shell/key-bindings.fish" || c.score < found[0].score)
    );
}

/// A JavaScript date library: plugins in `src/plugin/<name>/index.js`, locales in
/// `src/locale/<code>.js`, declarations in `types/`, tests and a karma config.
fn js_library() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "package.json",
                "{\"name\": \"daylib\", \"scripts\": {\"test\": \"jest\"}}\n",
            ),
            (
                "karma.sauce.conf.js",
                "module.exports = function (config) {\n  // browsers: chrome firefox; plugin locale duration objectSupport null dayjs\n  config.set({ browsers: ['Chrome'], files: ['test/**/*.js'], plugins: ['karma-jasmine'] })\n}\n",
            ),
            (
                "src/index.js",
                "import { parseDate } from './utils'\n\nclass Dayjs {\n  constructor(cfg) { this.$d = parseDate(cfg) }\n  week() { return 1 }\n}\nexport default Dayjs\n",
            ),
            (
                "src/utils.js",
                "export const parseDate = (cfg) => { if (cfg === null) return new Date(NaN); return new Date(cfg) }\n",
            ),
            (
                "src/plugin/objectSupport/index.js",
                "export default (o, c, dayjs) => {\n  const isObject = obj => obj instanceof Date === false && obj.constructor.name === 'Object'\n  const parse = (cfg) => isObject(cfg.date) ? cfg.date : cfg\n}\n",
            ),
            (
                "src/plugin/duration/index.js",
                "class Duration {\n  humanize() { return this.locale }\n  toISOString() { return 'P' }\n}\n",
            ),
            (
                "src/locale/bg.js",
                "const locale = { name: 'bg', weekdays: 'неделя', ordinal: n => `${n}.` }\nexport default locale\n",
            ),
            (
                "src/locale/fr.js",
                "const locale = { name: 'fr', yearStart: 4, ordinal: n => `${n}` }\nexport default locale\n",
            ),
            (
                "src/locale/de.js",
                "const locale = { name: 'de', ordinal: n => `${n}.` }\nexport default locale\n",
            ),
            (
                "types/index.d.ts",
                "export = dayjs;\ndeclare function dayjs(date?: ConfigType): dayjs.Dayjs\ndeclare namespace dayjs { class Dayjs { week(): number } }\n",
            ),
            (
                "types/plugin/objectSupport.d.ts",
                "import { PluginFunc } from 'dayjs'\n// objectSupport plugin: object null constructor\ndeclare const plugin: PluginFunc\nexport = plugin\n",
            ),
            (
                "types/plugin/duration.d.ts",
                "declare class Duration { humanize(): string; toISOString(): string }\n",
            ),
            (
                "test/plugin/objectSupport.test.js",
                "import objectSupport from '../../src/plugin/objectSupport'\nit('null', () => { dayjs(null) })\n",
            ),
            (
                "test/locale/bg.test.js",
                "import '../../src/locale/bg'\nit('ordinal', () => {})\n",
            ),
        ],
    );
    dir
}

#[test]
fn plugin_named_in_the_issue_beats_its_type_declaration_and_the_karma_config() {
    let dir = js_library();
    let found = run(
        dir.path(),
        "objectSupport plugin causes an error when null is passed to dayjs function\n\nThere is an bug, which causes an error `Cannot read properties of null (reading 'constructor')` when null is passed to dayjs function while objectSupport plugin is enabled e.g. `dayjs(null)`",
    );
    assert_eq!(
        found[0].path,
        "src/plugin/objectSupport/index.js",
        "{:?}",
        top(&found, 5)
    );
    let rank = |p: &str| found.iter().position(|c| c.path == p).unwrap_or(99);
    assert!(rank("types/plugin/objectSupport.d.ts") > 0);
    assert!(rank("karma.sauce.conf.js") >= 3, "{:?}", top(&found, 5));
    let d_ts = found
        .iter()
        .find(|c| c.path == "types/plugin/objectSupport.d.ts");
    assert!(d_ts.is_none_or(|c| c.kind == "type declaration"));
}

#[test]
fn a_locale_named_by_language_leads_to_its_file() {
    let dir = js_library();
    let found = run(
        dir.path(),
        "Implement ordinal in Bulgarian translation\n\nCurrently, the ordinal is missing from Bulgarian translation, or more correctly, it is implemented in a wrong way.\n\nCurrent: `25.`\n\nExpected: `25-ти`",
    );
    assert_eq!(found[0].path, "src/locale/bg.js", "{:?}", top(&found, 5));
    assert!(
        found[0]
            .reasons
            .iter()
            .any(|r| r.contains("locale file for `bg`")),
        "{:?}",
        found[0].reasons
    );
    let found = run(
        dir.path(),
        "weekOfYear `week` method doesn't handle week 53 for 'fr' locale",
    );
    assert_eq!(found[0].path, "src/locale/fr.js", "{:?}", top(&found, 5));
}

#[test]
fn typescript_issues_may_rank_declarations_first() {
    let dir = js_library();
    let found = run(
        dir.path(),
        "TypeScript: Duration type is missing toISOString\n\nWith TypeScript 4 the d.ts for the duration plugin does not declare `toISOString` so tsc fails.",
    );
    let first_two = top(&found, 2);
    assert!(
        first_two.contains(&"types/plugin/duration.d.ts"),
        "{first_two:?}"
    );
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_work_tree_are_never_read() {
    let outside = tempfile::tempdir().unwrap();
    write(
        outside.path(),
        &[(
            "secret.go",
            "package x\n// adaptive height is not compatible with top/bottom percent padding\n",
        )],
    );
    let dir = go_tool();
    std::os::unix::fs::symlink(
        outside.path().join("secret.go"),
        dir.path().join("src/linked.go"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("src/linkdir")).unwrap();
    let found = run(
        dir.path(),
        "`adaptive height is not compatible with top/bottom percent padding`",
    );
    assert!(
        found
            .iter()
            .all(|c| !c.path.contains("linked") && !c.path.contains("linkdir")),
        "{:?}",
        top(&found, 10)
    );
}
