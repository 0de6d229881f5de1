//! The workspace's example programs as binaries, for tests that run them
//! as processes.
//!
//! A test of an example must never pass because the example is missing:
//! `cargo test` builds the examples of the packages it tests, but not for
//! `--test NAME`, and an old binary may be lying around. So [`example`]
//! runs `cargo build -p PACKAGE --example NAME` — the command the README
//! gives, with the profile of the running test (`--release` for a test
//! built with it) and its target directory — once per test process, and
//! panics with cargo's reason when the build fails. When nothing changed
//! the build is a no-op that takes a fraction of a second.
//!
//! Included by path from the test crates of `smtp-blocking` and
//! `smtp-mio`, so it uses the standard library only.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a build may take: a cold build of the examples and their
/// dependencies on a small, busy machine.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(1200);

/// The path of example `name` of `package`, built now (once per process)
/// with the profile and target directory of the running test.
///
/// # Panics
///
/// When the example cannot be built, with cargo's output: a test of an
/// example fails rather than skips.
pub fn example(package: &str, name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<(String, String), PathBuf>>> = Mutex::new(None);
    // A panicking build leaves nothing half-done in the map.
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let key = (package.to_owned(), name.to_owned());
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(&key) {
        return path.clone();
    }
    let path = build(package, name).unwrap_or_else(|e| {
        panic!("cannot build example {name} of {package} (the test needs it): {e}")
    });
    built
        .get_or_insert_with(HashMap::new)
        .insert(key, path.clone());
    path
}

/// The profile arguments and target directory of the running test, from
/// its path: `<target>/<profile dir>/deps/<test>`.
fn profile_of_this_test() -> Result<(Vec<String>, PathBuf), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} is not in <target>/<profile>/deps", exe.display()))?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| format!("{} has no target directory", profile_dir.display()))?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => Vec::new(),
        Some("release") => vec!["--release".to_owned()],
        Some(other) => vec!["--profile".to_owned(), other.to_owned()],
        None => return Err(format!("no profile in {}", profile_dir.display())),
    };
    Ok((profile, target_dir.to_owned()))
}

fn build(package: &str, name: &str) -> Result<PathBuf, String> {
    let (profile, target_dir) = profile_of_this_test()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", package, "--example", name])
        .args(&profile)
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--message-format=json-render-diagnostics")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Cargo gives a test the variables of its own package; a build that
    // saw them would think its build scripts' inputs changed (ring's
    // watches CARGO_MANIFEST_DIR) and rebuild them, and the next
    // `cargo test` would rebuild them back.
    for (var, _) in std::env::vars_os() {
        let Some(var) = var.to_str() else { continue };
        if var.starts_with("CARGO_PKG_")
            || var.starts_with("CARGO_BIN_EXE_")
            || matches!(
                var,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "OUT_DIR"
            )
        {
            cmd.env_remove(var);
        }
    }
    let mut child = cmd.spawn().map_err(|e| format!("{cmd:?}: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + BUILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{cmd:?} still running after {BUILD_TIMEOUT:?}: killed"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let messages = reader.join().map_err(|_| "reading cargo's output failed")?;
    if !status.success() {
        return Err(format!("{cmd:?} failed ({status}); its errors are above"));
    }
    executable(&messages, name)
        .filter(|path| path.is_file())
        .ok_or_else(|| format!("{cmd:?} reported no executable for example {name}"))
}

/// The `executable` of the `compiler-artifact` message for example `name`
/// in cargo's JSON messages (one object per line).
fn executable(messages: &str, name: &str) -> Option<PathBuf> {
    let target = format!("\"kind\":[\"example\"],\"crate_types\":[\"bin\"],\"name\":\"{name}\"");
    messages
        .lines()
        .filter(|line| line.contains("\"reason\":\"compiler-artifact\"") && line.contains(&target))
        .find_map(|line| json_string(line, "executable"))
        .map(PathBuf::from)
}

/// The string value of `"key":"..."` in one line of JSON (paths: only `\\`
/// and `\"` need unescaping).
fn json_string(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_executable_in_cargo_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","package_id":"x","target":{"kind":["lib"],"crate_types":["lib"],"name":"send"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","package_id":"x","target":{"kind":["example"],"crate_types":["bin"],"name":"send","src_path":"/w/send.rs"},"executable":"/t/a \"b\\c/send","fresh":true}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            executable(messages, "send"),
            Some(PathBuf::from("/t/a \"b\\c/send"))
        );
        assert_eq!(executable(messages, "parse"), None);
    }
}
