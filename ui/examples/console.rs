//! Runs the console against a backend: `cargo run -p echopilot-ui --example console -- URL KEY [THEME]`.
//! (The `echopilot` binary is the normal way in; this is for trying the crate on its own.)

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let base_url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let key = args
        .next()
        .or_else(|| std::env::var("ECHOPILOT_KEY").ok())
        .unwrap_or_default();
    let theme = args.next().unwrap_or_else(|| "default".into());
    echopilot_ui::run_console(echopilot_ui::ConsoleOptions {
        base_url,
        key,
        tenant: None,
        theme,
        themes_dir: None,
        readonly: false,
        demo: false,
    })
    .await
}
