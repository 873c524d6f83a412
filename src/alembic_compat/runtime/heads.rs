//! Alembic's `HeadMaintainer` and the step objects it reads (`RevisionStep`, `StampStep` in
//! `runtime/migration.py`): which `alembic_version` rows a step inserts, updates or deletes.
//!
//! Alembic keeps the heads in a Python `set` and, on a merge or unmerge, takes the row to
//! update from `list(set(...))`, so which parent row is updated and which deleted (and so the
//! order of statements in `--sql` output) depends on PYTHONHASHSEED. We take the revisions in
//! their written order: the last parent row is updated, the others deleted. The resulting rows
//! are the same either way.

use std::collections::HashSet;

use super::context::{MigrationContext, RuntimeError};
use super::pipeline::Issued;
use crate::alembic_compat::ops::Literal;
use crate::alembic_compat::revision::{Direction, RevisionMap, RevisionStep, StampStep};

/// One planned unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run a revision's `upgrade()` or `downgrade()`.
    Revision(RevisionStep),
    /// Move version rows without running anything.
    Stamp(StampStep),
}

fn format_as_comma(items: &[String]) -> String {
    items.join(", ")
}

impl Step {
    pub fn is_upgrade(&self) -> bool {
        match self {
            Step::Revision(r) => r.direction == Direction::Upgrade,
            Step::Stamp(s) => s.is_upgrade,
        }
    }

    /// `migration_fn.__name__`.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Revision(r) if r.direction == Direction::Upgrade => "upgrade",
            Step::Revision(_) => "downgrade",
            Step::Stamp(_) => "stamp_revision",
        }
    }

    /// `from_revisions_no_deps` / `to_revisions_no_deps`.
    fn ends_no_deps(&self, map: &RevisionMap) -> (Vec<String>, Vec<String>) {
        match self {
            Step::Revision(r) => {
                let node = &map.nodes()[r.revision];
                let this = vec![node.id().to_string()];
                let down = node.versioned_down_revisions().to_vec();
                if r.direction == Direction::Upgrade {
                    (down, this)
                } else {
                    (this, down)
                }
            }
            Step::Stamp(s) => (
                map.ids(&s.from),
                s.to.map(|t| map.ids(&[t])).unwrap_or_default(),
            ),
        }
    }

    /// `short_log`: `upgrade a -> b`.
    pub fn short_log(&self, map: &RevisionMap) -> String {
        let (from, to) = self.ends_no_deps(map);
        format!(
            "{} {} -> {}",
            self.name(),
            format_as_comma(&from),
            format_as_comma(&to)
        )
    }

    /// `str(step)`: the short log plus `, <doc>` when the revision has a docstring.
    pub fn describe(&self, map: &RevisionMap, doc: Option<&str>) -> String {
        match (self, doc) {
            (Step::Revision(_), Some(d)) if !d.is_empty() => {
                format!("{}, {d}", self.short_log(map))
            }
            _ => self.short_log(map),
        }
    }
}

/// The version rows as a step sees them (Alembic's `HeadMaintainer.heads` set), in the order
/// they were read or added.
#[derive(Debug, Clone, Default)]
pub struct HeadMaintainer {
    heads: Vec<String>,
}

fn assertion(what: &str) -> RuntimeError {
    RuntimeError::Python {
        class: "AssertionError",
        message: what.to_string(),
    }
}

impl HeadMaintainer {
    pub fn new(heads: &[String]) -> Self {
        let mut out: Vec<String> = Vec::new();
        for h in heads {
            if !out.contains(h) {
                out.push(h.clone());
            }
        }
        HeadMaintainer { heads: out }
    }

    pub fn heads(&self) -> &[String] {
        &self.heads
    }

    fn contains(&self, v: &str) -> bool {
        self.heads.iter().any(|h| h == v)
    }

    fn insert(&mut self, ctx: &mut MigrationContext, version: &str) -> Result<(), RuntimeError> {
        if self.contains(version) {
            return Err(assertion("version not in self.heads"));
        }
        self.heads.push(version.to_string());
        let sql = ctx.version_table().insert_sql(version, ctx.is_offline());
        ctx.execute(&sql)
    }

    fn remove(&mut self, version: &str) -> Result<(), RuntimeError> {
        let Some(i) = self.heads.iter().position(|h| h == version) else {
            return Err(RuntimeError::Python {
                class: "KeyError",
                message: format!("'{version}'"),
            });
        };
        self.heads.remove(i);
        Ok(())
    }

    fn delete(&mut self, ctx: &mut MigrationContext, version: &str) -> Result<(), RuntimeError> {
        self.remove(version)?;
        let sql = ctx.version_table().delete_sql();
        let n = ctx.execute_with_params_counted(&sql, &[Literal::Str(version.into())])?;
        if !ctx.is_offline() && n != 1 {
            return Err(RuntimeError::Command(format!(
                "Online migration expected to match one row when deleting '{version}' in '{}'; {n} found",
                ctx.version_table().table
            )));
        }
        Ok(())
    }

    fn update(
        &mut self,
        ctx: &mut MigrationContext,
        from: &str,
        to: &str,
    ) -> Result<(), RuntimeError> {
        if self.contains(to) {
            return Err(assertion("to_ not in self.heads"));
        }
        self.remove(from)?;
        self.heads.push(to.to_string());
        let sql = ctx.version_table().update_sql();
        let params = vec![Literal::Str(to.into()), Literal::Str(from.into())];
        let expected = format!(
            "Online migration expected to match one row when updating '{from}' to '{to}' in '{}'; ",
            ctx.version_table().table
        );
        // Along a branch, the next revision's statements need not wait for this row: once
        // the run queues statements, the row's update and its check are queued too.
        if ctx.defers_operations() && ctx.is_queueing() {
            let issued = Issued {
                step: ctx.step(),
                one_row: Some(expected),
                ..Issued::default()
            };
            return ctx
                .queue(sql, params, issued)
                .map_err(|f| f.error.to_runtime());
        }
        let n = ctx.execute_with_params_counted(&sql, &params)?;
        if !ctx.is_offline() && n != 1 {
            return Err(RuntimeError::Command(format!("{expected}{n} found")));
        }
        Ok(())
    }

    /// `update_to_step`: writes the row changes `step` implies and tracks the new heads.
    pub fn update_to_step(
        &mut self,
        step: &Step,
        map: &RevisionMap,
        ctx: &mut MigrationContext,
    ) -> Result<(), RuntimeError> {
        match step {
            Step::Revision(r) => self.revision_step(r, map, ctx),
            Step::Stamp(s) => self.stamp_step(s, map, ctx),
        }
    }

    fn ancestors_of_others(
        &self,
        map: &RevisionMap,
        exclude: &[String],
    ) -> Result<Option<HashSet<String>>, RuntimeError> {
        let others: Vec<usize> = self
            .heads
            .iter()
            .filter(|h| !exclude.contains(h))
            .map(|h| {
                map.lookup(h).ok_or_else(|| {
                    RuntimeError::Command(format!("Can't locate revision identified by '{h}'"))
                })
            })
            .collect::<Result<_, _>>()?;
        if others.is_empty() {
            return Ok(None);
        }
        let anc = map
            .get_ancestor_nodes(&others, false, true)
            .map_err(|e| RuntimeError::Command(e.to_string()))?;
        Ok(Some(map.ids(&anc).into_iter().collect()))
    }

    /// `RevisionStep._unmerge_to_revisions`.
    fn unmerge_to(
        &self,
        map: &RevisionMap,
        rev: &str,
        to_revisions: &[String],
    ) -> Result<Vec<String>, RuntimeError> {
        let ancestors: HashSet<String> = match self.ancestors_of_others(map, &[rev.to_string()])? {
            Some(a) => a,
            None => {
                let mut a = HashSet::new();
                for t in to_revisions {
                    let Some(i) = map.lookup(t) else { continue };
                    let anc = map
                        .get_ancestor_nodes(&[i], false, true)
                        .map_err(|e| RuntimeError::Command(e.to_string()))?;
                    a.extend(map.ids(&anc).into_iter().filter(|r| r != t));
                }
                a
            }
        };
        Ok(to_revisions
            .iter()
            .filter(|t| !ancestors.contains(*t))
            .cloned()
            .collect())
    }

    fn revision_step(
        &mut self,
        step: &RevisionStep,
        map: &RevisionMap,
        ctx: &mut MigrationContext,
    ) -> Result<(), RuntimeError> {
        let node = &map.nodes()[step.revision];
        let rev = node.id().to_string();
        let downrevs = map.ids(node.normalized_down_revisions());
        let upgrade = step.direction == Direction::Upgrade;
        let (from_revisions, to_revisions) = if upgrade {
            (downrevs.clone(), vec![rev.clone()])
        } else {
            (vec![rev.clone()], downrevs.clone())
        };
        let in_heads = |h: &HeadMaintainer, v: &str| h.contains(v);
        let heads_in_down = downrevs.iter().filter(|d| in_heads(self, d)).count();

        // should_delete_branch
        if !upgrade && in_heads(self, &rev) {
            let delete =
                downrevs.is_empty() || self.unmerge_to(map, &rev, &to_revisions)?.is_empty();
            if delete {
                tracing::debug!("branch delete {rev}");
                return self.delete(ctx, &rev);
            }
        }
        // should_create_branch
        if upgrade && (downrevs.is_empty() || heads_in_down == 0) {
            tracing::debug!("new branch insert {rev}");
            return self.insert(ctx, &rev);
        }
        // should_merge_branches
        if upgrade && downrevs.len() > 1 && heads_in_down > 1 {
            let from: Vec<String> = match self.ancestors_of_others(map, &from_revisions)? {
                Some(anc) => from_revisions
                    .iter()
                    .filter(|f| !anc.contains(*f))
                    .cloned()
                    .collect(),
                None => from_revisions.clone(),
            };
            let Some((update_from, deletes)) = from.split_last() else {
                return Err(RuntimeError::Python {
                    class: "IndexError",
                    message: "list index out of range".into(),
                });
            };
            tracing::debug!("merge, delete {deletes:?}, update {update_from} to {rev}");
            for d in deletes {
                self.delete(ctx, d)?;
            }
            return self.update(ctx, update_from, &rev);
        }
        // should_unmerge_branches
        if !upgrade && in_heads(self, &rev) && downrevs.len() > 1 {
            let to = self.unmerge_to(map, &rev, &to_revisions)?;
            let Some((update_to, inserts)) = to.split_last() else {
                return Err(RuntimeError::Python {
                    class: "IndexError",
                    message: "tuple index out of range".into(),
                });
            };
            tracing::debug!("unmerge, insert {inserts:?}, update {rev} to {update_to}");
            for i in inserts {
                self.insert(ctx, i)?;
            }
            return self.update(ctx, &rev, update_to);
        }
        // update_version_num
        let down = if downrevs.len() == 1 {
            downrevs[0].clone()
        } else {
            let hits: Vec<&String> = downrevs.iter().filter(|d| in_heads(self, d)).collect();
            match hits.as_slice() {
                [one] => (*one).clone(),
                _ => {
                    return Err(assertion(
                        "Can't do an UPDATE because downrevision is ambiguous",
                    ))
                }
            }
        };
        tracing::debug!("update {:?}", (&down, &rev));
        if upgrade {
            self.update(ctx, &down, &rev)
        } else {
            self.update(ctx, &rev, &down)
        }
    }

    fn stamp_step(
        &mut self,
        step: &StampStep,
        map: &RevisionMap,
        ctx: &mut MigrationContext,
    ) -> Result<(), RuntimeError> {
        let from = map.ids(&step.from);
        let to: Vec<String> = step.to.map(|t| map.ids(&[t])).unwrap_or_default();
        let single = |v: &[String], what: &str| -> Result<String, RuntimeError> {
            match v {
                [one] => Ok(one.clone()),
                _ => Err(assertion(what)),
            }
        };
        if !step.is_upgrade && step.branch_move {
            let v = single(&from, "len(self.from_) == 1")?;
            return self.delete(ctx, &v);
        }
        let from_missing = from.iter().any(|f| !self.contains(f));
        let to_missing = to.iter().any(|t| !self.contains(t));
        if step.is_upgrade && (step.branch_move || from_missing) && to_missing {
            let v = single(&to, "len(self.to_) == 1")?;
            return self.insert(ctx, &v);
        }
        if let (true, Some((update_from, deletes))) = (from.len() > 1, from.split_last()) {
            let update_to = to.first().cloned().ok_or_else(|| RuntimeError::Python {
                class: "IndexError",
                message: "tuple index out of range".into(),
            })?;
            for d in deletes {
                self.delete(ctx, d)?;
            }
            return self.update(ctx, update_from, &update_to);
        }
        let f = single(&from, "len(self.from_) == 1")?;
        let t = single(&to, "len(self.to_) == 1")?;
        self.update(ctx, &f, &t)
    }
}
