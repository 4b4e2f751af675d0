//! A killed run's lock: after a real `kill -9` of an apply, the next apply takes the lock
//! over itself, says so in one line and recovers the journal; a lock held by a live
//! process, by a process of another boot or host, or written without a boot id (an older
//! spar) still needs `state unlock`; a pid now used by a later process is not the holder.

#[path = "support/fixture.rs"]
mod fixture;

use std::time::{Duration, Instant};

use fixture::{Fixture, text};

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

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .to_string()
}

/// Field 22 of `/proc/<pid>/stat`: when the process started.
fn start_of(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

fn holder() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("{user}@{}", gethostname::gethostname().to_string_lossy())
}

fn write_lock(f: &Fixture, lock: serde_json::Value) {
    std::fs::create_dir_all(f.path("state")).unwrap();
    std::fs::write(f.path("state/lock.json"), lock.to_string()).unwrap();
}

#[test]
fn a_killed_runs_lock_is_taken_over_by_the_next_run() {
    let f = Fixture::new();
    std::fs::write(
        f.path("cfg/dev.toml"),
        format!("dir = \"{}\"\ncopies = 400\n", f.path("files").display()),
    )
    .unwrap();
    // Kill -9 once the run has journaled work: mid-run, holding the lock.
    let mut child = f.command(&["apply", "--yes", "--parallelism", "2"]).spawn().unwrap();
    let pid = child.id();
    let start = Instant::now();
    while !f.path("state/journal.jsonl").exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "the kill landed while the apply ran"
    );
    assert!(f.path("state/journal.jsonl").exists(), "it died mid-run, journal left");
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(f.path("state/lock.json")).unwrap()).unwrap();
    assert_eq!(lock["pid"], pid, "the dead run's lock is left");
    assert_eq!(lock["boot_id"], boot_id());

    // The next apply takes it over, says so once, and converges.
    let out = f.run(&["apply", "--yes"]);
    let stderr = text(&out.stderr);
    ok(&out);
    let notes: Vec<&str> = stderr.lines().filter(|l| l.contains("took over the lock")).collect();
    assert_eq!(notes.len(), 1, "{stderr}");
    assert!(
        notes[0].contains(&format!("took over the lock of {} (pid {pid}, `apply`", holder())),
        "{stderr}"
    );
    assert!(!f.path("state/lock.json").exists());
    assert!(!f.path("state/journal.jsonl").exists());
    assert_eq!(f.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0));
    assert_eq!(ok(&f.run(&["state", "list"])).lines().count(), 403);
}

#[test]
fn a_lock_is_taken_over_only_when_its_holder_is_surely_gone() {
    let f = Fixture::new();
    ok(&f.run(&["apply", "--yes"]));
    let me = std::process::id();
    let dead_pid = {
        // A pid that ran and is gone.
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let p = c.id();
        c.wait().unwrap();
        p
    };
    let lock = |pid: u32, boot: Option<&str>, start: Option<u64>| {
        let mut l = serde_json::json!({"id": "held", "holder": holder(), "pid": pid,
            "operation": "apply", "created": "2026-12-06T03:00:00Z"});
        if let Some(b) = boot {
            l["boot_id"] = b.into();
        }
        if let Some(s) = start {
            l["process_start"] = s.into();
        }
        l
    };
    let refused = |l: serde_json::Value, why: &str| {
        write_lock(&f, l);
        let out = f.run(&["apply", "--yes"]);
        assert_eq!(out.status.code(), Some(1), "{why}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("spar state unlock"),
            "{why}: {}",
            text(&out.stderr)
        );
        assert!(f.path("state/lock.json").exists(), "{why}");
        std::fs::remove_file(f.path("state/lock.json")).unwrap();
    };
    let boot = boot_id();
    // A live holder (this test process, same boot, same start).
    refused(lock(me, Some(&boot), Some(start_of(me))), "a live holder");
    // A dead holder of another boot, and one of an older spar (no boot id).
    refused(lock(dead_pid, Some("another-boot"), None), "another boot");
    refused(lock(dead_pid, None, None), "no boot id");
    // Another host's holder.
    let mut other = lock(dead_pid, Some(&boot), None);
    other["holder"] = "ci@runner-7".into();
    refused(other, "another host");

    // A holder of this boot that is gone, and one whose pid a later process now uses
    // (this test process, started at another time): both taken over.
    for (l, why) in [
        (lock(dead_pid, Some(&boot), Some(1)), "gone"),
        (lock(me, Some(&boot), Some(start_of(me) + 1)), "pid reused"),
    ] {
        write_lock(&f, l);
        let out = f.run(&["apply", "--yes"]);
        ok(&out);
        assert!(
            text(&out.stderr).contains("took over the lock"),
            "{why}: {}",
            text(&out.stderr)
        );
        assert!(!f.path("state/lock.json").exists(), "{why}");
    }
}
