//! Standard output of the CLI's commands. A reader that goes away early (`| head -c 10`)
//! ends the output quietly: no "failed printing to stdout: Broken pipe" panic, and the
//! command's exit status is the one it would have had (a scan still fails on a secret, a
//! bundle that verified still exits 0).

use std::io::Write;

/// Why output stopped.
#[derive(Debug)]
pub enum Stopped {
    /// The reader closed the pipe: stop writing, say nothing.
    Closed,
    /// Any other write error (a full disk): said on stderr by [`line`].
    Failed,
}

/// Write `text` and a newline to stdout, flushed.
pub fn line(text: &str) -> Result<(), Stopped> {
    let mut out = std::io::stdout().lock();
    let res = out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match res {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Stopped::Closed),
        Err(e) => {
            eprintln!("echopilot: cannot write to stdout: {e}");
            Err(Stopped::Failed)
        }
    }
}

/// Write each of `lines`, stopping at the first that cannot be written.
pub fn lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<(), Stopped> {
    lines.into_iter().try_for_each(line)
}
