//! Each programme's KPI facts, packed (22 bytes an episode, [`KpiEpisode::encode`]) so the
//! KPIs read a few bytes per episode instead of a row: locally by programme and month of
//! referral (written with each import), nationally by programme (packed again when read after
//! a programme's episodes changed).

use crate::db::{self, Db, Param};
use crate::{schema, Result, StoreError};
use crest_core::{Date, KpiEpisode, Programme};

/// Where packed facts are read from: the query of their rows (programme code, facts), the
/// query of how many bytes those rows hold, and the parameters of both.
pub(crate) struct Packed {
    size: &'static str,
    select: &'static str,
    params: Vec<Param<'static>>,
}

impl Packed {
    /// The national store's, by programme.
    pub(crate) fn national() -> Packed {
        Packed {
            size: "SELECT coalesce(sum(length(facts)), 0) FROM national_kpi_facts",
            select: "SELECT programme_code, facts FROM national_kpi_facts",
            params: Vec::new(),
        }
    }

    /// The local store's by programme and month, of the months `from..=to` touches: a year's
    /// KPIs read only that year's months.
    pub(crate) fn local(from: Date, to: Date) -> Packed {
        Packed {
            size: "SELECT coalesce(sum(length(facts)), 0) FROM kpi_month_facts \
                   WHERE month BETWEEN ?1 AND ?2",
            select:
                "SELECT programme_code, facts FROM kpi_month_facts WHERE month BETWEEN ?1 AND ?2",
            params: vec![Param::Int(month_of(from)), Param::Int(month_of(to))],
        }
    }
}

/// Packs the KPI facts of one stored row (the columns of the KPI query, as text) onto `out`.
/// Shared by both back ends.
pub(crate) fn pack_row(row: [Option<&str>; 8], out: &mut Vec<u8>) -> Result<()> {
    let [referral, start, end, a1, a2, status, event, treatment] = row;
    let date = |s: &str| Date::parse_iso(s).map_err(|e| StoreError::Corrupt(e.0));
    let opt = |s: Option<&str>| s.map(date).transpose();
    KpiEpisode {
        programme: 0,
        referral_date: date(referral.unwrap_or_default())?,
        core_start: opt(start)?,
        core_end: opt(end)?,
        assessment1: opt(a1)?,
        assessment2: opt(a2)?,
        completed: status == Some("completed"),
        group: crest_core::PriorityGroup::of(
            event.unwrap_or_default(),
            treatment.unwrap_or_default(),
        ),
    }
    .encode(out);
    Ok(())
}

/// The month a referral date is packed under: 202404 for April 2024.
pub(crate) fn month_of(d: Date) -> i64 {
    let (y, m, _) = d.ymd();
    i64::from(y) * 100 + i64::from(m)
}

/// The KPI facts of every episode referred in `from..=to` of the listed programmes.
pub(crate) fn read<D: Db + ?Sized>(
    db: &mut D,
    packed: &Packed,
    programmes: &[Programme],
    from: Date,
    to: Date,
) -> Result<Vec<KpiEpisode>> {
    // Room for every episode read at once: growing a list of ten million episodes by
    // doubling copied it again and again and, for a moment, held it twice.
    let stored = db::first(db, packed.size, &packed.params, |r| r.number(0))?;
    let mut out = Vec::with_capacity(
        usize::try_from(stored.unwrap_or(0)).unwrap_or(0) / crest_core::episode::PACKED_BYTES,
    );
    each(db, packed, programmes, from, to, &mut |some| {
        out.extend_from_slice(some)
    })?;
    Ok(out)
}

/// Hands the KPI facts of every episode referred in `from..=to` of the listed programmes to
/// `f`, one packed row at a time (a programme, or a programme's month), holding no more.
pub(crate) fn each<D: Db + ?Sized>(
    db: &mut D,
    packed: &Packed,
    programmes: &[Programme],
    from: Date,
    to: Date,
    f: &mut dyn FnMut(&[KpiEpisode]),
) -> Result<()> {
    let mut facts = Unpacker::new(programmes, from, to);
    db.each(packed.select, &packed.params, &mut |r| {
        let code = r.text(0)?.unwrap_or_default();
        facts.out.clear();
        facts.add(code, r.blob(1)?.unwrap_or_default())?;
        f(&facts.out);
        Ok(())
    })
}

/// Packs the KPI facts of one programme's stored episodes again, and stores them.
pub(crate) fn pack_local(db: &mut dyn Db, programme: &str) -> Result<()> {
    let mut facts = Vec::new();
    db.each(&schema::sql().kpi, &[Param::Text(programme)], &mut |r| {
        let mut cells = [None; 8];
        for (i, cell) in cells.iter_mut().enumerate() {
            *cell = r.text(i)?;
        }
        pack_row(cells, &mut facts)
    })?;
    store_local(db, programme, &facts)
}

/// Stores one programme's packed facts by month of referral in place of what was stored, and
/// moves its data version on.
pub(crate) fn store_local(db: &mut dyn Db, programme: &str, facts: &[u8]) -> Result<()> {
    let mut months: std::collections::BTreeMap<i64, Vec<u8>> = Default::default();
    for packed in facts.chunks_exact(crest_core::episode::PACKED_BYTES) {
        let referral = KpiEpisode::referral_of(packed).ok_or_else(|| {
            StoreError::Corrupt(format!("the KPI facts of programme {programme}"))
        })?;
        months
            .entry(month_of(referral))
            .or_default()
            .extend_from_slice(packed);
    }
    db.execute(
        "DELETE FROM kpi_month_facts WHERE programme_code = ?1",
        &[Param::Text(programme)],
    )?;
    for (month, packed) in &months {
        db.execute(
            "INSERT INTO kpi_month_facts (programme_code, month, facts) VALUES (?1, ?2, ?3)",
            &[
                Param::Text(programme),
                Param::Int(*month),
                Param::Blob(packed),
            ],
        )?;
    }
    db.execute(
        "INSERT INTO kpi_facts (programme_code, facts) VALUES (?1, ?2) \
         ON CONFLICT (programme_code) DO UPDATE SET facts = excluded.facts, \
         version = kpi_facts.version + 1",
        &[Param::Text(programme), Param::Blob(&[])],
    )?;
    Ok(())
}

/// Migration 12's data step: every programme's facts packed again by month.
pub(crate) fn pack_all_local(db: &mut dyn Db) -> Result<()> {
    let programmes = db::all(db, "SELECT programme_code FROM kpi_facts", &[], |r| {
        r.string(0)
    })?;
    for code in programmes {
        pack_local(db, &code)?;
    }
    Ok(())
}

/// Unpacks stored KPI facts into the episodes referred in `from..=to` of the listed programmes.
pub(crate) struct Unpacker<'a> {
    index: std::collections::HashMap<&'a str, usize>,
    from: Date,
    to: Date,
    /// The episodes so far.
    pub out: Vec<KpiEpisode>,
}

impl<'a> Unpacker<'a> {
    pub(crate) fn new(programmes: &'a [Programme], from: Date, to: Date) -> Unpacker<'a> {
        Unpacker {
            index: programmes
                .iter()
                .enumerate()
                .map(|(i, p)| (p.code.as_str(), i))
                .collect(),
            from,
            to,
            out: Vec::new(),
        }
    }

    /// Adds one programme's facts (ignored if the programme is not listed).
    pub(crate) fn add(&mut self, code: &str, facts: &[u8]) -> Result<()> {
        let Some(&p) = self.index.get(code) else {
            return Ok(());
        };
        let (from, to) = (self.from, self.to);
        KpiEpisode::decode(
            facts,
            p,
            |e| from <= e.referral_date && e.referral_date <= to,
            &mut self.out,
        )
        .ok_or_else(|| StoreError::Corrupt(format!("the KPI facts of programme {code}")))
    }
}
