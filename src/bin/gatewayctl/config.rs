//! Where credentials come from besides the environment: the config file, which must be private
//! to its owner, and stdin (a flag given as `-`), so that no secret needs to be typed as a flag,
//! where `ps` and shell history show it.

use serde_json::Value;
use std::io::{BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// `GATEWAYCTL_CONFIG`, else `~/.config/gatewayctl/config.json`.
pub fn path() -> Option<PathBuf> {
    match std::env::var_os("GATEWAYCTL_CONFIG") {
        Some(p) => Some(PathBuf::from(p)),
        None => std::env::var_os("HOME")
            .map(|home| Path::new(&home).join(".config/gatewayctl/config.json")),
    }
}

/// The config file's JSON, `None` without one; a file that is not private to its user is refused.
pub fn read(path: &Path) -> Result<Option<Value>, String> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    // The owner and mode of the file opened, not of whatever the path names a moment later.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let failed = |e: std::io::Error| format!("{}: {e}", path.display());
        let meta = file.metadata().map_err(failed)?;
        let me = current_uid();
        owned(path, meta.uid(), me)?;
        private(path, meta.mode())?;
        // The directory holding the file itself (a symbolic link is followed).
        let real = std::fs::canonicalize(path).map_err(failed)?;
        if let Some(dir) = real.parent() {
            let meta = std::fs::File::open(dir)
                .and_then(|d| d.metadata())
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            safe_dir(dir, meta.uid(), meta.mode(), me)?;
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

#[cfg(unix)]
fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Refuses a file another user owns: they could rewrite it (the gateway URL, where the admin
/// token is sent) or read it whatever its mode says today.
pub fn owned(path: &Path, uid: u32, me: u32) -> Result<(), String> {
    if uid == me {
        return Ok(());
    }
    Err(format!(
        "{} belongs to uid {uid}, not to you (uid {me}): use a config file of your own",
        path.display()
    ))
}

/// Refuses a file whose mode gives group or others any access, naming the `chmod` to run.
pub fn private(path: &Path, mode: u32) -> Result<(), String> {
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let shown = path.display().to_string();
    Err(format!(
        "{shown} is open to other users (mode {:o}): run chmod 600 {}",
        mode & 0o777,
        shell_word(&shown)
    ))
}

/// Refuses a directory where someone else could put another file in the config file's place,
/// as ssh does: one group or others may write, or one that belongs to another user but root.
pub fn safe_dir(dir: &Path, uid: u32, mode: u32, me: u32) -> Result<(), String> {
    let shown = dir.display().to_string();
    if uid != me && uid != 0 {
        return Err(format!(
            "{shown} belongs to uid {uid}, not to you (uid {me}) or root, who could swap the \
             config file: keep it in a directory of your own"
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "{shown} is writable by other users (mode {:o}), who could swap the config file: \
             run chmod go-w {}",
            mode & 0o777,
            shell_word(&shown)
        ));
    }
    Ok(())
}

/// `s` as one shell word, quoted only when it needs to be.
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Set once something has read stdin: it holds one secret or one document, not several.
static STDIN_TAKEN: AtomicBool = AtomicBool::new(false);

/// Claims stdin; a second claim is an error.
pub fn take_stdin() -> Result<(), String> {
    if STDIN_TAKEN.swap(true, Ordering::SeqCst) {
        return Err(
            "only one of --admin-token, --key, --secret and --file can be read from stdin (`-`)"
                .into(),
        );
    }
    Ok(())
}

/// `value`, or when it is `-`, the first line of stdin (without its line ending); typed at a
/// terminal, it is not echoed.
pub fn or_stdin(value: Option<String>, what: &str) -> Result<Option<String>, String> {
    if value.as_deref() != Some("-") {
        return Ok(value);
    }
    take_stdin()?;
    let failed = |e: std::io::Error| format!("reading the {what} from stdin: {e}");
    let line = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{what}: ")).map_err(failed)?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(failed)?;
        line
    };
    match line.trim_end_matches(['\n', '\r']) {
        "" => Err(format!("no {what} on stdin")),
        secret => Ok(Some(secret.to_string())),
    }
}

/// The secret flags given a value on the command line, with what to use instead.
const SECRET_FLAGS: [(&str, &str, &str); 4] = [
    ("admin_token", "--admin-token", "GATEWAY_ADMIN_TOKEN"),
    ("key", "--key", "GATEWAY_KEY"),
    ("secret", "--secret", "GATEWAY_SOURCE_SECRET"),
    (
        "destination_secret",
        "--secret",
        "GATEWAY_DESTINATION_SECRET",
    ),
];

/// A warning for each secret given as a flag's value (not `-`), which `ps` and shell history
/// show: scripts may still do it, but are told the safer ways.
pub fn argv_warnings(matches: &clap::ArgMatches) -> Vec<String> {
    let mut found = Vec::new();
    let mut level = Some(matches);
    while let Some(m) = level {
        for (id, flag, env) in SECRET_FLAGS {
            // `try_get_one` first: it is an error, not a panic, for a flag this level lacks.
            let given = m.try_get_one::<String>(id).ok().flatten();
            let literal = given.is_some_and(|v| !v.is_empty() && v != "-")
                && m.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
            let warning = format!(
                "a value given to {flag} shows in `ps` and shell history: use {env}, or {flag} - \
                 to read it from stdin"
            );
            if literal && !found.contains(&warning) {
                found.push(warning);
            }
        }
        level = m.subcommand().map(|(_, sub)| sub);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_only_its_owner_can_open_is_accepted() {
        for mode in [0o100600, 0o600, 0o400, 0o700] {
            assert_eq!(
                private(Path::new("/h/config.json"), mode),
                Ok(()),
                "{mode:o}"
            );
        }
    }

    #[test]
    fn any_group_or_other_bit_is_refused_with_the_chmod_to_run() {
        let p = Path::new("/home/ann/.config/gatewayctl/config.json");
        assert_eq!(
            private(p, 0o100644),
            Err(
                "/home/ann/.config/gatewayctl/config.json is open to other users (mode 644): \
                 run chmod 600 /home/ann/.config/gatewayctl/config.json"
                    .into()
            )
        );
        for mode in [0o640, 0o610, 0o604, 0o602, 0o601, 0o620, 0o666] {
            assert!(private(p, mode).is_err(), "{mode:o}");
        }
    }

    #[test]
    fn the_chmod_hint_can_be_pasted_whatever_the_path() {
        let err = private(Path::new("/tmp/my dir/ann's.json"), 0o644).unwrap_err();
        assert!(
            err.ends_with(r"run chmod 600 '/tmp/my dir/ann'\''s.json'"),
            "{err}"
        );
    }

    #[test]
    fn a_file_of_another_user_is_refused() {
        let p = Path::new("/home/ann/.config/gatewayctl/config.json");
        assert_eq!(owned(p, 1000, 1000), Ok(()));
        assert_eq!(
            owned(p, 1001, 1000),
            Err(
                "/home/ann/.config/gatewayctl/config.json belongs to uid 1001, not to you \
                 (uid 1000): use a config file of your own"
                    .into()
            )
        );
        // Not even root's, for a user: root's own file is no proof it holds what they wrote.
        assert!(owned(p, 0, 1000).is_err());
    }

    #[test]
    fn a_directory_others_may_write_or_own_is_refused_as_ssh_does() {
        let d = Path::new("/home/ann/.config/gatewayctl");
        for (uid, mode) in [(1000, 0o40700), (1000, 0o755), (0, 0o755), (1000, 0o1755)] {
            assert_eq!(safe_dir(d, uid, mode, 1000), Ok(()), "{uid} {mode:o}");
        }
        assert_eq!(
            safe_dir(d, 1000, 0o40775, 1000),
            Err(
                "/home/ann/.config/gatewayctl is writable by other users (mode 775), who could \
                 swap the config file: run chmod go-w /home/ann/.config/gatewayctl"
                    .into()
            )
        );
        for mode in [0o720, 0o702, 0o777, 0o1777] {
            assert!(safe_dir(d, 1000, mode, 1000).is_err(), "{mode:o}");
        }
        assert_eq!(
            safe_dir(d, 1001, 0o700, 1000),
            Err(
                "/home/ann/.config/gatewayctl belongs to uid 1001, not to you (uid 1000) or \
                 root, who could swap the config file: keep it in a directory of your own"
                    .into()
            )
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_config_file_is_read_only_when_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("gatewayctl-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let file = dir.join("config.json");
        std::fs::write(&file, r#"{"admin_token": "t"}"#).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read(&file).unwrap_err().contains("chmod 600"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(&file).unwrap().unwrap()["admin_token"], "t");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(read(&file).unwrap_err().contains("chmod go-w"));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(read(&dir.join("none.json")), Ok(None));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_value_other_than_a_dash_is_kept() {
        assert_eq!(
            or_stdin(Some("tok".into()), "admin token"),
            Ok(Some("tok".into()))
        );
        assert_eq!(or_stdin(None, "admin token"), Ok(None));
    }
}
