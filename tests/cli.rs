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
    // Reviewed before it is written: plan --refresh-only shows it and writes nothing.
    let state = std::fs::read(f.snapshot_path()).unwrap();
    let out = f.run(&["plan", "--refresh-only", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("~ a changed outside spar:"), "{stdout}");
    assert!(
        stdout.contains("content: \"a\\n\" -> \"edited by hand\\n\""),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(f.snapshot_path()).unwrap(),
        state,
        "plan --refresh-only writes nothing"
    );
    // refresh asks first: without a terminal and without --yes, nothing is written.
    let out = f.run(&["refresh"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("~ a changed outside spar:"), "shown first");
    assert!(text(&out.stderr).contains("pass --yes"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(f.snapshot_path()).unwrap(), state);
    assert!(!f.path("state/lock.json").exists());
    // --target narrows what is read.
    let stdout = ok(&f.run(&["plan", "--refresh-only", "--target", "copies"]));
    assert!(stdout.contains("No changes outside spar"), "{stdout}");
    let stdout = ok(&f.run(&["refresh", "--yes"]));
    assert!(
        stdout.contains("~ a changed outside spar") && stdout.contains("1 drifted") && stdout.contains("State updated"),
        "{stdout}"
    );
    assert_ne!(std::fs::read(f.snapshot_path()).unwrap(), state);
    assert_eq!(
        f.run(&["plan", "--refresh-only", "--detailed-exitcode"]).status.code(),
        Some(0)
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
    let out = f.run(&["apply", "--refresh-only", "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ev = events(&out);
    assert_eq!(ev[0]["event"], "drift");
    assert_eq!(ev[0]["address"], "secret");
    assert_eq!(ev[0]["changes"][0]["path"], "mode");
    assert_eq!(
        (
            ev[0]["changes"][0]["before"].clone(),
            ev[0]["changes"][0]["after"].clone()
        ),
        (serde_json::json!(0o600), serde_json::json!(0o644))
    );
    let summary = ev.last().unwrap();
    assert_eq!(
        (
            summary["event"].as_str(),
            summary["drifted"].as_u64(),
            summary["written"].as_bool()
        ),
        (Some("summary"), Some(1), Some(true))
    );
    let secret = std::fs::read_to_string(f.path("files/secret")).unwrap();
    assert!(!text(&out.stdout).contains(&secret), "no secret in the events");
    ok(&f.run(&["apply", "--refresh", "--yes"]));
    let mode = std::fs::metadata(f.path("files/secret")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn apply_with_refresh_refuses_when_an_object_cannot_be_read_back() {
    let f = Fixture::new();
    ok(&f.run(&["apply", "--yes"]));
    // A file that cannot be read (a directory now stands at its path): not gone, not known.
    std::fs::remove_file(f.path("files/a")).unwrap();
    std::fs::create_dir(f.path("files/a")).unwrap();
    let state_dir = f.snapshot_path().parent().unwrap().to_path_buf();
    let before = dir_bytes(&state_dir);
    let out = f.run(&["apply", "--refresh", "--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("could not refresh a: reading"), "{stderr}");
    assert!(stderr.contains("nothing was planned or changed"), "{stderr}");
    assert!(
        !text(&out.stdout).contains("Plan:"),
        "no plan is shown: {}",
        text(&out.stdout)
    );
    assert_eq!(dir_bytes(&state_dir), before, "state untouched");
    assert!(f.path("files/a").is_dir(), "nothing changed on disk");
    // plan --refresh only warns; the lock was released, so the next apply runs at once.
    let out = f.run(&["plan", "--refresh"]);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("could not refresh `a`"), "{all}");
    std::fs::remove_dir(f.path("files/a")).unwrap();
    ok(&f.run(&["apply", "--refresh", "--yes"]));
    assert_eq!(std::fs::read_to_string(f.path("files/a")).unwrap(), "a\n");
}

/// Every file under `dir` (recursively) with its bytes.
fn dir_bytes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                all.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    all.sort();
    all
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

/// How long each `fixture:Wait` call of the views' tests takes (`SPAR_FIXTURE_SLOW`): long
/// enough for the live view to show the elapsed time as 1s and then 2s.
const SLOW_MS: &str = "2600";

/// The seven resources of the fixture with `SPAR_FIXTURE_SLOW` set, and their kinds.
const SLOW_FIXTURE: [(&str, &str); 7] = [
    ("token", "random:Password"),
    ("a", "local:File"),
    ("secret", "local:File"),
    ("copies/copy-0", "local:File"),
    ("copies/copy-1", "local:File"),
    ("slow/wait-0", "fixture:Wait"),
    ("slow/wait-1", "fixture:Wait"),
];

const SLOW_SUMMARY: &str = "Apply complete: 7 operations done, 0 failed, 0 skipped, 0 not started, in ";

/// The fixture's `args` on a terminal of kind `term` (`None`: `TERM` unset), with `env`
/// and, unless `env` sets it, no `NO_COLOR`: the exit code and the raw screen, with the
/// terminal's CR LF line ends made LF.
fn on_terminal(f: &Fixture, args: &[&str], term: Option<&str>, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = f.command(args);
    command.env_remove("NO_COLOR");
    match term {
        Some(t) => command.env("TERM", t),
        None => command.env_remove("TERM"),
    };
    for (k, v) in env {
        command.env(k, v);
    }
    let (status, screen) = Terminal::spawn(command).finish();
    (status.code(), screen.replace("\r\n", "\n"))
}

/// What a screen drew, frame by frame: colour (SGR) sequences removed, and every other
/// control sequence (cursor moves, erases) and carriage return made a line break, so one
/// redraw of the live view's lines is one line here.
fn drawn(screen: &str) -> String {
    let mut out = String::new();
    let mut chars = screen.chars();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                assert_eq!(chars.next(), Some('['), "only CSI sequences are expected: {screen:?}");
                let end = chars.by_ref().find(|c| ('\x40'..='\x7e').contains(c));
                if end != Some('m') {
                    out.push('\n');
                }
            }
            '\r' => out.push('\n'),
            c => out.push(c),
        }
    }
    out
}

/// Whether `screen` holds a colour (SGR) sequence: ESC [ parameters m.
fn has_sgr(screen: &str) -> bool {
    screen.split('\x1b').skip(1).any(|s| {
        s.strip_prefix('[')
            .and_then(|rest| {
                rest.find(|c: char| !(c.is_ascii_digit() || c == ';'))
                    .map(|i| &rest[i..])
            })
            .is_some_and(|rest| rest.starts_with('m'))
    })
}

/// The seconds of a finished step's line, `ADDRESS created (2.6s)`, in `text`.
fn created_secs(text: &str, address: &str) -> f64 {
    let from = text
        .find(&format!("{address} created ("))
        .unwrap_or_else(|| panic!("no `{address} created (` line: {text}"))
        + address.len()
        + " created (".len();
    let secs = &text[from..from + text[from..].find("s)").expect("the seconds end with `s)`")];
    secs.parse()
        .unwrap_or_else(|_| panic!("{secs:?} is not seconds: {text}"))
}

/// On a terminal, apply shows a live view: each resource in flight on its own line, its
/// address, what it does and the time elapsed, redrawn in place (cursor up, erase line) as
/// the time goes by, the two slow ones at once; each finished step becomes a line above it
/// (`ADDRESS created (2.6s)`); at the end nothing in flight is left and the summary follows.
#[test]
fn a_terminal_shows_each_resource_in_flight_with_its_elapsed_time() {
    let f = Fixture::new();
    let (code, screen) = on_terminal(
        &f,
        &["apply", "--yes"],
        Some("xterm-256color"),
        &[("SPAR_FIXTURE_SLOW", SLOW_MS)],
    );
    assert_eq!(code, Some(0), "{screen:?}");
    // Redrawn in place: the cursor goes back up over the view and erases its lines.
    assert!(screen.contains("\x1b[1A"), "no cursor up: {screen:?}");
    assert!(screen.contains("\x1b[2K"), "no line erased: {screen:?}");
    let drawn = drawn(&screen);
    for (address, _) in SLOW_FIXTURE {
        assert_eq!(
            drawn.matches(&format!("{address} created (")).count(),
            1,
            "one finished line for {address}: {drawn}"
        );
    }
    for address in ["slow/wait-0", "slow/wait-1"] {
        let at = |secs: &str| {
            drawn
                .find(&format!("{address} creating (fixture:Wait) {secs}"))
                .unwrap_or_else(|| panic!("{address} was not shown in flight at {secs}: {drawn}"))
        };
        let finished = drawn.find(&format!("{address} created (")).unwrap();
        assert!(
            at("1s") < at("2s") && at("2s") < finished,
            "{address}: in flight at 1s, then 2s, then finished: {drawn}"
        );
        let secs = created_secs(&drawn, address);
        assert!(secs >= 2.55, "{address} took {SLOW_MS} ms, not {secs}s: {drawn}");
    }
    // Both slow ones in flight at once, in the same redraw.
    assert!(
        drawn.lines().any(|l| {
            l.contains("slow/wait-0 creating (fixture:Wait) 1s") && l.contains("slow/wait-1 creating (fixture:Wait) 1s")
        }),
        "the two slow resources were never shown together: {drawn}"
    );
    // The view is gone once all finished; the summary (its headline bold) follows.
    let last = drawn.rfind(" created (").unwrap();
    assert!(
        !drawn[last..].contains("creating ("),
        "a step is left in flight: {drawn}"
    );
    let summary = screen
        .find(&format!(
            "\x1b[1mApply complete\x1b[0m{}",
            &SLOW_SUMMARY["Apply complete".len()..]
        ))
        .unwrap_or_else(|| panic!("no summary: {screen:?}"));
    assert!(
        summary > screen.rfind("\x1b[2K").unwrap(),
        "the summary comes last: {screen:?}"
    );
}

/// Not on a terminal (stdout and stderr piped, as in CI logs): the same apply prints one
/// plain line per step started and finished, in order, with the address, the kind and the
/// time taken, then the summary, and no escape sequence at all, with `NO_COLOR` unset.
#[test]
fn without_a_terminal_apply_prints_plain_lines() {
    let f = Fixture::new();
    let out = f
        .command(&["apply", "--yes"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .env("SPAR_FIXTURE_SLOW", SLOW_MS)
        .output()
        .expect("the fixture runs");
    let (stdout, stderr) = (ok(&out), text(&out.stderr));
    assert!(
        !stdout.contains('\x1b') && !stderr.contains('\x1b'),
        "{stdout:?}\n{stderr:?}"
    );
    assert!(stdout.contains(SLOW_SUMMARY), "{stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        14,
        "a line per step started and finished, nothing else: {stderr}"
    );
    for (address, kind) in SLOW_FIXTURE {
        let started = lines.iter().position(|l| *l == format!("{address} creating ({kind})"));
        let finished = lines.iter().position(|l| {
            l.strip_prefix(&format!("{address} created ("))
                .and_then(|rest| rest.strip_suffix("s)"))
                .is_some_and(|secs| secs.parse::<f64>().is_ok())
        });
        assert!(
            matches!((started, finished), (Some(s), Some(e)) if s < e),
            "{address}: started, then finished: {stderr}"
        );
    }
    for address in ["slow/wait-0", "slow/wait-1"] {
        let secs = created_secs(&stderr, address);
        assert!(secs >= 2.55, "{address} took {SLOW_MS} ms, not {secs}s: {stderr}");
    }
}

/// A terminal that cannot move its cursor (`TERM=dumb`, or `TERM` unset) gets the plain
/// lines too, not a live view drawn nowhere: every step's line and the summary, no cursor
/// movement.
#[test]
fn a_dumb_terminal_gets_plain_lines() {
    for term in [Some("dumb"), None] {
        let f = Fixture::new();
        let (code, screen) = on_terminal(&f, &["apply", "--yes"], term, &[("SPAR_FIXTURE_SLOW", "300")]);
        assert_eq!(code, Some(0), "TERM={term:?}: {screen:?}");
        assert!(
            !screen.contains("\x1b[1A") && !screen.contains("\x1b[2K"),
            "TERM={term:?}: no cursor movement: {screen:?}"
        );
        let plain = drawn(&screen);
        for (address, kind) in SLOW_FIXTURE {
            assert!(
                plain.lines().any(|l| l == format!("{address} creating ({kind})")),
                "TERM={term:?}: {address} started: {plain}"
            );
            created_secs(&plain, address);
        }
        assert!(plain.contains(SLOW_SUMMARY), "TERM={term:?}: {plain}");
    }
}

/// Plan text on a terminal is coloured: the marker of each change in its operation's colour
/// (create `+` green, update `~` yellow, delete `-` red), the name bold, the kind dim, new
/// values in the operation's colour, the summary bold. `NO_COLOR` on a terminal, and any
/// output that is not a terminal, get the same text without a single escape sequence.
#[test]
fn plan_text_is_coloured_on_a_terminal_only_and_never_with_no_color() {
    let f = Fixture::new();
    ok(&f.run_with(&["apply", "--yes"], &[("SPAR_FIXTURE_EXTRA", "1")]));
    // One of each: `a` edited by hand (an update, seen with --refresh), `extra` gone from the
    // program (a delete), a third copy (a create).
    std::fs::write(f.path("files/a"), "edited by hand\n").unwrap();
    std::fs::write(
        f.path("cfg/dev.toml"),
        format!("dir = \"{}\"\ncopies = 3\n", f.path("files").display()),
    )
    .unwrap();
    let args = ["plan", "--refresh", "--detailed-exitcode"];
    let summary = "Plan: 1 to create, 3 to update, 0 to replace, 1 to delete.";

    let (code, screen) = on_terminal(&f, &args, Some("xterm-256color"), &[]);
    assert_eq!(code, Some(2), "{screen:?}");
    for expected in [
        "\x1b[32m  +\x1b[0m \x1b[1mcopy-2\x1b[0m  \x1b[2mlocal:File\x1b[0m\n",
        "\x1b[33m  ~\x1b[0m \x1b[1ma\x1b[0m  \x1b[2mlocal:File\x1b[0m\n",
        "      content: \"edited by hand\\n\" -> \x1b[33m\"a\\n\"\x1b[0m\n",
        "\x1b[31m  -\x1b[0m \x1b[1mextra\x1b[0m  \x1b[2mlocal:File\x1b[0m\n",
        &format!("\x1b[1m{summary}\x1b[0m\n"),
    ] {
        assert!(screen.contains(expected), "no {expected:?} in {screen:?}");
    }

    // The same plan, plain, with NO_COLOR on a terminal, and piped (NO_COLOR unset).
    let (code, screen) = on_terminal(&f, &args, Some("xterm-256color"), &[("NO_COLOR", "1")]);
    assert_eq!(code, Some(2), "{screen:?}");
    let out = f
        .command(&args)
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    for (how, shown) in [("NO_COLOR=1 on a terminal", screen), ("piped", text(&out.stdout))] {
        assert!(!shown.contains('\x1b'), "{how}: {shown:?}");
        for expected in [
            "  + copy-2  local:File\n",
            "  ~ a  local:File\n",
            "      content: \"edited by hand\\n\" -> \"a\\n\"\n",
            "  - extra  local:File\n",
            summary,
        ] {
            assert!(shown.contains(expected), "{how}: no {expected:?} in {shown}");
        }
    }
}

/// `NO_COLOR` on a terminal turns off every colour of an apply (plan, live view, summary)
/// but not the live view itself, which still redraws its lines in place.
#[test]
fn no_color_keeps_the_live_view_without_colour() {
    let f = Fixture::new();
    let (code, screen) = on_terminal(
        &f,
        &["apply", "--yes"],
        Some("xterm-256color"),
        &[("NO_COLOR", "1"), ("SPAR_FIXTURE_SLOW", "1200")],
    );
    assert_eq!(code, Some(0), "{screen:?}");
    assert!(!has_sgr(&screen), "a colour sequence with NO_COLOR: {screen:?}");
    assert!(
        screen.contains("\x1b[1A") && screen.contains("\x1b[2K"),
        "not redrawn: {screen:?}"
    );
    let drawn = drawn(&screen);
    assert!(drawn.contains("slow/wait-0 creating (fixture:Wait) 1s"), "{drawn}");
    assert!(drawn.contains(SLOW_SUMMARY), "{drawn}");
}

#[test]
fn replace_rotates_a_password_and_refuses_an_unknown_address() {
    let f = Fixture::new();
    ok(&f.run(&["apply", "--yes"]));
    let before = std::fs::read_to_string(f.path("files/secret")).unwrap();
    let stdout = ok(&f.run(&["plan", "--replace", "token"]));
    assert!(stdout.contains("replacement requested with --replace"), "{stdout}");
    assert!(
        stdout.contains("Plan: 0 to create, 1 to update, 1 to replace, 0 to delete."),
        "the password and the file holding it: {stdout}"
    );
    assert!(!stdout.contains(&before), "no secret in the plan: {stdout}");
    ok(&f.run(&["apply", "--yes", "--replace", "token"]));
    let after = std::fs::read_to_string(f.path("files/secret")).unwrap();
    assert_eq!(after.len(), 16);
    assert_ne!(after, before, "a new password was generated and written");
    assert_eq!(f.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0));

    let state = std::fs::read(f.snapshot_path()).unwrap();
    for args in [
        &["plan", "--replace", "ghost"][..],
        &["apply", "--yes", "--replace", "ghost"],
    ] {
        let out = f.run(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: --replace `ghost`: the program declares no resource at that address"),
            "{stderr}"
        );
    }
    assert_eq!(std::fs::read(f.snapshot_path()).unwrap(), state, "nothing changed");
}

/// The JSON events of one run: every line of stdout parsed.
fn events(out: &std::process::Output) -> Vec<serde_json::Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[test]
fn apply_and_destroy_json_print_one_event_per_line_and_no_secret() {
    let f = Fixture::new();
    let out = f.run(&["apply", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("pass --yes too"), "{}", text(&out.stderr));

    let out = f.run(&["apply", "--json", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let secret = std::fs::read_to_string(f.path("files/secret")).unwrap();
    assert!(!text(&out.stdout).contains(&secret), "no secret in the events");
    let ev = events(&out);
    assert_eq!(ev[0]["event"], "plan");
    assert_eq!(ev[0]["plan"]["summary"]["create"], 5);
    let of = |kind: &str| ev.iter().filter(|e| e["event"] == kind).collect::<Vec<_>>();
    assert_eq!(of("started").len(), 5);
    let done = of("done");
    assert_eq!(done.len(), 5);
    for d in &done {
        assert_eq!(d["op"], "create");
        assert!(d["id"].as_str().is_some_and(|id| !id.is_empty()), "{d}");
        assert!(d["elapsed_seconds"].as_f64().is_some(), "{d}");
    }
    // Each resource started before it was done.
    for d in &done {
        let at = |kind: &str| {
            ev.iter()
                .position(|e| e["event"] == kind && e["address"] == d["address"])
        };
        assert!(at("started") < at("done"), "{ev:?}");
    }
    let summary = ev.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["command"], "apply");
    assert_eq!(summary["succeeded"], true);
    assert_eq!(summary["done"], 5);
    assert_eq!(summary["outputs"]["token"], "(sensitive value)");

    let out = f.run(&["destroy", "--json", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ev = events(&out);
    assert_eq!(
        ev.iter()
            .filter(|e| e["event"] == "done" && e["op"] == "delete")
            .count(),
        5
    );
    assert_eq!(ev.last().unwrap()["command"], "destroy");
    assert!(!f.path("files/a").exists());
}

#[test]
fn expect_no_changes_passes_an_empty_plan_and_refuses_any_other() {
    let f = Fixture::new();
    let out = f.run(&["apply", "--yes", "--expect-no-changes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!f.path("files/a").exists(), "nothing was applied");
    ok(&f.run(&["apply", "--yes"]));
    let state = std::fs::read(f.snapshot_path()).unwrap();
    ok(&f.run(&["apply", "--yes", "--expect-no-changes"]));
    assert_eq!(
        std::fs::read(f.snapshot_path()).unwrap(),
        state,
        "an empty plan writes nothing"
    );

    let out = f.run_with(
        &["apply", "--yes", "--expect-no-changes"],
        &[("SPAR_FIXTURE_EXTRA", "1")],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: --expect-no-changes: the plan is not empty (1 to create, 0 to update, 0 to replace, 0 to delete: extra)"),
        "{stderr}"
    );
    assert!(!f.path("files/extra").exists());
    assert_eq!(std::fs::read(f.snapshot_path()).unwrap(), state, "nothing changed");
    assert!(!f.path("state/lock.json").exists(), "the lock is released");
}

#[test]
fn state_pull_push_and_unprotect() {
    let f = Fixture::new();
    ok(&f.run(&["apply", "--yes"]));
    // pull: the stored bytes.
    let pulled = f.run(&["state", "pull"]);
    assert!(pulled.status.success());
    assert_eq!(pulled.stdout, std::fs::read(f.snapshot_path()).unwrap());
    let at_1 = f.path("pulled-1.json");
    std::fs::write(&at_1, &pulled.stdout).unwrap();

    // A teammate's copy of the state moves on (serial 2) with one more file.
    let other = f.path("state-other");
    std::fs::create_dir(&other).unwrap();
    std::fs::copy(f.snapshot_path(), other.join("snapshot.json")).unwrap();
    std::fs::copy(f.path("state.key"), f.path("state-other.key")).unwrap();
    let other_dir = other.display().to_string();
    let out = f.run_with(
        &["--state-dir", &other_dir, "apply", "--yes"],
        &[("SPAR_FIXTURE_EXTRA", "1")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let newer = f.path("pulled-2.json");
    std::fs::write(&newer, f.run(&["--state-dir", &other_dir, "state", "pull"]).stdout).unwrap();

    // Pushing the older one is refused; the newer one is taken.
    let before = std::fs::read(f.snapshot_path()).unwrap();
    let out = f.run(&["state", "push", &at_1.display().to_string()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is serial 1, not newer than the stack's serial 1"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(f.snapshot_path()).unwrap(), before);
    let stdout = ok(&f.run(&["state", "push", &newer.display().to_string()]));
    assert!(stdout.contains("the state is now serial 3 (was 1)"), "{stdout}");
    let listed = ok(&f.run(&["state", "list"]));
    assert!(listed.contains("extra\tlocal:File"), "{listed}");
    // With --force, an older one too (it becomes the next serial).
    let stdout = ok(&f.run(&["state", "push", "--force", &at_1.display().to_string()]));
    assert!(stdout.contains("the state is now serial 4 (was 3)"), "{stdout}");
    assert!(!ok(&f.run(&["state", "list"])).contains("extra"));

    // Another stack's state (another lineage, though sealed with the same key) is refused.
    let g = Fixture::new();
    std::fs::copy(f.path("state.key"), g.path("state.key")).unwrap();
    ok(&g.run(&["apply", "--yes"]));
    ok(&g.run_with(&["apply", "--yes"], &[("SPAR_FIXTURE_EXTRA", "1")]));
    let foreign = f.path("foreign.json");
    std::fs::write(&foreign, g.run(&["state", "pull"]).stdout).unwrap();
    let out = f.run(&["state", "push", &foreign.display().to_string()]);
    assert!(
        text(&out.stderr).contains("it is another stack's state"),
        "{}",
        text(&out.stderr)
    );
    // A file that is not a snapshot.
    std::fs::write(f.path("junk.json"), b"{\"x\": 1}").unwrap();
    let out = f.run(&["state", "push", &f.path("junk.json").display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not a spar state file"),
        "{}",
        text(&out.stderr)
    );

    // unprotect: nothing here is protected.
    let out = ok(&f.run(&["state", "unprotect", "a"]));
    assert!(out.contains("a was not protected; nothing changed."), "{out}");
    let out = f.run(&["state", "unprotect", "ghost"]);
    assert!(
        text(&out.stderr).contains("`ghost` is not in state"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn import_file_adopts_many_in_one_run_and_guards_what_is_undeclared() {
    let f = Fixture::new();
    ok(&f.run(&["apply", "--yes"]));
    ok(&f.run(&["state", "rm", "copies"]));
    std::fs::write(f.path("files/by-hand"), "made by hand\n").unwrap();
    let entry = |address: &str, path: &std::path::Path| {
        format!(
            "[[import]]\nkind = \"local:File\"\naddress = \"{address}\"\nid = \"{}\"\n\n",
            path.display()
        )
    };
    let imports = f.path("imports.toml");
    // One entry that does not exist: nothing is imported.
    std::fs::write(
        &imports,
        entry("copies/copy-0", &f.path("files/copy-0")) + &entry("extra", &f.path("files/nope")),
    )
    .unwrap();
    let state = std::fs::read(f.snapshot_path()).unwrap();
    let out = f.run(&["import", "--file", imports.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!((out.status.code(), stderr.lines().count()), (Some(1), 1), "{stderr}");
    assert!(stderr.contains("`extra`: no local:File with id"), "{stderr}");
    assert_eq!(std::fs::read(f.snapshot_path()).unwrap(), state);
    // A bad entry is named before anything is read.
    std::fs::write(&imports, "[[import]]\nkind = \"local:File\"\naddress = \"x\"\n").unwrap();
    let out = f.run(&["import", "--file", imports.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("import #1 (`x`): missing field `id`"),
        "{}",
        text(&out.stderr)
    );

    // Two declared copies and one file the program does not declare.
    std::fs::write(
        &imports,
        entry("copies/copy-0", &f.path("files/copy-0"))
            + &entry("copies/copy-1", &f.path("files/copy-1"))
            + &entry("by-hand", &f.path("files/by-hand")),
    )
    .unwrap();
    let stdout = ok(&f.run(&["import", "--file", imports.to_str().unwrap()]));
    assert!(stdout.contains("Imported copies/copy-0 (local:File"), "{stdout}");
    assert!(
        stdout.contains("Imported by-hand (local:File") && stdout.contains("protected until the program declares it"),
        "{stdout}"
    );
    assert!(stdout.contains("3 object(s) imported"), "{stdout}");
    // Each object's declaration, from its live inputs, with what it needs in scope; a
    // declared one inside its component.
    assert!(stdout.contains("    use spar::builtin::local;\n"), "{stdout}");
    let by_hand = format!(
        "    stack.add(\"by-hand\", local::File::new({:?}, \"made by hand\\n\"))?;\n",
        f.path("files/by-hand").display().to_string()
    );
    assert!(stdout.contains(&by_hand), "{stdout}");
    assert!(
        stdout.contains(
            "    // inside stack.component(\"copies\", |stack| { ... }):\n    stack.add(\"copy-0\", local::File::new("
        ),
        "{stdout}"
    );
    // The next apply cannot delete the undeclared one.
    let out = f.run(&["apply", "--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`by-hand` was imported and is protected until the program declares it"),
        "{stderr}"
    );
    assert!(f.path("files/by-hand").exists());
    // Forgotten, the rest plans clean.
    ok(&f.run(&["state", "rm", "by-hand"]));
    assert_eq!(f.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0));
    assert!(f.path("files/by-hand").exists());
}
