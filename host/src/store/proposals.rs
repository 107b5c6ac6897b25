//! Proposals: goals an agent drafted with `kazi propose`, waiting for a person to
//! approve or reject them. A proposal moves `proposed` → `approved` | `rejected`, and
//! nothing else; proposing the same idea again re-drafts a `proposed` or `rejected`
//! one but never touches an `approved` one.

use std::fmt;

use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, now_ms};

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    Proposed,
    Approved,
    Rejected,
}

impl ProposalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Proposed => "proposed",
            ProposalStatus::Approved => "approved",
            ProposalStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "proposed" => ProposalStatus::Proposed,
            "approved" => ProposalStatus::Approved,
            "rejected" => ProposalStatus::Rejected,
            _ => return None,
        })
    }
}

impl fmt::Display for ProposalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A drafted goal, as `kazi propose` stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProposal {
    /// `prop-<slug>-<hash12>`, deterministic for the idea and the workspace.
    pub reference: String,
    pub idea: String,
    pub goal_id: String,
    /// The goal file as the agent wrote it (without `[scope] workspace`).
    pub goal_text: String,
    /// Why the goal is vacuous (every predicate passed when it was drafted), if it is.
    pub vacuous_reason: Option<String>,
    /// The canonical workspace the goal was drafted for and evaluated in.
    pub workspace: String,
}

/// A proposal read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub reference: String,
    pub idea: String,
    pub goal_id: String,
    pub goal_text: String,
    pub status: ProposalStatus,
    pub vacuous_reason: Option<String>,
    pub workspace: String,
    /// Where `kazi approve` wrote the goal file (approved proposals only).
    pub goal_path: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// What [`Store::save_proposal`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// A new proposal.
    Created,
    /// An existing proposal got the new draft; it had this status before (now `proposed`).
    Updated { previous: ProposalStatus },
}

const COLUMNS: &str = "ref, idea, goal_id, goal_text, status, vacuous_reason, workspace, goal_path,
     created_at_ms, updated_at_ms";

/// A row with its status still to decode (outside the rusqlite closure, so the error
/// can name the database).
fn row(r: &Row<'_>) -> rusqlite::Result<(Proposal, String)> {
    Ok((
        Proposal {
            reference: r.get(0)?,
            idea: r.get(1)?,
            goal_id: r.get(2)?,
            goal_text: r.get(3)?,
            status: ProposalStatus::Proposed,
            vacuous_reason: r.get(5)?,
            workspace: r.get(6)?,
            goal_path: r.get(7)?,
            created_at_ms: r.get(8)?,
            updated_at_ms: r.get(9)?,
        },
        r.get(4)?,
    ))
}

impl Store {
    fn decode_proposal(&self, (mut p, status): (Proposal, String)) -> Result<Proposal, StoreError> {
        p.status = ProposalStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            path: self.path.clone(),
            what: format!("status of proposal `{}`", p.reference),
            message: format!("unknown status `{status}`"),
        })?;
        Ok(p)
    }

    /// Store a draft under its ref: a new proposal, or a new draft of a `proposed` or
    /// `rejected` one (which becomes `proposed` again, keeping its creation time). An
    /// `approved` proposal is never overwritten: that is a [`StoreError::ProposalStatus`].
    pub fn save_proposal(&mut self, new: &NewProposal) -> Result<Saved, StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            action: "record a proposal",
            source,
        };
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let existing: Option<(String, Option<String>)> = tx
            .query_row(
                "SELECT status, goal_path FROM proposals WHERE ref = ?1",
                [&new.reference],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(err)?;
        let saved = match existing {
            None => {
                tx.execute(
                    "INSERT INTO proposals (ref, idea, goal_id, goal_text, status, vacuous_reason,
                                            workspace, created_at_ms, updated_at_ms)
                     VALUES (?1, ?2, ?3, ?4, 'proposed', ?5, ?6, ?7, ?7)",
                    params![
                        new.reference,
                        new.idea,
                        new.goal_id,
                        new.goal_text,
                        new.vacuous_reason,
                        new.workspace,
                        now,
                    ],
                )
                .map_err(err)?;
                Saved::Created
            }
            Some((status, goal_path)) => {
                let previous =
                    ProposalStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                        path: path.clone(),
                        what: format!("status of proposal `{}`", new.reference),
                        message: format!("unknown status `{status}`"),
                    })?;
                if previous == ProposalStatus::Approved {
                    return Err(StoreError::ProposalStatus {
                        path,
                        reference: new.reference.clone(),
                        status: previous,
                        action: "drafted again",
                        goal_path,
                    });
                }
                tx.execute(
                    "UPDATE proposals SET idea = ?2, goal_id = ?3, goal_text = ?4,
                            status = 'proposed', vacuous_reason = ?5, workspace = ?6,
                            goal_path = NULL, updated_at_ms = ?7
                     WHERE ref = ?1",
                    params![
                        new.reference,
                        new.idea,
                        new.goal_id,
                        new.goal_text,
                        new.vacuous_reason,
                        new.workspace,
                        now,
                    ],
                )
                .map_err(err)?;
                Saved::Updated { previous }
            }
        };
        tx.commit().map_err(err)?;
        Ok(saved)
    }

    /// The proposal with exactly this ref, if any.
    pub fn find_proposal(&self, reference: &str) -> Result<Option<Proposal>, StoreError> {
        let raw = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM proposals WHERE ref = ?1"),
                [reference],
                row,
            )
            .optional()
            .map_err(self.sql("read a proposal"))?;
        raw.map(|r| self.decode_proposal(r)).transpose()
    }

    /// The proposal `ref_or_prefix` names: an exact ref, or a prefix that matches
    /// exactly one proposal.
    pub fn proposal(&self, ref_or_prefix: &str) -> Result<Proposal, StoreError> {
        let unknown = || StoreError::UnknownProposal {
            path: self.path.clone(),
            reference: ref_or_prefix.to_owned(),
        };
        if ref_or_prefix.is_empty() {
            return Err(unknown());
        }
        if let Some(p) = self.find_proposal(ref_or_prefix)? {
            return Ok(p);
        }
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM proposals WHERE substr(ref, 1, length(?1)) = ?1
                 ORDER BY ref LIMIT 6"
            ))
            .map_err(self.sql("look up a proposal"))?;
        let mut raws = stmt
            .query_map([ref_or_prefix], row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql("look up a proposal"))?;
        match raws.len() {
            0 => Err(unknown()),
            1 => self.decode_proposal(raws.remove(0)),
            _ => {
                let mut candidates: Vec<String> =
                    raws.into_iter().map(|(p, _)| p.reference).take(5).collect();
                if candidates.len() == 5 {
                    candidates.push("…".into());
                }
                Err(StoreError::AmbiguousProposal {
                    path: self.path.clone(),
                    prefix: ref_or_prefix.to_owned(),
                    candidates,
                })
            }
        }
    }

    /// Every proposal (with `status`, when given), most recently updated first.
    pub fn list_proposals(
        &self,
        status: Option<ProposalStatus>,
    ) -> Result<Vec<Proposal>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM proposals WHERE ?1 IS NULL OR status = ?1
                 ORDER BY updated_at_ms DESC, ref"
            ))
            .map_err(self.sql("list the proposals"))?;
        let raws = stmt
            .query_map([status.map(ProposalStatus::as_str)], row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql("list the proposals"))?;
        raws.into_iter().map(|r| self.decode_proposal(r)).collect()
    }

    /// `proposed` → `approved`, recording where the goal file was written.
    pub fn approve_proposal(
        &mut self,
        reference: &str,
        goal_path: &str,
    ) -> Result<Proposal, StoreError> {
        self.decide(
            reference,
            ProposalStatus::Approved,
            Some(goal_path),
            "approved",
        )
    }

    /// `proposed` → `rejected`.
    pub fn reject_proposal(&mut self, reference: &str) -> Result<Proposal, StoreError> {
        self.decide(reference, ProposalStatus::Rejected, None, "rejected")
    }

    fn decide(
        &mut self,
        reference: &str,
        to: ProposalStatus,
        goal_path: Option<&str>,
        action: &'static str,
    ) -> Result<Proposal, StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            action: "record a decision on a proposal",
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let changed = tx
            .execute(
                "UPDATE proposals SET status = ?2, goal_path = ?3, updated_at_ms = ?4
                 WHERE ref = ?1 AND status = 'proposed'",
                params![reference, to.as_str(), goal_path, now_ms()],
            )
            .map_err(err)?;
        if changed == 0 {
            drop(tx);
            let current =
                self.find_proposal(reference)?
                    .ok_or_else(|| StoreError::UnknownProposal {
                        path: self.path.clone(),
                        reference: reference.to_owned(),
                    })?;
            return Err(StoreError::ProposalStatus {
                path: self.path.clone(),
                reference: current.reference,
                status: current.status,
                action,
                goal_path: current.goal_path,
            });
        }
        tx.commit().map_err(err)?;
        self.find_proposal(reference)?
            .ok_or_else(|| StoreError::UnknownProposal {
                path: self.path.clone(),
                reference: reference.to_owned(),
            })
    }
}

/// The next step for a proposal that is not `proposed`, for [`StoreError::ProposalStatus`].
pub(super) fn status_hint(
    status: ProposalStatus,
    action: &str,
    reference: &str,
    goal_path: Option<&str>,
) -> String {
    let again = if action == "drafted again" {
        "; to draft another goal, word the idea differently"
    } else {
        ""
    };
    match status {
        ProposalStatus::Approved => match goal_path {
            Some(p) => {
                format!("; hint: its goal file is {p}, and `kazi run {reference}` runs it{again}")
            }
            None => format!("; hint: `kazi run {reference}` runs it{again}"),
        },
        ProposalStatus::Rejected => {
            "; hint: `kazi propose` the same idea again for a new draft".to_owned()
        }
        ProposalStatus::Proposed => format!("; hint: `kazi approve {reference}` approves it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kazi.db")).unwrap();
        (dir, store)
    }

    fn new(reference: &str, goal_id: &str) -> NewProposal {
        NewProposal {
            reference: reference.into(),
            idea: "add a healthz endpoint".into(),
            goal_id: goal_id.into(),
            goal_text: format!("id = \"{goal_id}\"\n"),
            vacuous_reason: None,
            workspace: "/tmp/ws".into(),
        }
    }

    #[test]
    fn a_proposal_round_trips_and_a_second_draft_updates_it() {
        let (_d, mut s) = store();
        assert_eq!(
            s.save_proposal(&new("prop-a-1", "one")).unwrap(),
            Saved::Created
        );
        let first = s.proposal("prop-a-1").unwrap();
        assert_eq!(first.status, ProposalStatus::Proposed);
        assert_eq!(first.goal_id, "one");
        assert_eq!(first.goal_path, None);
        let mut again = new("prop-a-1", "two");
        again.vacuous_reason = Some("every predicate passes already".into());
        assert_eq!(
            s.save_proposal(&again).unwrap(),
            Saved::Updated {
                previous: ProposalStatus::Proposed
            }
        );
        let second = s.proposal("prop-a-1").unwrap();
        assert_eq!(second.goal_id, "two");
        assert_eq!(second.created_at_ms, first.created_at_ms);
        assert_eq!(
            second.vacuous_reason.as_deref(),
            Some("every predicate passes already")
        );
        assert_eq!(s.list_proposals(None).unwrap().len(), 1);
    }

    #[test]
    fn transitions_are_proposed_to_approved_or_rejected_only() {
        let (_d, mut s) = store();
        s.save_proposal(&new("prop-a-1", "a")).unwrap();
        s.save_proposal(&new("prop-b-2", "b")).unwrap();
        let a = s.approve_proposal("prop-a-1", "/tmp/ws/a.toml").unwrap();
        assert_eq!(a.status, ProposalStatus::Approved);
        assert_eq!(a.goal_path.as_deref(), Some("/tmp/ws/a.toml"));
        let e = s.reject_proposal("prop-a-1").unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::ProposalStatus {
                    status: ProposalStatus::Approved,
                    ..
                }
            ),
            "{e}"
        );
        let msg = e.to_string();
        assert!(msg.contains("proposal `prop-a-1` is approved"), "{msg}");
        assert!(msg.contains("kazi run prop-a-1"), "{msg}");
        let e = s.approve_proposal("prop-a-1", "/x").unwrap_err();
        assert!(e.to_string().contains("can be approved"), "{e}");

        s.reject_proposal("prop-b-2").unwrap();
        let e = s.approve_proposal("prop-b-2", "/x").unwrap_err();
        assert!(e.to_string().contains("is rejected"), "{e}");
        // A rejected idea may be drafted again; an approved one may not.
        assert_eq!(
            s.save_proposal(&new("prop-b-2", "b")).unwrap(),
            Saved::Updated {
                previous: ProposalStatus::Rejected
            }
        );
        assert_eq!(
            s.proposal("prop-b-2").unwrap().status,
            ProposalStatus::Proposed
        );
        let e = s.save_proposal(&new("prop-a-1", "a")).unwrap_err();
        assert!(e.to_string().contains("is approved"), "{e}");
        assert_eq!(
            s.proposal("prop-a-1").unwrap().goal_path.as_deref(),
            Some("/tmp/ws/a.toml")
        );
    }

    #[test]
    fn refs_resolve_by_unique_prefix_and_lists_filter_by_status() {
        let (_d, mut s) = store();
        s.save_proposal(&new("prop-abc-1", "a")).unwrap();
        s.save_proposal(&new("prop-abd-2", "b")).unwrap();
        assert_eq!(s.proposal("prop-abc").unwrap().goal_id, "a");
        let e = s.proposal("prop-ab").unwrap_err();
        assert!(matches!(e, StoreError::AmbiguousProposal { .. }), "{e}");
        let e = s.proposal("prop-zz").unwrap_err();
        assert!(e.to_string().contains("kazi proposals"), "{e}");
        assert!(s.find_proposal("prop-abc").unwrap().is_none());
        s.reject_proposal("prop-abd-2").unwrap();
        let rejected = s.list_proposals(Some(ProposalStatus::Rejected)).unwrap();
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].reference, "prop-abd-2");
        assert_eq!(
            s.list_proposals(Some(ProposalStatus::Proposed)).unwrap()[0].reference,
            "prop-abc-1"
        );
    }
}
