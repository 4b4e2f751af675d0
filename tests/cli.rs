//! The command line end to end, on the fixture stack program as a real process.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/terminal.rs"]
mod terminal;

use std::time::Duration;

use fixture::{Fixture, text};
use terminal::{CTRL_C, Terminal};

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn plan_apply_and_detailed_exit_codes() {
    let f = Fixture::new();
    let out = f.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Plan: 5 to create, 0 to update, 0 to replace, 0 to delete."),
        "{stdout}"
    );
    assert!(stdout.contains("copies/"), "grouped by component: {stdout}");
    assert!(!f.snapshot_path().exists(), "plan writes no state");

    // Without --yes and without a terminal, apply refuses and changes nothing.
    let out = f.run(&["apply"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("pass --yes"), "{}", text(&out.stderr));
    assert!(!f.path("files/a").exists());

    let stdout = ok(&f.run(&["apply", "--yes"]));
    assert!(stdout.contains("Apply complete: 5 operations done"), "{stdout}");
    assert!(stdout.contains("token = (sensitive value)"), "{stdout}");
    assert_eq!(f.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0));
    let secret = std::fs::read_to_string(f.path("files/secret")).unwrap();
    assert_eq!(secret.len(), 16);
    let raw_state = std::fs::read_to_string(f.snapshot_path()).unwrap();
    assert!(!raw_state.contains(&secret), "the password is encrypted in state");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(f.snapshot_path()).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // JSON plan, secrets redacted.
    let out = f.run_with(&["plan", "--json"], &[("SPAR_FIXTURE_EXTRA", "1")]);
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["summary"]["create"], 1);
    assert!(!out.stdout.windows(secret.len()).any(|w| w == secret.as_bytes()));

    // Outputs.
    assert_eq!(ok(&f.run(&["output", "token"])).trim(), "(sensitive value)");
    assert_eq!(ok(&f.run(&["output", "token", "--show-secrets"])).trim(), secret);

    // Destroy empties the stack and removes the files.
    let stdout = ok(&f.run(&["destroy", "--yes"]));
    assert!(stdout.contains("Destroy complete"), "{stdout}");
    assert!(!f.path("files/a").exists());
    assert_eq!(ok(&f.run(&["state", "list"])).trim(), "");
}

#[test]
fn a_saved_plan_is_applied_exactly_or_refused_when_stale() {
    let f = Fixture::new();
    let planfile = f.path("plan.json");
    ok(&f.run(&["plan", "--out", planfile.to_str().unwrap()]));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&planfile).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "a plan file is the owner's alone");
    let saved = std::fs::read_to_string(&planfile).unwrap();
    ok(&f.run(&["apply", planfile.to_str().unwrap()]));
    assert!(f.path("files/copy-1").exists());
    // The plan was made against the empty state: applying it again is refused.
    let out = f.run(&["apply", planfile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is stale: the state changed"),
        "{}",
        text(&out.stderr)
    );
    // A plan for another program is refused too.
    ok(&f.run_with(
        &["plan", "--out", planfile.to_str().unwrap()],
        &[("SPAR_FIXTURE_EXTRA", "1")],
    ));
    let out = f.run(&["apply", planfile.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("desired graph changed"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !saved.contains("\"result\": \""),
        "the plan file holds no plain secrets"
    );
}

#[test]
fn drift_in_a_local_file_shows_and_is_repaired() {
    let f = Fixture::new();
    ok(&f.run(&["apply", "--yes"]));
    std::fs::write(f.path("files/a"), "edited by hand\n").unwrap();
    assert_eq!(
        f.run(&["plan", "--detailed-exitcode"]).status.code(),
        Some(0),
        "no refresh, no drift seen"
    );
    let out = f.run(&["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).contains("content: \"edited by hand\\n\" -> \"a\\n\""),
        "{}",
        text(&out.stdout)
    );
    let stdout = ok(&f.run(&["refresh"]));
    assert!(
        stdout.contains("~ a drifted") && stdout.contains("1 drifted"),
        "{stdout}"
    );
    ok(&f.run(&["apply", "--yes"]));
    assert_eq!(std::fs::read_to_string(f.path("files/a")).unwrap(), "a\n");

    // A mode changed by hand is drift too, and apply puts it back.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(f.path("files/secret"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = f.run(&["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("mode: 0644 -> 0600"),
        "in octal: {}",
        text(&out.stdout)
    );
    let stdout = ok(&f.run(&["refresh"]));
    assert!(stdout.contains("mode: 0600 -> 0644"), "in octal: {stdout}");
    ok(&f.run(&["apply", "--refresh", "--yes"]));
    let mode = std::fs::metadata(f.path("files/secret")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn state_commands_graph_and_import() {
    let f = Fixture::new();
    ok(&f.run(&["apply", "--yes"]));
    let list = ok(&f.run(&["state", "list"]));
    assert!(list.contains("copies/copy-0\tlocal:File"), "{list}");
    let show = ok(&f.run(&["state", "show", "token"]));
    assert!(show.contains("(sensitive value)"), "{show}");
    ok(&f.run(&["state", "mv", "a", "renamed"]));
    assert!(ok(&f.run(&["state", "list"])).contains("renamed"));
    ok(&f.run(&["state", "mv", "renamed", "a"]));
    ok(&f.run(&["state", "rm", "copies"]));
    assert!(!ok(&f.run(&["state", "list"])).contains("copies/"));
    // Import the files back rather than recreating them.
    for i in 0..2 {
        let path = f.path(&format!("files/copy-{i}"));
        ok(&f.run(&[
            "import",
            "local:File",
            &format!("copies/copy-{i}"),
            path.to_str().unwrap(),
        ]));
    }
    assert_eq!(f.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0));
    let history = ok(&f.run(&["state", "history"]));
    assert!(history.lines().count() >= 5, "{history}");
    let dot = ok(&f.run(&["graph"]));
    assert!(
        dot.starts_with("digraph spar") && dot.contains("cluster_") && dot.contains("->"),
        "{dot}"
    );
    let mermaid = ok(&f.run(&["graph", "--format", "mermaid"]));
    assert!(
        mermaid.starts_with("flowchart LR") && mermaid.contains("subgraph") && mermaid.contains("-->"),
        "{mermaid}"
    );
}

#[test]
fn a_held_lock_is_named_and_can_be_broken() {
    let f = Fixture::new();
    ok(&f.run(&["apply", "--yes"]));
    std::fs::write(
        f.path("state/lock.json"),
        r#"{"id":"x","holder":"ci@runner-7","pid":4242,"operation":"apply","created":"2026-11-27T10:00:00Z"}"#,
    )
    .unwrap();
    let out = f.run(&["apply", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("locked by ci@runner-7 (pid 4242, `apply`"), "{stderr}");
    assert!(stderr.contains("spar state unlock"), "{stderr}");
    assert!(ok(&f.run(&["state", "unlock"])).contains("ci@runner-7"));
    ok(&f.run(&["apply", "--yes"]));
}

/// SIGKILL at random points of an apply; each next apply converges with every resource
/// recorded once and no plan left.
#[test]
fn a_killed_apply_converges_on_the_next_run() {
    let f = Fixture::new();
    std::fs::write(
        f.path("cfg/dev.toml"),
        format!("dir = \"{}\"\ncopies = 150\n", f.path("files").display()),
    )
    .unwrap();
    // Alternate killed applies and destroys, so every round has work to be cut short.
    let delays = [15u64, 40, 80, 120, 200, 30, 60];
    let mut landed = 0;
    for (round, delay) in delays.iter().enumerate() {
        let command = if round % 2 == 0 { "apply" } else { "destroy" };
        let mut child = f.command(&[command, "--yes", "--parallelism", "4"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(*delay));
        let _ = child.kill();
        let _ = child.wait();
        // A journal left behind means the kill landed mid-run, between provider calls.
        if f.path("state/journal.jsonl").exists() {
            landed += 1;
        }
        // The killed run leaves its lock; a person would check and break it.
        if f.path("state/lock.json").exists() {
            ok(&f.run(&["state", "unlock"]));
        }
    }
    assert!(landed >= 1, "none of the {} kills landed mid-run", delays.len());
    ok(&f.run(&["apply", "--yes"]));
    assert_eq!(f.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0));
    let list = ok(&f.run(&["state", "list"]));
    assert_eq!(list.lines().count(), 153, "{list}");
    for i in 0..150 {
        assert!(f.path(&format!("files/copy-{i}")).exists());
    }
    assert!(!f.path("state/journal.jsonl").exists());

    // Kill a destroy too, then finish it.
    let mut child = f.command(&["destroy", "--yes", "--parallelism", "4"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(60));
    let _ = child.kill();
    let _ = child.wait();
    if f.path("state/lock.json").exists() {
        ok(&f.run(&["state", "unlock"]));
    }
    ok(&f.run(&["destroy", "--yes"]));
    assert_eq!(ok(&f.run(&["state", "list"])).trim(), "");
    let left: Vec<_> = std::fs::read_dir(f.path("files")).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Ctrl-C (SIGINT) during apply: no new operation starts, those in flight are recorded, the
/// exit code is 130, and the next apply finishes the job.
#[test]
fn ctrl_c_stops_scheduling_records_and_exits_130() {
    let f = Fixture::new();
    std::fs::write(
        f.path("cfg/dev.toml"),
        format!("dir = \"{}\"\ncopies = 3000\n", f.path("files").display()),
    )
    .unwrap();
    let mut child = f.command(&["apply", "--yes", "--parallelism", "1"]).spawn().unwrap();
    // Wait until the apply is under way (its journal exists), then interrupt it.
    let started = std::time::Instant::now();
    while !f.path("state/journal.jsonl").exists() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted apply exits 130");
    assert!(!f.path("state/lock.json").exists(), "the lock is released");
    let list = ok(&f.run(&["state", "list"]));
    let recorded = list.lines().count();
    assert!(
        recorded > 0 && recorded < 3003,
        "some but not all were applied: {recorded}"
    );
    let recorded_files = list.lines().filter(|l| l.contains("\tlocal:File\t")).count();
    let made = std::fs::read_dir(f.path("files")).unwrap().count();
    assert_eq!(made, recorded_files, "every file made is recorded, and nothing else");
    ok(&f.run(&["apply", "--yes"]));
    assert_eq!(ok(&f.run(&["state", "list"])).lines().count(), 3003);
    assert_eq!(f.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0));
}

#[test]
fn the_secret_key_comes_from_a_private_key_file_or_the_environment() {
    use std::os::unix::fs::PermissionsExt as _;
    // First use makes a key file only the owner can read.
    let f = Fixture::new();
    ok(&f.run(&["apply", "--yes"]));
    let key_file = f.path("state.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", key_file.display());

    // SPAR_SECRET_KEY instead: no key file, the same key opens the state, another cannot.
    let f = Fixture::new();
    let key = [("SPAR_SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")];
    ok(&f.run_with(&["apply", "--yes"], &key));
    assert!(!f.path("state.key").exists(), "an environment key writes no key file");
    let plan = ok(&f.run_with(&["plan"], &key));
    assert!(plan.contains("No changes"), "{plan}");
    let before = std::fs::read(f.snapshot_path()).unwrap();
    let other = [("SPAR_SECRET_KEY", "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=")];
    let out = f.run_with(&["plan"], &other);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("SPAR_SECRET_KEY"),
        "the error names where the key came from: {err}"
    );
    let out = f.run_with(&["plan"], &[("SPAR_SECRET_KEY", "not base64!")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("SPAR_SECRET_KEY"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(f.snapshot_path()).unwrap(), before, "nothing was changed");
}

const APPLY_PROMPT: &str = "Apply these changes? Only 'yes' will be accepted:";
const DESTROY_PROMPT: &str = "Destroy these changes? Only 'yes' will be accepted:";

/// Every file under the state directory and the files directory, with its bytes, and the
/// key file: what a run that changes nothing must leave exactly as it was.
fn everything(f: &Fixture) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    for d in ["state", "files"] {
        walk(&f.path(d), f.dir.path(), &mut out);
    }
    if let Ok(key) = std::fs::read(f.path("state.key")) {
        out.push(("state.key".into(), key));
    }
    out.sort();
    out
}

fn names(files: &[(String, Vec<u8>)]) -> Vec<&str> {
    files.iter().map(|(n, _)| n.as_str()).collect()
}

/// Runs `args` on a terminal, waits for `prompt`, types `keys`: the exit status and screen.
fn at_the_prompt(f: &Fixture, args: &[&str], env: &[(&str, &str)], prompt: &str, keys: &[u8]) -> (Option<i32>, String) {
    let mut command = f.command(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut term = Terminal::spawn(command);
    term.wait_for(prompt);
    term.type_keys(keys);
    let (status, screen) = term.finish();
    (status.code(), screen)
}

/// Ctrl-C typed at the confirmation prompt (the ^C key on a real terminal, which the line
/// discipline turns into SIGINT): exit 130 with the message, every state file and managed
/// file byte for byte as before, and the lock released, so the next apply runs at once.
/// Apply on a new stack and on one with state, and destroy, which shares the prompt.
#[test]
fn ctrl_c_at_the_prompt_changes_nothing_and_exits_130() {
    let f = Fixture::new();
    let interrupted = |args: &[&str], env: &[(&str, &str)], prompt: &str| {
        let before = everything(&f);
        let (code, screen) = at_the_prompt(&f, args, env, prompt, CTRL_C);
        assert_eq!(code, Some(130), "{args:?}: {screen}");
        assert!(
            screen.contains("interrupted: nothing was changed."),
            "{args:?}: {screen}"
        );
        assert!(!screen.contains("operations done"), "{args:?}: nothing ran: {screen}");
        let after = everything(&f);
        assert_eq!(names(&after), names(&before), "{args:?}: the same files");
        assert!(after == before, "{args:?}: every file byte for byte as before");
        assert!(!f.path("state/lock.json").exists(), "{args:?}: the lock is released");
    };

    // A new stack: nothing is created, not even state. (Its secrets key file is made on
    // first use, by a plan too; made here first, it must stay as it is.)
    ok(&f.run(&["plan"]));
    interrupted(&["apply"], &[], APPLY_PROMPT);
    assert!(!f.snapshot_path().exists());
    assert!(!f.path("files/a").exists());
    let stdout = ok(&f.run(&["apply", "--yes"]));
    assert!(stdout.contains("Apply complete: 5 operations done"), "{stdout}");

    // A stack with state and one resource to add: the state and the files stay as they are.
    let extra = [("SPAR_FIXTURE_EXTRA", "1")];
    interrupted(&["apply"], &extra, APPLY_PROMPT);
    assert!(!f.path("files/extra").exists());
    let started = std::time::Instant::now();
    let out = f.run_with(&["apply", "--yes"], &extra);
    assert!(
        text(&out.stdout).contains("Apply complete: 1 operations done"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the next apply waited for nothing: {:?}",
        started.elapsed()
    );
    assert!(f.path("files/extra").exists());

    // Destroy asks the same way and stops the same way.
    interrupted(&["destroy"], &extra, DESTROY_PROMPT);
    assert!(f.path("files/a").exists() && f.path("files/extra").exists());
    assert_eq!(ok(&f.run(&["state", "list"])).lines().count(), 6);
}

/// At the prompt only `yes` goes ahead: `no` changes nothing (exit 1, "Nothing was
/// changed.", the lock released), `yes` applies, and destroy asks the same way.
#[test]
fn the_prompt_applies_on_yes_only() {
    let f = Fixture::new();
    ok(&f.run(&["plan"]));
    let before = everything(&f);
    let (code, screen) = at_the_prompt(&f, &["apply"], &[], APPLY_PROMPT, b"no\r");
    assert_eq!(code, Some(1), "{screen}");
    assert!(screen.contains("Nothing was changed."), "{screen}");
    assert!(everything(&f) == before, "nothing was written");
    assert!(!f.path("state/lock.json").exists());

    // Something else than the exact word is a no too.
    let (code, screen) = at_the_prompt(&f, &["apply"], &[], APPLY_PROMPT, b"y\r");
    assert_eq!(code, Some(1), "{screen}");
    assert!(!f.snapshot_path().exists() && !f.path("files/a").exists());

    let (code, screen) = at_the_prompt(&f, &["apply"], &[], APPLY_PROMPT, b"yes\r");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("Apply complete: 5 operations done"), "{screen}");
    assert_eq!(std::fs::read_to_string(f.path("files/a")).unwrap(), "a\n");
    assert_eq!(f.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0));
    // No changes: nothing to confirm, so no prompt.
    let mut term = Terminal::spawn(f.command(&["apply"]));
    term.wait_for("No changes.");
    let (status, screen) = term.finish();
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(!screen.contains(APPLY_PROMPT), "{screen}");

    let before = everything(&f);
    let (code, screen) = at_the_prompt(&f, &["destroy"], &[], DESTROY_PROMPT, b"no\r");
    assert_eq!(code, Some(1), "{screen}");
    assert!(everything(&f) == before, "nothing was deleted");
    let (code, screen) = at_the_prompt(&f, &["destroy"], &[], DESTROY_PROMPT, b"yes\r");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("Destroy complete"), "{screen}");
    assert!(!f.path("files/a").exists());
    assert_eq!(ok(&f.run(&["state", "list"])).trim(), "");
}
