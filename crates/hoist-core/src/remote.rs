//! Running hoist on another host over the system `ssh`, for `hoist copy … ssh://HOST/IMAGE`.
//!
//! There is no daemon and no protocol of hoist's own: the far side is `hoist` itself, started
//! by `ssh [-p PORT] [-l USER] -- HOST 'REMOTE-HOIST ARGS…'`, and its stdin and stdout are the
//! two directions of the stream. A copy is two such runs: one that asks the far store what it
//! holds (`inventory -o -`), then one that moves an archive (`load`, or `save --base -`) which
//! leaves out what the receiving side already has. Both ends verify every blob as usual and
//! the receiving end lands the image atomically, so a failure anywhere changes neither store.
//!
//! The bytes on the pipes are counted (what ssh carries before its own encryption and
//! compression), so the caller can report what crossed the wire.
//!
//! How a run's outcome is told (see [`Remote::send`], [`Remote::receive`]):
//! - the far shell's 127 (and 126) mean the far hoist could not be run: [`RemoteError::NotFound`];
//! - ssh's own 255 is a connection or authentication failure: [`RemoteError::Ssh`];
//! - any other non-zero exit is the far hoist's error, shown with its stderr, each line
//!   prefixed with the host: [`RemoteError::Failed`];
//! - when this side fails first (a local read error, a blob that does not verify), ssh is killed
//!   and this side's error is returned: the far side's complaint about the cut stream would
//!   only hide the cause.

use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};

use crate::error::{Error, Result};
use crate::hashio::{CountingReader, CountingWriter};

/// The far side's stderr kept for messages; the rest is read and dropped, so the far side never
/// blocks on a full pipe. Enough for any error hoist prints.
const MAX_STDERR: usize = 64 * 1024;

/// The far side's stdout kept when it is only a report (`load` prints a line per image).
pub const MAX_REPLY: usize = 1024 * 1024;

/// The far shell's exit status for a command it cannot find (POSIX `sh`).
const SHELL_NOT_FOUND: i32 = 127;
/// The far shell's exit status for a command it found but cannot execute.
const SHELL_CANNOT_EXECUTE: i32 = 126;
/// ssh's exit status for its own errors (connection, authentication, host key).
const SSH_FAILED: i32 = 255;

/// What went wrong talking to the far hoist.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// An `ssh://` location that cannot be parsed or is unsafe to pass on.
    #[error("{spec:?}: {reason}")]
    BadLocation {
        /// The location as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The ssh program could not be started.
    #[error("cannot run {program:?} (set $HOIST_SSH to the ssh command): {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The far shell could not find or run the far hoist (exit 127 or 126).
    #[error("{command} not found on {host}: give --remote-hoist{}", said(stderr))]
    NotFound {
        /// The host, as written in the location.
        host: String,
        /// The far hoist command that failed.
        command: String,
        /// The far side's stderr, each line prefixed with the host.
        stderr: String,
    },
    /// ssh itself failed (exit 255: connection, authentication, host key), or was killed.
    #[error("ssh to {host} failed ({status}){}", said(stderr))]
    Ssh {
        /// The host, as written in the location.
        host: String,
        /// ssh's exit status.
        status: String,
        /// ssh's stderr (and the far side's), each line prefixed with the host.
        stderr: String,
    },
    /// The far hoist failed.
    #[error("{command} on {host} failed ({status}){}", said(stderr))]
    Failed {
        /// The host, as written in the location.
        host: String,
        /// The far command line, as the far shell got it.
        command: String,
        /// Its exit status.
        status: String,
        /// Its stderr, each line prefixed with the host.
        stderr: String,
    },
    /// The far side's answer is larger than an answer of its kind can be.
    #[error("{host}: {what} is larger than {limit} bytes")]
    TooLarge {
        /// The host, as written in the location.
        host: String,
        /// Which answer.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// Waiting for ssh failed.
    #[error("waiting for ssh to {host}: {source}")]
    Wait {
        /// The host, as written in the location.
        host: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// `": <stderr>"`, or nothing when the far side said nothing.
fn said(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// Where an `ssh://[USER@]HOST[:PORT]/IMAGE` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshLocation {
    /// The login name (`-l`), when given.
    pub user: Option<String>,
    /// The host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// The port (`-p`), when given.
    pub port: Option<u16>,
    /// The image on the far side: what follows the first `/`.
    pub image: String,
}

impl SshLocation {
    /// Parses `ssh://[USER@]HOST[:PORT]/IMAGE` (`ssh://[::1]:2222/app:1`). The user, host and
    /// image must not start with `-` (ssh and the far hoist would take them for options) and
    /// may not hold whitespace or control characters.
    pub fn parse(spec: &str) -> Result<SshLocation, RemoteError> {
        let bad = |reason: &str| RemoteError::BadLocation {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let rest = spec
            .strip_prefix("ssh://")
            .ok_or_else(|| bad("an ssh location is ssh://[USER@]HOST[:PORT]/IMAGE"))?;
        let (authority, image) = rest
            .split_once('/')
            .ok_or_else(|| bad("no image: ssh://[USER@]HOST[:PORT]/IMAGE"))?;
        if image.is_empty() {
            return Err(bad("no image: ssh://[USER@]HOST[:PORT]/IMAGE"));
        }
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address needs its closing ]"))?;
            // An address, and maybe a zone (`fe80::1%eth0`).
            let (ip, zone) = addr.split_once('%').unwrap_or((addr, "x"));
            if !ip.contains(':')
                || !ip
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || ":.".contains(c))
                || zone.is_empty()
                || !zone
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
            {
                return Err(bad("not an IPv6 address between [ ]"));
            }
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("after ] comes :PORT or /IMAGE"))?,
                ),
            };
            (addr, port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let host_ok = |c: char| c.is_ascii_alphanumeric() || "-._:%".contains(c);
        if host.starts_with('-') || !host.chars().all(host_ok) {
            return Err(bad("not a host name or address"));
        }
        let port = port
            .map(|p| match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(bad(&format!("port {p:?} is not a number from 1 to 65535"))),
            })
            .transpose()?;
        if let Some(u) = user {
            let user_ok = |c: char| c.is_ascii_alphanumeric() || "-._$".contains(c);
            if u.is_empty() || u.starts_with('-') || !u.chars().all(user_ok) {
                return Err(bad("not a user name"));
            }
        }
        if image.starts_with('-') || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("not an image name"));
        }
        Ok(SshLocation {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
            image: image.to_string(),
        })
    }

    /// The host as written (`[::1]:2222`, `example.com`), for messages.
    pub fn display_host(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }
}

/// What one run of the far hoist moved.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// Bytes written to its stdin.
    pub sent: u64,
    /// Bytes read from its stdout.
    pub received: u64,
    /// Its stdout, when it is an answer ([`Remote::capture`]) or a report ([`Remote::send`]),
    /// at most the limit asked for.
    pub stdout: Vec<u8>,
    /// Its stderr (warnings), each line prefixed with the host, at most 64 KiB.
    pub stderr: String,
}

/// The far hoist, reached over ssh.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The ssh program and its own arguments (`$HOIST_SSH` split on whitespace).
    pub ssh: Vec<String>,
    /// Where.
    pub location: SshLocation,
    /// The far hoist's command line, given to the far shell as it is, like rsync's
    /// `--rsync-path` (so `hoist --root /srv/images` works); the arguments after it are quoted.
    pub hoist: String,
}

impl Remote {
    /// The command line the far shell runs for `args`.
    pub fn remote_command(&self, args: &[&str]) -> String {
        let mut line = self.hoist.clone();
        for a in args {
            line.push(' ');
            line.push_str(&shell_quote(a));
        }
        line
    }

    /// `ssh … -- HOST 'hoist ARGS'` with every stream piped.
    fn spawn(&self, args: &[&str]) -> Result<Child> {
        let (program, own) = self.ssh.split_first().ok_or_else(|| RemoteError::Spawn {
            program: String::new(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "the ssh command is empty"),
        })?;
        let mut c = Command::new(program);
        c.args(own);
        // Never prompt (a password prompt would hang a pipe) and no terminal: the streams are data.
        c.args(["-o", "BatchMode=yes", "-T"]);
        if let Some(p) = self.location.port {
            c.arg("-p").arg(p.to_string());
        }
        if let Some(u) = &self.location.user {
            c.arg("-l").arg(u);
        }
        c.arg("--")
            .arg(&self.location.host)
            .arg(self.remote_command(args));
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().map_err(|source| {
            Error::from(RemoteError::Spawn {
                program: program.clone(),
                source,
            })
        })
    }

    /// Runs `hoist ARGS` on the far side with `input` on its stdin and returns its stdout, which
    /// may not exceed `limit` bytes (an inventory, a report).
    pub fn capture(&self, args: &[&str], input: &[u8], limit: usize) -> Result<Exchange> {
        let what = format!("the answer of `{}`", args.join(" "));
        let (stdout, mut ex) = self.receive(args, input, |r| {
            // One byte past the limit tells an answer too large without reading all of it.
            let mut kept = Vec::new();
            r.take(limit as u64 + 1)
                .read_to_end(&mut kept)
                .map_err(|source| Error::Read {
                    what: what.clone(),
                    source,
                })?;
            if kept.len() > limit {
                return Err(RemoteError::TooLarge {
                    host: self.location.display_host(),
                    what: what.clone(),
                    limit: limit as u64,
                }
                .into());
            }
            Ok(kept)
        })?;
        ex.stdout = stdout;
        Ok(ex)
    }

    /// Runs `hoist ARGS` on the far side with what `feed` writes as its stdin (an archive for
    /// `load`); its stdout is kept up to [`MAX_REPLY`] bytes. When `feed` fails, ssh is killed
    /// and `feed`'s error returned (unless the far side failed first: then its error is).
    pub fn send<T>(
        &self,
        args: &[&str],
        feed: impl FnOnce(&mut dyn Write) -> Result<T>,
    ) -> Result<(T, Exchange)> {
        let mut child = self.spawn(args)?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        std::thread::scope(|s| {
            let err_reader = s.spawn(move || read_capped(stderr, MAX_STDERR));
            let out_reader = s.spawn(move || read_capped(stdout, MAX_REPLY));
            let mut w = CountingWriter::new(stdin);
            let fed = feed(&mut w).and_then(|v| {
                w.flush().map_err(|source| Error::Write {
                    what: format!("to ssh {}", self.location.display_host()),
                    source,
                })?;
                Ok(v)
            });
            let sent = w.count();
            // End of input for the far side.
            drop(w);
            // A broken pipe means the far side went away first: its status tells why.
            let killed = match &fed {
                Err(e) if !is_broken_pipe(e) => kill(&mut child),
                _ => false,
            };
            let status = child.wait();
            let (stdout, received) = joined(out_reader.join());
            let (stderr, _) = joined(err_reader.join());
            let status = status.map_err(|source| RemoteError::Wait {
                host: self.location.display_host(),
                source,
            })?;
            let v = self.outcome(args, status, fed, killed, &stderr)?;
            Ok((
                v,
                Exchange {
                    sent,
                    received,
                    stdout,
                    stderr: self.prefixed(&stderr),
                },
            ))
        })
    }

    /// Runs `hoist ARGS` on the far side with `input` on its stdin (an inventory) and hands
    /// its stdout to `consume` (an archive for `load`). When `consume` fails, ssh is killed and
    /// `consume`'s error returned (unless the far side failed first: then its error is).
    pub fn receive<T>(
        &self,
        args: &[&str],
        input: &[u8],
        consume: impl FnOnce(&mut dyn Read) -> Result<T>,
    ) -> Result<(T, Exchange)> {
        let mut child = self.spawn(args)?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        std::thread::scope(|s| {
            let err_reader = s.spawn(move || read_capped(stderr, MAX_STDERR));
            let feeder = s.spawn(move || {
                // A far side that stops reading (it failed, or needs no input) breaks the pipe;
                // its exit status says what happened, so the write error itself adds nothing.
                match stdin.write_all(input) {
                    Ok(()) => input.len() as u64,
                    Err(_) => 0,
                }
            });
            let mut r = CountingReader::new(stdout);
            let consumed = consume(&mut r);
            let received = r.count();
            // A consumer that failed at the end of the stream failed because the far side
            // stopped sending: its exit status tells why. One that failed while data was still
            // coming cuts the far side off.
            let killed = consumed.is_err() && !r.at_end() && kill(&mut child);
            drop(r);
            let status = child.wait();
            let sent = feeder.join().unwrap_or(0);
            let (stderr, _) = joined(err_reader.join());
            let status = status.map_err(|source| RemoteError::Wait {
                host: self.location.display_host(),
                source,
            })?;
            let v = self.outcome(args, status, consumed, killed, &stderr)?;
            Ok((
                v,
                Exchange {
                    sent,
                    received,
                    stdout: Vec::new(),
                    stderr: self.prefixed(&stderr),
                },
            ))
        })
    }

    /// Which error a run ends with: see the module documentation.
    fn outcome<T>(
        &self,
        args: &[&str],
        status: ExitStatus,
        local: Result<T>,
        killed: bool,
        stderr: &[u8],
    ) -> Result<T> {
        let host = self.location.display_host();
        let stderr = self.prefixed(stderr);
        let failed = match (local, status.code()) {
            (Ok(v), Some(0)) => return Ok(v),
            // This side failed and the far side did not (or was cut off by us): the cause is here.
            (Err(e), Some(0)) => return Err(e),
            (Err(e), None) if killed => return Err(e),
            (_, Some(SHELL_NOT_FOUND | SHELL_CANNOT_EXECUTE)) => RemoteError::NotFound {
                host,
                command: self.program().to_string(),
                stderr,
            },
            (_, Some(SSH_FAILED) | None) => RemoteError::Ssh {
                host,
                status: status.to_string(),
                stderr,
            },
            (_, Some(_)) => RemoteError::Failed {
                host,
                command: format!("{} {}", self.program(), args.join(" ")),
                status: status.to_string(),
                stderr,
            },
        };
        Err(failed.into())
    }

    /// The far hoist's program, for messages (the first word of its command line).
    fn program(&self) -> &str {
        self.hoist.split_whitespace().next().unwrap_or("hoist")
    }

    /// The far side's stderr with each line prefixed with the host (`HOST: hoist: error: …`).
    fn prefixed(&self, stderr: &[u8]) -> String {
        let host = &self.location.host;
        String::from_utf8_lossy(stderr)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("{host}: {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Kills ssh (our own child), so the far side sees its input end or its output go nowhere.
/// Returns whether the signal was sent: a child that already exited keeps its own status.
fn kill(child: &mut Child) -> bool {
    match child.try_wait() {
        Ok(Some(_)) => false,
        // Failing to kill a child that is exiting anyway changes nothing: its status is read next.
        _ => child.kill().is_ok(),
    }
}

/// The result of a reader thread; a thread that panicked or failed gave nothing.
fn joined(r: std::thread::Result<io::Result<(Vec<u8>, u64)>>) -> (Vec<u8>, u64) {
    match r {
        Ok(Ok(v)) => v,
        // The pipe of a killed or failed ssh: what it said is lost, its exit status is not.
        Ok(Err(_)) | Err(_) => (Vec::new(), 0),
    }
}

/// Reads `r` to its end, keeping the first `cap` bytes; returns them and the total read.
fn read_capped(mut r: impl Read, cap: usize) -> io::Result<(Vec<u8>, u64)> {
    let mut kept = Vec::new();
    let mut total = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok((kept, total)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        let room = cap.saturating_sub(kept.len()).min(n);
        kept.extend_from_slice(&buf[..room]);
    }
}

/// Whether an error is a write to a pipe whose reader went away.
fn is_broken_pipe(e: &Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// `s` as one word for a POSIX shell: as it is when it holds only characters no shell treats
/// specially, else in single quotes (a `'` inside becomes `'\''`).
pub fn shell_quote(s: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:@=+,%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.into()
    } else {
        format!("'{}'", s.replace('\'', r"'\''")).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(user: Option<&str>, host: &str, port: Option<u16>, image: &str) -> SshLocation {
        SshLocation {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
            image: image.to_string(),
        }
    }

    #[test]
    fn locations() {
        for (spec, want, shown) in [
            ("ssh://h/app", loc(None, "h", None, "app"), "h"),
            (
                "ssh://me@example.com:2222/library/app:1.0",
                loc(Some("me"), "example.com", Some(2222), "library/app:1.0"),
                "example.com:2222",
            ),
            (
                "ssh://[::1]:22/app@sha256:0123",
                loc(None, "::1", Some(22), "app@sha256:0123"),
                "[::1]:22",
            ),
            (
                "ssh://root@[fe80::1%eth0]/a",
                loc(Some("root"), "fe80::1%eth0", None, "a"),
                "[fe80::1%eth0]",
            ),
            (
                "ssh://127.0.0.1:36789/localhost:5000/a:b",
                loc(None, "127.0.0.1", Some(36789), "localhost:5000/a:b"),
                "127.0.0.1:36789",
            ),
        ] {
            let got = SshLocation::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(got, want, "{spec}");
            assert_eq!(got.display_host(), shown, "{spec}");
        }
        for (spec, why) in [
            ("ssh:/h/app", "ssh://[USER@]HOST"),
            ("ssh://h", "no image"),
            ("ssh://h/", "no image"),
            ("ssh:///app", "no host"),
            ("ssh://-oProxyCommand=x/app", "not a host"),
            ("ssh://h:0/app", "port \"0\""),
            ("ssh://h:70000/app", "port \"70000\""),
            ("ssh://h:+22/app", "port \"+22\""),
            ("ssh://h:/app", "port \"\""),
            ("ssh://[::1/app", "closing ]"),
            ("ssh://[::1]x/app", "after ]"),
            ("ssh://[nope]/app", "IPv6"),
            ("ssh://-l@h/app", "user"),
            ("ssh://@h/app", "user"),
            ("ssh://a b@h/app", "user"),
            ("ssh://h/-t", "image"),
            ("ssh://h/a b", "image"),
            ("ssh://h;rm/app", "not a host"),
        ] {
            let err = SshLocation::parse(spec).expect_err(spec).to_string();
            assert!(err.contains(why), "{spec}: {err}");
        }
    }

    #[test]
    fn quoting() {
        for (word, quoted) in [
            ("load", "load"),
            ("docker.io/library/app:1.0", "docker.io/library/app:1.0"),
            ("-", "-"),
            ("", "''"),
            ("a b", "'a b'"),
            ("$(reboot)", "'$(reboot)'"),
            ("it's", r"'it'\''s'"),
            ("a;b", "'a;b'"),
        ] {
            assert_eq!(shell_quote(word), quoted, "{word}");
        }
        let r = Remote {
            ssh: vec!["ssh".into()],
            location: loc(None, "h", None, "x"),
            hoist: "/opt/hoist --root /srv/s".into(),
        };
        assert_eq!(
            r.remote_command(&["load", "-t", "app:1", "x y"]),
            "/opt/hoist --root /srv/s load -t app:1 'x y'"
        );
    }

    /// A "remote" that is a local shell: `sh -c` stands in for ssh (it ignores ssh's options
    /// after `-c SCRIPT`, which sees them as `$0`, `$1`, …).
    fn fake(script: &str) -> Remote {
        Remote {
            ssh: vec!["sh".into(), "-c".into(), script.into()],
            location: loc(None, "far", None, "x"),
            hoist: "hoist".into(),
        }
    }

    #[test]
    fn outcomes() {
        // stdout and stdin counted; stderr prefixed with the host.
        let ex = fake("cat; echo warn >&2")
            .capture(&["inventory"], b"hello", 100)
            .unwrap();
        assert_eq!((ex.sent, ex.received), (5, 5));
        assert_eq!(ex.stdout, b"hello");
        assert_eq!(ex.stderr, "far: warn");
        // Too long an answer.
        let err = fake("echo 0123456789").capture(&[], b"", 4).unwrap_err();
        assert!(
            err.to_string()
                .contains("far: the answer of `` is larger than 4 bytes"),
            "{err}"
        );
        // The far shell's 127: hoist is not there.
        let err = fake("echo 'sh: 1: hoist: not found' >&2; exit 127")
            .capture(&["inventory"], b"", 10)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "hoist not found on far: give --remote-hoist: far: sh: 1: hoist: not found"
        );
        // ssh's own failure.
        let err = fake("echo 'Connection refused' >&2; exit 255")
            .capture(&[], b"", 10)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ssh to far failed (exit status: 255): far: Connection refused"
        );
        // The far hoist's failure, with what it said.
        let err = fake("echo 'hoist: error: No such image: x' >&2; exit 1")
            .capture(&["save", "x"], b"", 10)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "hoist save x on far failed (exit status: 1): far: hoist: error: No such image: x"
        );
        // A local failure while the far side is still busy: ssh is killed, the local error wins.
        let err = fake("cat /dev/zero")
            .receive(&[], b"", |r| {
                let mut b = [0u8; 10];
                r.read_exact(&mut b).map_err(|source| Error::Read {
                    what: "x".into(),
                    source,
                })?;
                Err::<(), _>(Error::InvalidArchive("bad".into()))
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid archive: bad");
        // Sending: a local failure kills ssh; the far side's complaint is not the cause.
        let err = fake("cat >/dev/null; echo 'truncated' >&2; exit 1")
            .send(&["load"], |w| {
                w.write_all(b"part").unwrap();
                Err::<(), _>(Error::InvalidArchive("local".into()))
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid archive: local");
        // Sending to a far side that died: its error, not the broken pipe.
        let err = fake("echo 'hoist: error: bad' >&2; exit 1")
            .send(&["load"], |w| {
                let chunk = vec![0u8; 1 << 16];
                loop {
                    w.write_all(&chunk).map_err(|source| Error::Write {
                        what: "x".into(),
                        source,
                    })?;
                }
            })
            .map(|((), _)| ())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "hoist load on far failed (exit status: 1): far: hoist: error: bad"
        );
        // Sent bytes counted, the reply kept.
        let ((), ex) = fake("wc -c")
            .send(&["load"], |w| {
                w.write_all(&[7u8; 1000]).unwrap();
                Ok(())
            })
            .unwrap();
        assert_eq!(ex.sent, 1000);
        assert_eq!(String::from_utf8_lossy(&ex.stdout).trim(), "1000");
    }
}
