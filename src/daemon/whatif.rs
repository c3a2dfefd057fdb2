//! What-if on the stored tickets, and the gate every mapping reload passes.
//!
//! A valid edit of the mapping files is billed against the mapping in
//! force over the months it can still move money in (the closed ones within
//! `billing.correction_months`, and the open ones). When money moves in a
//! closed period the edit is **held**: the mapping in force stays, the
//! change is stored with its diff (`status` shows it, the metric
//! `contract_bridge_mapping_changes_held` counts it) until `contract-bridge
//! apply-mapping` (or the review page) accepts it; the next reload check
//! then applies it. An edit that moves only open periods applies at once,
//! logged with its total delta. Every version in force is stored with its
//! files, so a restarted daemon (or the next `run --once`) compares the
//! next edit with what was in force, not with nothing.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use engine::ContractBook;
use engine::money::Money;
use engine::period::Month;
use engine::whatif::WhatIf;
use store::MappingFiles;

use super::{Bridge, CycleError, GoodMapping};

/// The files that make a mapping version: a file, or a folder's `*.yaml`,
/// `*.yml` and the `*.ics` calendars they may name; `(name, content)` by name.
pub fn mapping_files(path: &Path) -> Result<MappingFiles, String> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))
    };
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if path.is_file() {
        return Ok(vec![(name(path), read(path)?)]);
    }
    let mut files: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| format!("{}: cannot list: {e}", path.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|x| x == "yaml" || x == "yml" || x == "ics")
        })
        .collect();
    files.sort();
    files.iter().map(|p| Ok((name(p), read(p)?))).collect()
}

/// Loads a stored mapping version from its files, written to a private
/// temporary folder for the mapping loader and removed after.
pub fn load_files(files: &MappingFiles, hash: &str) -> Result<mapping::Loaded, String> {
    let dir = std::env::temp_dir().join(format!(
        "contract-bridge-mapping-{}-{hash}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let loaded = (|| {
        for (name, text) in files {
            // Names come from our own store; nothing may leave the folder.
            if name.contains('/') || name.contains('\\') || name.starts_with('.') {
                return Err(format!(
                    "stored mapping file name `{name}` is not a plain name"
                ));
            }
            std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))?;
        }
        mapping::load(&dir).map_err(|d| d.to_string())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    loaded
}

/// What a reload check decided.
pub(super) enum Verdict {
    /// Bring the new mapping into force; the summary is what it moves.
    Apply {
        summary: serde_json::Value,
        open_delta: Money,
        accepted: bool,
    },
    /// Keep the mapping in force; the change is stored as held.
    Hold(store::MappingChange),
}

/// The summary stored with a change and shown by `status`.
fn summary(closed: &WhatIf, open: &WhatIf) -> serde_json::Value {
    serde_json::json!({
        "closed_total_delta": closed.total_delta,
        "open_total_delta": open.total_delta,
        "closed": closed.changes,
        "open": open.changes,
    })
}

impl Bridge {
    /// The months a mapping change can still move money in at `now`: from
    /// `billing.correction_months` before the current month (not before
    /// `billing.first_period`) through the current month.
    pub fn whatif_months(&self, now: DateTime<Utc>) -> Result<Vec<Month>, CycleError> {
        let first = self.first_period()?;
        let last = Month::containing(now, chrono_tz::UTC);
        let from = first.max(last.back(self.settings.billing.correction_months + 1));
        Ok(from.through(last).collect())
    }

    /// Bills the stored tickets for `months` under `old` and `new` (each
    /// with the cards and banks sold through accounting systems) and diffs them.
    pub async fn whatif(
        &self,
        old: &ContractBook,
        new: &ContractBook,
        months: &[Month],
    ) -> Result<WhatIf, CycleError> {
        let (tickets, _) = self.all_stored_tickets().await?;
        let old = self.book_with_sales(old).await?;
        let new = self.book_with_sales(new).await?;
        let months = months.to_vec();
        tokio::task::spawn_blocking(move || {
            engine::whatif::diff_books(&old, &new, &tickets, &months, None)
        })
        .await?
        .map_err(|(period, e)| CycleError::Bill {
            period,
            message: e.to_string(),
        })
    }

    /// Splits a diff into the customer periods already closed and the open ones.
    pub async fn split_closed(&self, w: WhatIf) -> Result<(WhatIf, WhatIf), CycleError> {
        let (mut closed, mut open) = (WhatIf::default(), WhatIf::default());
        for c in w.changes {
            let side = if self
                .store
                .is_closed(c.customer.as_str(), &c.period.to_string())
                .await?
            {
                &mut closed
            } else {
                &mut open
            };
            side.total_delta += c.delta;
            side.changes.push(c);
        }
        Ok((closed, open))
    }

    /// The mapping in force: the one in memory, else the last version
    /// stored as in force (a restarted daemon, `run --once`).
    pub async fn live_mapping(&self) -> Result<Option<Arc<GoodMapping>>, CycleError> {
        if let Some(m) = self.mapping() {
            return Ok(Some(m));
        }
        let Some(v) = self.store.mapping_in_force().await? else {
            return Ok(None);
        };
        let (files, hash) = (v.files.clone(), v.hash.clone());
        let loaded = tokio::task::spawn_blocking(move || load_files(&files, &hash))
            .await?
            .map_err(|reason| CycleError::StoredMappingUnloadable {
                hash: v.hash.clone(),
                reason,
            })?;
        // The hash the files had at their path, as `mapping_sha256` takes it.
        let path = &self.settings.mapping.path;
        let mut named: Vec<(String, Vec<u8>)> = v
            .files
            .iter()
            .filter(|(name, _)| name.ends_with(".yaml") || name.ends_with(".yml"))
            .map(|(name, text)| {
                let at = if path.is_file() {
                    path.clone()
                } else {
                    path.join(name)
                };
                (at.display().to_string(), text.clone().into_bytes())
            })
            .collect();
        named.sort();
        Ok(Some(Arc::new(GoodMapping {
            book: loaded.book,
            sources: loaded.sources,
            accounts: loaded.accounts,
            review: loaded.review,
            sha256: crate::review::mapping_files_sha256(named),
            hash: v.hash,
        })))
    }

    /// Decides whether the valid mapping `m` comes into force now.
    pub(super) async fn mapping_verdict(
        &self,
        m: &GoodMapping,
        live: Option<&GoodMapping>,
        now: DateTime<Utc>,
    ) -> Result<Verdict, CycleError> {
        if self.store.mapping_accepted(&m.hash).await? {
            return Ok(Verdict::Apply {
                summary: serde_json::json!({}),
                open_delta: Money::default(),
                accepted: true,
            });
        }
        let Some(live) = live.filter(|l| l.hash != m.hash) else {
            // The first mapping ever, or the one in force itself.
            return Ok(Verdict::Apply {
                summary: serde_json::json!({}),
                open_delta: Money::default(),
                accepted: false,
            });
        };
        let months = self.whatif_months(now)?;
        let w = self.whatif(&live.book, &m.book, &months).await?;
        let (closed, open) = self.split_closed(w).await?;
        let summary = summary(&closed, &open);
        if !closed.moves_money() {
            return Ok(Verdict::Apply {
                summary,
                open_delta: open.total_delta,
                accepted: false,
            });
        }
        let version = self.mapping_version(m, summary).await?;
        let held = self.store.hold_mapping_change(&version, now).await?;
        Ok(Verdict::Hold(held))
    }
}

impl Bridge {
    /// A change held: logged at warn and audited once, counted in the
    /// metric; the mapping in force stays (a restarted daemon takes the
    /// stored version in force into memory).
    pub(super) async fn mapping_held(
        &self,
        m: &GoodMapping,
        held: &store::MappingChange,
        live: Option<Arc<GoodMapping>>,
        now: DateTime<Utc>,
    ) -> Result<(), CycleError> {
        let first_sight =
            self.held.read().ok().and_then(|h| h.clone()).as_deref() != Some(m.hash.as_str());
        if let Ok(mut h) = self.held.write() {
            *h = Some(m.hash.clone());
        }
        if self.mapping().is_none()
            && let Some(live) = live
            && let Ok(mut slot) = self.mapping.write()
        {
            *slot = Some(live);
        }
        self.metrics.set_mapping_valid(true);
        let pending = self.store.pending_mapping_changes().await?;
        self.metrics
            .set_mapping_changes_held(pending.iter().filter(|c| c.status == "held").count());
        let closed_delta = held.summary["closed_total_delta"].clone();
        let open_delta = held.summary["open_total_delta"].clone();
        if first_sight {
            tracing::warn!(
                id = held.id,
                hash = %m.hash,
                closed_delta = %closed_delta,
                "the mapping change to {} is held, not applied: it moves money in a closed period ({} in closed periods, {} in open ones); see `contract-bridge diff --live` and accept it with `contract-bridge apply-mapping --id {}`",
                self.settings.mapping.path.display(),
                closed_delta.as_str().unwrap_or_default(),
                open_delta.as_str().unwrap_or_default(),
                held.id
            );
        }
        // Audited once per change: when its row was made now.
        if held.created_at == store::instant(now) {
            self.store
                .audit(&store::AuditEntry {
                    at: now,
                    actor: "daemon".into(),
                    action: "mapping_held".into(),
                    subject: self.settings.mapping.path.display().to_string(),
                    detail: serde_json::json!({
                        "id": held.id,
                        "hash": m.hash,
                        "closed_total_delta": closed_delta,
                        "open_total_delta": open_delta,
                    }),
                })
                .await?;
        }
        Ok(())
    }

    /// The mapping `m` as a change stores it: its files read again from
    /// the configured path.
    async fn mapping_version(
        &self,
        m: &GoodMapping,
        summary: serde_json::Value,
    ) -> Result<store::MappingVersion, CycleError> {
        let path = self.settings.mapping.path.clone();
        let files = tokio::task::spawn_blocking(move || mapping_files(&path))
            .await?
            .map_err(CycleError::MappingInvalid)?;
        Ok(store::MappingVersion {
            path: self.settings.mapping.path.display().to_string(),
            hash: m.hash.clone(),
            files,
            summary,
        })
    }

    /// A change applied: its files stored as the version in force, audited,
    /// and logged with the delta it moves in open periods.
    pub(super) async fn mapping_in_force_now(
        &self,
        m: &GoodMapping,
        summary: serde_json::Value,
        open_delta: Money,
        accepted: bool,
        now: DateTime<Utc>,
    ) -> Result<(), CycleError> {
        let version = self.mapping_version(m, summary).await?;
        self.store.mapping_applied(&version, now).await?;
        let (subject, summary) = (version.path, version.summary);
        let pending = self.store.pending_mapping_changes().await?;
        self.metrics
            .set_mapping_changes_held(pending.iter().filter(|c| c.status == "held").count());
        let detail = if accepted {
            serde_json::json!({ "hash": m.hash, "accepted": true })
        } else {
            serde_json::json!({
                "hash": m.hash,
                "open_total_delta": open_delta,
                "open": summary.get("open").cloned().unwrap_or_default(),
            })
        };
        tracing::info!(
            hash = %m.hash,
            open_delta = %open_delta,
            accepted,
            "mapping {} in force{}",
            subject,
            if accepted {
                " (accepted)".to_owned()
            } else {
                format!("; open periods move by {open_delta}")
            }
        );
        // An accepted change coming into force is recorded as
        // `mapping_loaded` with its hash by `audit_mapping`.
        if !accepted {
            self.store
                .audit(&store::AuditEntry {
                    at: now,
                    actor: "daemon".into(),
                    action: "mapping_applied".into(),
                    subject,
                    detail,
                })
                .await?;
        }
        Ok(())
    }
}

impl Bridge {
    /// `check --config` (issue 17): every code of the mapping's
    /// `accounts.<target>` sections checked against what the target's API
    /// lists (chart of accounts, items, tax rates), through the daemon's
    /// transport. Each problem names the file, line and key, and the valid
    /// codes. A target whose API lists nothing is not asked.
    pub async fn check_accounts(
        &self,
        accounts: &std::collections::BTreeMap<String, mapping::TargetAccounts>,
    ) -> Result<Vec<String>, CycleError> {
        use connectors::accounting::CodeKind;
        let mut errors = Vec::new();
        for (target, ta) in accounts {
            let Some(config) = self.settings.targets.get(target) else {
                let known: Vec<&str> = self.settings.targets.keys().map(String::as_str).collect();
                errors.push(ta.origin.error(format!(
                    "no target `{target}` in the configuration; its targets: {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
                continue;
            };
            let Some(api) = config.accounting() else {
                continue;
            };
            let mut listed: std::collections::BTreeMap<
                CodeKind,
                Vec<connectors::accounting::ListedCode>,
            > = std::collections::BTreeMap::new();
            self.outbox.transport().new_pass(target);
            for (kind, request) in api.code_lists() {
                let asked = |e: connectors::ConnectorError| {
                    CycleError::Accounting(format!(
                        "{target}: the {} list could not be read: {e}",
                        kind.key()
                    ))
                };
                let answer = self.call(target, api, request).await.map_err(asked)?;
                let codes = self
                    .forget_token_on_401(target, api.read_codes(kind, &answer))
                    .map_err(asked)?;
                listed.insert(kind, codes);
            }
            for (what, code) in ta.codes() {
                let kind = match what {
                    "account" => CodeKind::Account,
                    "item" => CodeKind::Item,
                    _ => CodeKind::Tax,
                };
                let Some(valid) = listed.get(&kind) else {
                    continue;
                };
                if valid.iter().any(|c| c.code == code.code) {
                    continue;
                }
                errors.push(code.origin.error(format!(
                    "`{}` is not {} {what} code of {} (target `{target}`); valid: {}",
                    code.code,
                    if what == "tax" { "a" } else { "an" },
                    api.system(),
                    valid_list(valid)
                )));
            }
            // A rate written beside a tax code must be the system's rate of it.
            let lines = std::iter::once(&ta.defaults).chain(ta.kinds.values());
            for l in lines {
                let (Some(tax), Some((rate, origin))) = (&l.tax, &l.tax_rate) else {
                    continue;
                };
                let theirs = listed
                    .get(&CodeKind::Tax)
                    .and_then(|v| v.iter().find(|c| c.code == tax.code))
                    .and_then(|c| c.rate);
                if let Some(theirs) = theirs.filter(|t| t.normalize() != rate.normalize()) {
                    errors.push(origin.error(format!(
                        "{} has `{}` at {} %, not {} %: correct the rate or the tax code",
                        api.system(),
                        tax.code,
                        theirs.normalize(),
                        rate.normalize()
                    )));
                }
            }
        }
        errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        Ok(errors.iter().map(ToString::to_string).collect())
    }
}

/// The valid codes, with their names, cut short past 40.
fn valid_list(valid: &[connectors::accounting::ListedCode]) -> String {
    if valid.is_empty() {
        return "none (the list is empty)".to_owned();
    }
    let mut shown: Vec<String> = valid
        .iter()
        .take(40)
        .map(|c| {
            if c.name.is_empty() {
                c.code.clone()
            } else {
                format!("{} ({})", c.code, c.name)
            }
        })
        .collect();
    if valid.len() > 40 {
        shown.push(format!("… ({} in all)", valid.len()));
    }
    shown.join(", ")
}
