//! Runs a program on a pseudo-terminal, as a person at a terminal would: the terminal is the
//! program's stdin, stdout, stderr and controlling terminal, with the usual line discipline
//! (canonical input, echo, and ISIG, so a typed Ctrl-C becomes SIGINT for the program).
//! The test reads what the screen shows and types into it through the master side.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{InputModes, LocalModes, OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr};

/// How long anything on the terminal may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// The Ctrl-C key: the byte a terminal sends for it (`VINTR`).
pub const CTRL_C: &[u8] = &[0x03];

/// A program running on a pseudo-terminal.
pub struct Terminal {
    child: Child,
    master: std::fs::File,
    screen: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Opens a pseudo-terminal: (master, slave), the slave set up as a login terminal is.
fn open() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // Say what a person's terminal has rather than trust the defaults: lines (Enter sends
    // CR, read as NL), echo, and Ctrl-C as the interrupt key that signals the program.
    let mut t = tcgetattr(&slave)?;
    t.local_modes |= LocalModes::ISIG | LocalModes::ICANON | LocalModes::ECHO;
    t.input_modes |= InputModes::ICRNL;
    t.special_codes[SpecialCodeIndex::VINTR] = CTRL_C[0];
    tcsetattr(&slave, OptionalActions::Now, &t)?;
    Ok((master, slave))
}

impl Terminal {
    /// Starts `command` on a new terminal, in a new session whose controlling terminal it
    /// is (so the program is the terminal's foreground process group, which Ctrl-C signals).
    pub fn spawn(mut command: Command) -> Terminal {
        let (master, slave) = open().expect("a pseudo-terminal");
        let fd = |f: &OwnedFd| Stdio::from(f.try_clone().expect("a terminal descriptor"));
        command.stdin(fd(&slave)).stdout(fd(&slave)).stderr(fd(&slave));
        // SAFETY: between fork and exec the hook makes two system calls and touches no
        // memory another thread could hold (no allocation, no lock).
        unsafe {
            command.pre_exec(|| {
                rustix::process::setsid()?;
                // fd 0 is the terminal by now (std sets up stdio before this hook runs).
                rustix::process::ioctl_tiocsctty(BorrowedFd::borrow_raw(0))?;
                Ok(())
            });
        }
        let child = command.spawn().expect("the program starts");
        // Only the program holds the terminal now: when it exits, reads on the master end.
        drop(command);
        drop(slave);
        let master = std::fs::File::from(master);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let mut master = master.try_clone().expect("the master side");
            let screen = screen.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                // EIO (Linux) or 0 once every descriptor of the slave side is closed.
                while let Ok(n @ 1..) = master.read(&mut buf) {
                    screen.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        };
        Terminal {
            child,
            master,
            screen,
            reader: Some(reader),
        }
    }

    /// Everything the terminal has shown so far.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits until the screen shows `text`.
    pub fn wait_for(&mut self, text: &str) {
        let started = Instant::now();
        while !self.screen().contains(text) {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader take what is left before reporting.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "the program exited ({status}) without showing {text:?}; the screen:\n{}",
                    self.screen()
                );
            }
            if started.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("{text:?} did not show in {PATIENCE:?}; the screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Types `bytes` as keys (`b"yes\r"`: the word and Enter; [`CTRL_C`]).
    pub fn type_keys(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("typing on the terminal");
        self.master.flush().expect("typing on the terminal");
    }

    /// Waits for the program to exit: its status and everything the screen showed.
    pub fn finish(mut self) -> (ExitStatus, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the program's status") {
                break status;
            }
            if started.elapsed() > PATIENCE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the program did not exit in {PATIENCE:?}; the screen:\n{}",
                    self.screen()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(r) = self.reader.take() {
            r.join().expect("the terminal reader");
        }
        let screen = self.screen();
        (status, screen)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // A test that failed half-way leaves no program behind.
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
