//! `echopilot`: the EchoPilot OS binary. Wires the backend (and, with the console
//! issue, the ui) together behind one clap CLI.

mod cli;
mod console;
mod ctl;
mod demo;
mod evidence;
mod out;
mod security_cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
