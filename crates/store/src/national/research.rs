//! What research and planning read from the national store: approved research projects, the
//! rows of an extract streamed column by column, and the facts aggregates count, streamed too
//! so that a million episodes never sit in memory at once.

use super::NationalStore;
use crate::db::Param;
use crate::{Result, StoreError};
use crest_core::Date;

/// An approved research project (privacy.md, "Research extracts").
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    /// Short id, e.g. `uptake-2025`.
    pub id: String,
    /// Title.
    pub title: String,
    /// Approval reference (ethics, CAG, the audit's own panel).
    pub approval: String,
    /// Approved fields (extract column names).
    pub fields: Vec<String>,
    /// User names of the researchers who may download.
    pub researchers: Vec<String>,
    /// First day extracts may be downloaded.
    pub valid_from: Date,
    /// Last day.
    pub valid_to: Date,
    /// Every combination of quasi-identifiers occurs at least this often.
    pub k: u32,
    /// The project's own re-keying secret (hex): patient keys of two projects never match.
    pub secret: String,
    /// When it was recorded (UTC).
    pub created_at: String,
}

impl Project {
    /// Whether `on` is inside the approval's validity.
    pub fn valid_on(&self, on: Date) -> bool {
        self.valid_from <= on && on <= self.valid_to
    }

    /// Whether `username` is named on the project.
    pub fn names(&self, username: &str) -> bool {
        self.researchers.iter().any(|r| r == username)
    }
}

/// What an aggregate reads of one national episode, borrowed from the row being read.
#[derive(Clone, Debug)]
pub struct FactRow<'a> {
    /// Programme code.
    pub programme: &'a str,
    /// Referral date.
    pub referral: Date,
    /// Sex code.
    pub sex: Option<&'a str>,
    /// Age at the event.
    pub age: Option<i64>,
    /// NHS ethnic category letter.
    pub ethnicity: Option<&'a str>,
    /// IMD quintile.
    pub imd: Option<i64>,
    /// Initiating event code.
    pub initiating_event: &'a str,
    /// Treatment code.
    pub treatment: &'a str,
    /// Delivery mode code.
    pub delivery_mode: Option<&'a str>,
    /// Service line code.
    pub pathway: Option<&'a str>,
    /// Start of core CR.
    pub core_start: Option<Date>,
    /// Status code.
    pub status: &'a str,
    /// The value of the requested numeric field.
    pub value: Option<f64>,
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn date(s: Option<&str>) -> Result<Option<Date>> {
    s.map(|s| Date::parse_iso(s).map_err(|e| StoreError::Corrupt(e.0)))
        .transpose()
}

const PROJECT_COLUMNS: &str =
    "project_id, title, approval, fields, researchers, valid_from, valid_to, k, secret, created_at";

impl NationalStore {
    /// Records a research project, or replaces one with the same id (keeping its secret, so
    /// its patient keys stay the same across downloads).
    pub fn put_project(&mut self, p: &Project) -> Result<()> {
        self.ready()?;
        let secret = match self.project(&p.id)? {
            Some(old) => old.secret,
            None => p.secret.clone(),
        };
        let k = i64::from(p.k);
        let (fields, researchers) = (p.fields.join(","), p.researchers.join(","));
        let (from, to) = (p.valid_from.to_string(), p.valid_to.to_string());
        const SQL: &str = "INSERT INTO research_projects (project_id, title, approval, fields, researchers, valid_from, \
            valid_to, k, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (project_id) DO UPDATE \
            SET title = excluded.title, approval = excluded.approval, fields = excluded.fields, researchers = excluded.researchers, \
            valid_from = excluded.valid_from, valid_to = excluded.valid_to, k = excluded.k";
        self.db.execute(
            SQL,
            &[
                Param::Text(&p.id),
                Param::Text(&p.title),
                Param::Text(&p.approval),
                Param::Text(&fields),
                Param::Text(&researchers),
                Param::Text(&from),
                Param::Text(&to),
                Param::Int(k),
                Param::Text(&secret),
                Param::Text(&p.created_at),
            ],
        )?;
        Ok(())
    }

    fn read_projects(&mut self, id: Option<&str>) -> Result<Vec<Project>> {
        self.ready()?;
        let sql = format!(
            "SELECT {PROJECT_COLUMNS} FROM research_projects {} ORDER BY project_id",
            if id.is_some() {
                "WHERE project_id = ?1"
            } else {
                ""
            }
        );
        let params: Vec<Param> = id.map(Param::Text).into_iter().collect();
        crate::db::all(self.db.as_mut(), &sql, &params, |r| {
            let day = |i| -> Result<Date> {
                date(r.text(i)?)?.ok_or_else(|| StoreError::Corrupt("project without dates".into()))
            };
            Ok(Project {
                id: r.string(0)?,
                title: r.string(1)?,
                approval: r.string(2)?,
                fields: split(&r.string(3)?),
                researchers: split(&r.string(4)?),
                valid_from: day(5)?,
                valid_to: day(6)?,
                k: r.int(7)?.unwrap_or(5).clamp(2, 1000) as u32,
                secret: r.string(8)?,
                created_at: r.string(9)?,
            })
        })
    }

    /// Every research project, by id.
    pub fn projects(&mut self) -> Result<Vec<Project>> {
        self.read_projects(None)
    }

    /// One research project.
    pub fn project(&mut self, id: &str) -> Result<Option<Project>> {
        Ok(self.read_projects(Some(id))?.pop())
    }

    /// Streams `columns` of every national episode (with its programme's nation and region
    /// available as the columns `nation` and `region`), every cell as text; `ordered`, in
    /// episode-key order (a keyed hash: an order that tells nothing about programme or arrival). Column names must be national episode columns (the caller checks them against
    /// the dictionary; anything else is refused here too).
    pub fn each_episode_cells(
        &mut self,
        columns: &[&str],
        ordered: bool,
        row: &mut dyn FnMut(&[Option<&str>]) -> Result<()>,
    ) -> Result<()> {
        self.ready()?;
        let known: Vec<&str> = super::national_fields().map(|f| f.name).collect();
        let mut select = Vec::new();
        for c in columns {
            select.push(match *c {
                "nation" => "p.nation".to_string(),
                "region" => "p.region".to_string(),
                "patient_key" => "e.patient_key".to_string(),
                c if known.contains(&c) => format!("CAST(e.{c} AS TEXT)"),
                c => return Err(StoreError::Refused(format!("{c} is not a national column"))),
            });
        }
        let sql = format!(
            "SELECT {} FROM national_episodes e JOIN programmes p ON p.programme_code = e.programme_code{}",
            select.join(", "),
            if ordered { " ORDER BY e.episode_key" } else { "" }
        );
        let width = columns.len();
        // A scan reads every page once: a page cache would only hold memory it never reads again.
        self.db.scanning(true)?;
        let done = self.db.each(&sql, &[], &mut |r| {
            // The cells borrow the row being read.
            let cells = (0..width)
                .map(|i| r.text(i))
                .collect::<Result<Vec<Option<&str>>>>()?;
            row(&cells)
        });
        self.db.scanning(false)?;
        done
    }

    /// Streams the facts of every national episode referred in `from..=to` (of `programmes`
    /// only, when given), with the value of the numeric field `value` when one is asked for.
    pub fn each_fact(
        &mut self,
        from: Date,
        to: Date,
        programmes: Option<&[String]>,
        value: Option<&str>,
        f: &mut dyn FnMut(&FactRow<'_>),
    ) -> Result<()> {
        self.ready()?;
        let value_column = match value {
            Some(v) if super::national_fields().any(|f| f.name == v) => v.to_string(),
            Some(v) => return Err(StoreError::Refused(format!("{v} is not a national field"))),
            None => "NULL".to_string(),
        };
        let sql = format!(
            "SELECT programme_code, referral_date, sex, age_at_event, ethnicity, imd_quintile, initiating_event, \
             treatment, delivery_mode, pathway, core_start_date, status, CAST({value_column} AS DOUBLE PRECISION) \
             FROM national_episodes WHERE referral_date >= ?1 AND referral_date <= ?2"
        );
        let keep: Option<std::collections::HashSet<&str>> =
            programmes.map(|p| p.iter().map(String::as_str).collect());
        let (from, to) = (from.to_string(), to.to_string());
        self.db
            .each(&sql, &[Param::Text(&from), Param::Text(&to)], &mut |r| {
                let programme = r.text(0)?.unwrap_or_default();
                if keep.as_ref().is_some_and(|k| !k.contains(programme)) {
                    return Ok(());
                }
                let Some(referral) = date(r.text(1)?)? else {
                    return Ok(());
                };
                f(&FactRow {
                    programme,
                    referral,
                    sex: r.text(2)?,
                    age: r.int(3)?,
                    ethnicity: r.text(4)?,
                    imd: r.int(5)?,
                    initiating_event: r.text(6)?.unwrap_or_default(),
                    treatment: r.text(7)?.unwrap_or_default(),
                    delivery_mode: r.text(8)?,
                    pathway: r.text(9)?,
                    core_start: date(r.text(10)?)?,
                    status: r.text(11)?.unwrap_or_default(),
                    value: r.real(12)?,
                });
                Ok(())
            })
    }
}
