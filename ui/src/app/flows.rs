//! Dialog flows: the palette, and verb → args form → dry-run → confirm → result (or a plain
//! call confirmed locally when the backend offers no verb for it).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::{json, Map, Value};

use super::{edit_line, App, AppConfig};
use crate::client::ClientError;
use crate::commands::{self, Action, Mode, PaletteAction};
use crate::event::{Effect, PostOp};
use crate::model::{DryRunResponse, Plan, Verb, VerbExt};
use crate::popups::palette::{Entry, EntryKind, PaletteState, Target};
use crate::popups::plan::{Kind, PlanDialog, Stage};
use crate::popups::result::ResultDialog;
use crate::popups::Popup;
use crate::resources::{TENANTS, VERBS};
use crate::tabs::Intent;

const OPS_COMMAND: &str = "/api/v1/ops/command";
/// Lines a PgDn moves the result view (its body is at most ~20 lines at 80×24).
const RESULT_PAGE: u16 = 15;

impl App {
    /// Carries out what a tab asked for.
    pub(super) fn run_intent(&mut self, intent: Intent) -> Vec<Effect> {
        match intent {
            Intent::Nothing => Vec::new(),
            Intent::Notify(m) => {
                self.notify(m);
                Vec::new()
            }
            Intent::Refetch(r) => self.refetch(r),
            Intent::Verb { name, args } => self.start_verb(name, args),
        }
    }

    // ------------------------------------------------------------ palette

    /// Everything the palette searches: verbs, console actions, tab entities, tenants.
    pub fn palette_entries(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        for v in self.visible_verbs() {
            out.push(
                Entry::new(
                    EntryKind::Verb,
                    v.name.clone(),
                    v.description.clone(),
                    Target::Verb(v.name.clone()),
                )
                .with_aliases(v.aliases.clone())
                .with_risk(v.risk.as_str()),
            );
        }
        for (label, detail, act) in commands::palette_actions(&self.tabs) {
            out.push(Entry::new(
                EntryKind::Action,
                label,
                detail,
                Target::Action(act),
            ));
        }
        for t in &self.tabs {
            t.palette_entries(&self.cache, &mut out);
        }
        for t in self
            .cache
            .get(TENANTS)
            .map(|l| l.tenants.as_slice())
            .unwrap_or(&[])
        {
            out.push(Entry::new(
                EntryKind::Tenant,
                t.id.clone(),
                format!("{}  switch tenant (X-Tenant-Id)", t.name),
                Target::Tenant(t.id.clone()),
            ));
        }
        out
    }

    pub(super) fn open_palette(&mut self) -> Vec<Effect> {
        self.popup = Some(Popup::Palette(PaletteState::new(self.palette_entries())));
        self.due_fetches()
    }

    fn palette_run(&mut self) -> Vec<Effect> {
        let Some(Popup::Palette(p)) = &self.popup else {
            return Vec::new();
        };
        let Some(target) = p.selected_entry().map(|e| e.target.clone()) else {
            return Vec::new();
        };
        self.popup = None;
        match target {
            // Arguments picked up from the selected row open in the form, so the operator
            // sees what was taken before the dry-run.
            Target::Verb(name) => {
                let prefill = match self.find_verb(&name) {
                    Some(v) => self.current().selection_args(v, &self.cache),
                    None => Map::new(),
                };
                let show_form = !prefill.is_empty();
                self.start_verb_with(&name, prefill, show_form)
            }
            Target::Action(PaletteAction::Tab(i)) => self.switch_tab(i),
            Target::Action(PaletteAction::Key(a)) => {
                let k = KeyEvent::new(KeyCode::Null, KeyModifiers::NONE);
                self.normal_action(a, &k)
            }
            Target::Entity { tab, key } => match self.tab_index(tab) {
                Some(i) => {
                    self.tabs[i].open_entity(&key, &self.cache);
                    self.switch_tab(i)
                }
                None => Vec::new(),
            },
            Target::Tenant(t) => self.switch_tenant(t),
        }
    }

    /// Switches `X-Tenant-Id`. Data of the previous tenant must not be shown under the new
    /// one: everything but the verb list (not tenant-scoped) is dropped.
    fn switch_tenant(&mut self, t: String) -> Vec<Effect> {
        let cfg = AppConfig {
            tenant: Some(t.clone()),
            ..self.config.clone()
        };
        let mut cache = std::mem::take(&mut self.cache);
        cache.retain_only(&[VERBS.res]);
        cache.entry_mut(VERBS.res).next_due = None;
        let current = self.current;
        *self = App::new(cfg, self.theme.clone(), self.now);
        self.cache = cache;
        self.current = current;
        self.notify(format!("Tenant switched to {t}."));
        let mut fx = vec![Effect::SetTenant(Some(t))];
        fx.extend(self.due_fetches());
        fx
    }

    // ------------------------------------------------------------ ops commands

    /// Starts the verb flow: args form if needed, else straight to the dry-run.
    pub fn start_verb(&mut self, name: &str, prefill: Map<String, Value>) -> Vec<Effect> {
        self.start_verb_with(name, prefill, false)
    }

    /// [`start_verb`](App::start_verb); with `show_form` the args form opens even when
    /// `prefill` already satisfies the schema.
    fn start_verb_with(
        &mut self,
        name: &str,
        prefill: Map<String, Value>,
        show_form: bool,
    ) -> Vec<Effect> {
        let Some(verb) = self.find_verb(name).cloned() else {
            // Risk comes from the server's registry only: without it nothing that changes
            // state is offered, let alone confirmed with a single key.
            self.notify(if self.cache.get(VERBS).is_none() {
                format!(
                    "Refused {name}: risk unknown until the server's verb list loads (r: refresh)"
                )
            } else if self.config.readonly {
                format!("Read-only console: {name} changes state and is disabled.")
            } else {
                format!("Verb {name} is not offered by this backend.")
            });
            return Vec::new();
        };
        let props = verb.arg_props();
        let satisfied = props
            .iter()
            .all(|(k, _, required)| !required || prefill.contains_key(k));
        if props.is_empty() || (!show_form && !prefill.is_empty() && satisfied) {
            return self.dry_run(verb, Value::Object(prefill));
        }
        let lines: Vec<String> = props
            .iter()
            .map(|(k, _, _)| {
                let v = prefill
                    .get(k)
                    .or_else(|| verb.default_for(k))
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default();
                format!("{k}={v}")
            })
            .collect();
        self.popup = Some(Popup::ArgsForm(Box::new(
            crate::popups::args::ArgsForm::new(verb, lines),
        )));
        Vec::new()
    }

    fn dry_run(&mut self, verb: Verb, args: Value) -> Vec<Effect> {
        let body = json!({"verb": verb.name, "args": args, "confirm": false});
        self.popup = Some(Popup::Plan(Box::new(PlanDialog::verb(verb, args))));
        vec![Effect::Post {
            op: PostOp::DryRun,
            path: OPS_COMMAND.into(),
            body,
        }]
    }

    pub(super) fn popup_key(
        &mut self,
        mode: Mode,
        action: Option<Action>,
        key: KeyEvent,
    ) -> Vec<Effect> {
        if action == Some(Action::Close) {
            self.popup = None;
            return Vec::new();
        }
        let Some(popup) = self.popup.as_mut() else {
            return Vec::new();
        };
        match (popup, mode) {
            (Popup::Palette(p), _) => match action {
                Some(Action::Up) => p.move_by(-1),
                Some(Action::Down) => p.move_by(1),
                Some(Action::PaletteRun) => return self.palette_run(),
                _ => {
                    if edit_line(&mut p.query, &key) {
                        p.refilter();
                    }
                }
            },
            (Popup::ArgsForm(f), _) => match action {
                Some(Action::Submit) => match f.parse() {
                    Ok(args) => {
                        let verb = f.verb.clone();
                        return self.dry_run(verb, args);
                    }
                    Err(e) => f.error = Some(e),
                },
                _ => {
                    f.error = None;
                    f.textarea.input(key);
                }
            },
            (Popup::Plan(d), _) if matches!(action, Some(Action::PageDown | Action::PageUp)) => {
                d.scroll_by(if action == Some(Action::PageDown) {
                    5
                } else {
                    -5
                });
            }
            (Popup::Plan(_), Mode::ConfirmLow) if action == Some(Action::Confirm) => {
                return self.confirm_plan();
            }
            (Popup::Plan(d), Mode::ConfirmHigh) => match action {
                Some(Action::NextField) => d.field = 1 - d.field.min(1),
                Some(Action::Confirm) => {
                    if let Stage::Ready(_) = &d.stage {
                        let name = d.verb_name().to_string();
                        if d.typed.trim() != name {
                            d.error =
                                Some(format!("Type the verb name {name} exactly to confirm."));
                        } else if d.reason.trim().is_empty() && d.field == 0 {
                            // Enter on a correct name moves on: the operator has not had a
                            // chance to type a reason yet, so there is nothing to complain of.
                            d.error = None;
                            d.field = 1;
                        } else if d.reason.trim().is_empty() {
                            d.error = Some("A reason is required for a high-risk verb.".into());
                        } else {
                            return self.confirm_plan();
                        }
                    }
                }
                _ => {
                    let field = if d.field == 0 {
                        &mut d.typed
                    } else {
                        &mut d.reason
                    };
                    if edit_line(field, &key) {
                        d.error = None;
                    }
                }
            },
            (Popup::Result(r), _) => match action {
                Some(Action::Up) => r.scroll = r.scroll.saturating_sub(1),
                Some(Action::Down) => r.scroll = r.scroll.saturating_add(1),
                Some(Action::PageDown) => r.scroll = r.scroll.saturating_add(RESULT_PAGE),
                Some(Action::PageUp) => r.scroll = r.scroll.saturating_sub(RESULT_PAGE),
                Some(Action::Top) => r.scroll = 0,
                // Clamped to the last page when drawn.
                Some(Action::Bottom) => r.scroll = u16::MAX,
                _ => {}
            },
            (Popup::Help { scroll }, _) => {
                let max = self.help_max_scroll.get();
                match action {
                    Some(Action::Up) => *scroll = scroll.saturating_sub(1),
                    Some(Action::Down) => *scroll = scroll.saturating_add(1).min(max),
                    Some(Action::PageDown) => *scroll = scroll.saturating_add(RESULT_PAGE).min(max),
                    Some(Action::PageUp) => *scroll = scroll.saturating_sub(RESULT_PAGE),
                    Some(Action::Top) => *scroll = 0,
                    Some(Action::Bottom) => *scroll = max,
                    _ => {}
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn confirm_plan(&mut self) -> Vec<Effect> {
        let Some(Popup::Plan(d)) = self.popup.as_mut() else {
            return Vec::new();
        };
        let Stage::Ready(plan) = &d.stage else {
            return Vec::new();
        };
        let plan = plan.clone();
        let Kind::Verb { verb, args } = &d.kind;
        let mut body = json!({
            "verb": verb.name,
            "args": args,
            "confirm": true,
            "plan_id": plan.plan_id,
        });
        if !d.reason.trim().is_empty() {
            body["reason"] = Value::from(d.reason.trim());
        }
        let effect = Effect::Post {
            op: PostOp::Confirm,
            path: OPS_COMMAND.into(),
            body,
        };
        d.stage = Stage::Confirming(plan);
        vec![effect]
    }

    pub(super) fn on_posted(
        &mut self,
        op: PostOp,
        result: Result<Value, ClientError>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Effect> {
        if at > self.now {
            self.now = at;
        }
        match (&op, &mut self.popup) {
            (PostOp::DryRun, Some(Popup::Plan(d))) if matches!(d.stage, Stage::Planning) => {
                let parsed = match result {
                    Ok(v) => serde_json::from_value::<DryRunResponse>(v)
                        .map_err(|e| ClientError::Decode(format!("dry-run answer: {e}"))),
                    Err(e) => Err(e),
                };
                match parsed {
                    Ok(v) => d.stage = Stage::Ready(Plan::from_dry_run(v)),
                    Err(e) => {
                        let title = format!("Dry-run of {} failed", d.verb_name());
                        self.popup = Some(Popup::Result(ResultDialog::from_result(title, Err(e))));
                    }
                }
                Vec::new()
            }
            // A dry-run answer for a dialog the operator already closed: nothing to show.
            (PostOp::DryRun, _) => Vec::new(),
            _ => {
                // Confirm/direct answers are always shown: the operator must learn what happened.
                let what = match &self.popup {
                    Some(Popup::Plan(d)) => d.verb_name().to_string(),
                    _ => "command".into(),
                };
                match result {
                    // A short answer is a flash line; a run it started is watched until it
                    // ends, then reported. Long or structured answers get the result view.
                    Ok(v) if flash_worthy(&v) => {
                        self.popup = None;
                        let inner = v.get("result").unwrap_or(&v);
                        let run_id = inner.get("run_id").and_then(Value::as_str);
                        let already = inner.get("already_running").and_then(Value::as_bool);
                        let mut parts = vec![match (run_id, already) {
                            (Some(_), Some(true)) => format!("{what}: already running"),
                            (Some(_), _) => format!("{what} started"),
                            (None, _) => format!("{what} done"),
                        }];
                        if let Some(id) = run_id {
                            parts.push(id.to_string());
                            let job = inner
                                .get("job")
                                .and_then(Value::as_str)
                                .unwrap_or(&what)
                                .to_string();
                            self.watched_runs.push(super::WatchedRun {
                                run_id: id.to_string(),
                                job,
                                since: self.now,
                            });
                        } else if let Some(o) = inner.as_object() {
                            parts.extend(o.iter().map(|(k, v)| match v {
                                Value::String(s) => format!("{k} {s}"),
                                other => format!("{k} {other}"),
                            }));
                        }
                        if let Some(seq) = crate::model::audit_seq(&v) {
                            parts.push(format!("audit #{seq}"));
                        }
                        self.notify(parts.join(" · "));
                    }
                    result => {
                        let ok = result.is_ok();
                        let title = format!("{what}: {}", if ok { "done" } else { "failed" });
                        self.popup = Some(Popup::Result(ResultDialog::from_result(title, result)));
                    }
                }
                // Something changed: refresh what is on screen and the audit head.
                self.refresh_now()
            }
        }
    }
}

/// Whether a confirmed command's answer fits a flash line: its `result` is absent or a flat
/// object of a few short scalars (a run id, a count). Anything else opens the result view.
fn flash_worthy(answer: &Value) -> bool {
    match answer.get("result") {
        None | Some(Value::Null) => true,
        // A started run: the flash names it and the run is followed until it ends.
        Some(Value::Object(o)) if o.get("run_id").is_some_and(Value::is_string) => true,
        Some(Value::Object(o)) => {
            o.len() <= 4
                && o.values().all(|v| match v {
                    Value::String(s) => s.chars().count() <= 40,
                    Value::Number(_) | Value::Bool(_) | Value::Null => true,
                    _ => false,
                })
        }
        Some(_) => false,
    }
}
