//! What the integration tests of `trawl` and of `trawl-bench` share (each includes this file as
//! a module): the test Python, its scripts under `tests/python`, moto's S3-compatible server
//! that it runs, and walking a directory. `scripts/test` installs pyarrow, boto3 and moto for
//! `TRAWL_TEST_PYTHON`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Python with pyarrow, boto3 and moto (`.ci/run` sets it up).
pub(crate) fn python() -> String {
    std::env::var("TRAWL_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// A command of the test Python, without the library path cargo sets for tests: it points at
/// build outputs, aws-lc's libcrypto among them, which must not replace the OpenSSL that
/// Python's hashing and signing were built against.
fn python_command() -> Command {
    let mut cmd = Command::new(python());
    cmd.env_remove("LD_LIBRARY_PATH");
    cmd
}

/// `tests/python/SCRIPT` of the workspace, run by the test Python.
pub(crate) fn python_script(script: &str) -> Command {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("tests/python"))
        .find(|dir| dir.is_dir())
        .expect("tests/python in the workspace");
    let mut cmd = python_command();
    cmd.arg(scripts.join(script));
    cmd
}

/// Runs `tests/python/SCRIPT` with the test Python; panics with its output when it fails.
pub(crate) fn run_python(script: &str, args: &[&str]) -> String {
    let out = python_script(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (set TRAWL_TEST_PYTHON): {e}", python()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{script} {args:?}\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// A moto server on a free port of 127.0.0.1, killed on drop; its request log is kept.
pub(crate) struct Moto {
    pub(crate) port: u16,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts a server with `env` (moto's own settings) and waits until it accepts connections.
    /// Panics, saying how to install moto, when it cannot start: S3 tests never skip.
    pub(crate) fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("moto.log");
        let port = free_port();
        let child = python_command()
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start moto with {} ({e}): scripts/test installs moto[server] for TRAWL_TEST_PYTHON", python())
            });
        let moto = Self { port, child, log, _dir: dir };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "moto did not start: {}", moto.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What trawl needs to reach the server: the endpoint, plain HTTP, any keys.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        endpoint_env(
            &self.endpoint(),
            &[("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")],
        )
    }

    /// The server's log so far: a line for every request.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `s3_trail.py COMMAND ENDPOINT ARGS...`.
    pub(crate) fn script(&self, args: &[&str]) -> String {
        let endpoint = self.endpoint();
        let mut full = vec![args[0], endpoint.as_str()];
        full.extend(&args[1..]);
        run_python("s3_trail.py", &full)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// The environment of an S3 client of `endpoint`, with `extra` (keys, retries).
pub(crate) fn endpoint_env(endpoint: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("AWS_ENDPOINT_URL".to_owned(), endpoint.to_owned()),
        ("AWS_ALLOW_HTTP".to_owned(), "true".to_owned()),
        // No profile files of the machine running the tests.
        ("AWS_CONFIG_FILE".to_owned(), "/nonexistent".to_owned()),
        ("AWS_SHARED_CREDENTIALS_FILE".to_owned(), "/nonexistent".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

/// Every file under `dir`, at any depth.
pub(crate) fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}
