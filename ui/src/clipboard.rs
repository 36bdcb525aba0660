//! Copy to the clipboard with the OSC 52 escape sequence: the terminal (or tmux with
//! `set-clipboard on`) puts the text on the clipboard, so it works over ssh with no helper
//! program and no X display.

use std::io::{self, Write};

use base64::Engine as _;

/// The OSC 52 sequence that sets the clipboard (`c`) to `text`, terminated by BEL (the
/// terminator xterm, kitty, iTerm2, WezTerm and tmux all accept).
pub fn osc52(text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("\x1b]52;c;{encoded}\x07")
}

/// Writes the OSC 52 sequence for `text` to `out` (the terminal backend) and flushes it.
pub fn copy(out: &mut impl Write, text: &str) -> io::Result<()> {
    out.write_all(osc52(text).as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_base64_between_osc52_and_bel() {
        assert_eq!(osc52("job_1"), "\x1b]52;c;am9iXzE=\x07");
    }
}
