//! The async shell around [`App`]: terminal setup/teardown, the input thread, the tick task,
//! the effect executor, and a headless [`Harness`] for end-to-end tests.

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use crossterm::event::{self as ct, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::sync::mpsc;

use crate::app::{App, AppConfig};
use crate::client::Client;
use crate::event::{Effect, Event};
use crate::theme::{no_color_env, Theme};
use crate::ConsoleOptions;

/// Runs [`Effect`]s on tokio tasks and posts each answer back as one [`Event`].
#[derive(Clone)]
pub struct Executor {
    client: Client,
    tx: mpsc::Sender<Event>,
    /// Requests started; each one posts exactly one answer event.
    started: Arc<AtomicUsize>,
}

impl Executor {
    pub fn new(client: Client, tx: mpsc::Sender<Event>) -> Executor {
        Executor {
            client,
            tx,
            started: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Requests started so far (each answers with one `Fetched`/`Posted` event).
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    pub fn run(&self, effects: Vec<Effect>) {
        for e in effects {
            self.run_one(e);
        }
    }

    fn run_one(&self, effect: Effect) {
        let (client, tx) = (self.client.clone(), self.tx.clone());
        match effect {
            Effect::SetTenant(t) => client.set_tenant(t),
            // Only the event loop owns the terminal; it takes these out before `run`.
            Effect::CopyToClipboard(_) => {}
            Effect::Fetch { resource, path } => {
                self.started.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let result = client.get(&path).await;
                    let _ = tx
                        .send(Event::Fetched {
                            resource,
                            result,
                            at: Utc::now(),
                        })
                        .await;
                });
            }
            Effect::Post { op, path, body } => {
                self.started.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let result = client.post(&path, &body).await;
                    let _ = tx
                        .send(Event::Posted {
                            op,
                            result,
                            at: Utc::now(),
                        })
                        .await;
                });
            }
        }
    }
}

fn restore_terminal() -> io::Result<()> {
    disable_raw_mode()?;
    execute!(
        io::stdout(),
        ct::DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    )
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Leave raw mode and the alternate screen first so the message is readable.
            let _ = restore_terminal();
            previous(info);
        }));
    });
}

type Term = Terminal<CrosstermBackend<Stdout>>;

fn enter_terminal() -> anyhow::Result<Term> {
    install_panic_hook();
    enable_raw_mode().context("enabling raw mode (is stdout a terminal?)")?;
    // Mouse capture: clicks on tabs and rows, the wheel. Most terminals still select text
    // with Shift held while dragging.
    if let Err(e) = execute!(
        io::stdout(),
        EnterAlternateScreen,
        cursor::Hide,
        ct::EnableMouseCapture
    ) {
        let _ = restore_terminal();
        return Err(e.into());
    }
    match Terminal::new(CrosstermBackend::new(io::stdout())) {
        Ok(t) => Ok(t),
        Err(e) => {
            let _ = restore_terminal();
            Err(e.into())
        }
    }
}

/// Reads terminal input on a plain thread (crossterm's read blocks) until `stop` is set.
fn spawn_input(tx: mpsc::Sender<Event>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match ct::poll(Duration::from_millis(100)) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(_) => break,
            }
            let ev = match ct::read() {
                Ok(ct::Event::Key(k)) if k.kind != KeyEventKind::Release => Event::Key(k),
                Ok(ct::Event::Resize(w, h)) => Event::Resize(w, h),
                Ok(ct::Event::Mouse(m))
                    if matches!(
                        m.kind,
                        ct::MouseEventKind::Down(ct::MouseButton::Left)
                            | ct::MouseEventKind::ScrollDown
                            | ct::MouseEventKind::ScrollUp
                    ) =>
                {
                    Event::Mouse(m)
                }
                Ok(_) => continue,
                Err(_) => break,
            };
            if tx.blocking_send(ev).is_err() {
                break;
            }
        }
    })
}

pub(crate) async fn run(opts: ConsoleOptions) -> anyhow::Result<()> {
    let theme = Theme::load(&opts.theme, opts.themes_dir.as_deref(), no_color_env())?;
    let client = Client::new(&opts.base_url, &opts.key, opts.tenant.clone())?;
    let app = App::new(
        AppConfig {
            base_url: opts.base_url.clone(),
            tenant: opts.tenant.clone(),
            readonly: opts.readonly,
            demo: opts.demo,
        },
        theme,
        Utc::now(),
    );
    let mut term = enter_terminal()?;
    let result = event_loop(&mut term, app, client).await;
    let restored = restore_terminal();
    result?;
    restored?;
    Ok(())
}

async fn event_loop(term: &mut Term, mut app: App, client: Client) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    let stop = Arc::new(AtomicBool::new(false));
    let input = spawn_input(tx.clone(), stop.clone());
    let tick_tx = tx.clone();
    let ticker = tokio::spawn(async move {
        let mut iv = tokio::time::interval(Duration::from_secs(1));
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            iv.tick().await;
            if tick_tx.send(Event::Tick(Utc::now())).await.is_err() {
                break;
            }
        }
    });
    let exec = Executor::new(client, tx);
    let outcome: anyhow::Result<()> = async {
        term.draw(|f| crate::ui::draw(f, &app))?;
        while let Some(ev) = rx.recv().await {
            run_effects(term, &exec, app.handle_event(ev))?;
            // Coalesce a burst (key repeat, many answers) into one redraw.
            while let Ok(ev) = rx.try_recv() {
                run_effects(term, &exec, app.handle_event(ev))?;
            }
            if app.should_quit {
                break;
            }
            term.draw(|f| crate::ui::draw(f, &app))?;
            // Nothing waiting: finish deferred work (exact palette order) and show it.
            if rx.is_empty() && app.on_idle() {
                term.draw(|f| crate::ui::draw(f, &app))?;
            }
        }
        Ok(())
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    ticker.abort();
    let _ = tokio::task::spawn_blocking(move || input.join()).await;
    outcome
}

/// Runs effects: clipboard copies are written to the terminal here, the rest go to the
/// executor.
fn run_effects(term: &mut Term, exec: &Executor, effects: Vec<Effect>) -> anyhow::Result<()> {
    let mut rest = Vec::with_capacity(effects.len());
    for e in effects {
        match e {
            Effect::CopyToClipboard(text) => crate::clipboard::copy(term.backend_mut(), &text)?,
            other => rest.push(other),
        }
    }
    exec.run(rest);
    Ok(())
}

/// Drives an [`App`] against a real backend without a terminal: feed keys, let the effects
/// run, inspect `app` or render it. Ticks are only sent when asked, so tests stay deterministic.
pub struct Harness {
    pub app: App,
    exec: Executor,
    rx: mpsc::Receiver<Event>,
    /// Answer events handled so far; equal to `exec.started()` when nothing is outstanding.
    answered: usize,
}

impl Harness {
    /// Builds the app and client from console options (theme from the usual places).
    pub fn new(opts: &ConsoleOptions) -> anyhow::Result<Harness> {
        let theme = Theme::load(&opts.theme, opts.themes_dir.as_deref(), true)?;
        let client = Client::new(&opts.base_url, &opts.key, opts.tenant.clone())?;
        let (tx, rx) = mpsc::channel(1024);
        Ok(Harness {
            app: App::new(
                AppConfig {
                    base_url: opts.base_url.clone(),
                    tenant: opts.tenant.clone(),
                    readonly: opts.readonly,
                    demo: opts.demo,
                },
                theme,
                Utc::now(),
            ),
            exec: Executor::new(client, tx),
            rx,
            answered: 0,
        })
    }

    /// Handles one event and starts the effects it produces.
    pub fn dispatch(&mut self, ev: Event) {
        if matches!(ev, Event::Fetched { .. } | Event::Posted { .. }) {
            self.answered += 1;
        }
        let fx = self.app.handle_event(ev);
        self.exec.run(fx);
    }

    /// A clock tick at the current time (fetches whatever is due).
    pub fn tick(&mut self) {
        self.dispatch(Event::Tick(Utc::now()));
    }

    pub fn key(&mut self, code: KeyCode) {
        self.key_with(code, KeyModifiers::NONE);
    }

    pub fn key_with(&mut self, code: KeyCode, modifiers: KeyModifiers) {
        self.dispatch(Event::Key(KeyEvent::new(code, modifiers)));
    }

    /// Types each character as a key press.
    pub fn type_str(&mut self, s: &str) {
        for c in s.chars() {
            self.key(KeyCode::Char(c));
        }
    }

    /// Processes answers until no request is outstanding (or `timeout` passes).
    ///
    /// Every started request posts exactly one answer event, so "settled" is an exact
    /// count: answers handled == requests started (including requests that handling an
    /// answer started). No polling interval, no fixed sleep.
    pub async fn settle(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.answered < self.exec.started() {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(ev)) => self.dispatch(ev),
                Ok(None) => break,
                Err(_) => anyhow::bail!(
                    "{} request(s) still outstanding after {timeout:?}",
                    self.exec.started() - self.answered
                ),
            }
        }
        // What the event loop does when nothing is waiting.
        self.app.on_idle();
        Ok(())
    }

    /// Ticks and settles until `pred` holds (or `timeout` passes).
    pub async fn wait_until(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&App) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !pred(&self.app) {
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("condition not reached after {timeout:?}");
            }
            self.settle(timeout).await?;
            if pred(&self.app) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.tick();
        }
        Ok(())
    }

    /// The screen as text.
    pub fn render(&self, width: u16, height: u16) -> String {
        crate::ui::render_to_string(&self.app, width, height)
    }
}
