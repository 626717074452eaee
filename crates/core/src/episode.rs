//! What the KPI engine needs to know about an episode, and the NCP_CR priority groups.

use crate::date::Date;
use serde::Serialize;

/// An inclusive reporting period; the cohort is every episode referred in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// First day.
    pub from: Date,
    /// Last day (inclusive).
    pub to: Date,
}

impl Period {
    /// The period as people read it: "1 April 2025 to 31 March 2026".
    pub fn long(&self) -> String {
        format!("{} to {}", self.from.long(), self.to.long())
    }

    /// The last complete UK financial year (1 April – 31 March) before `today`.
    pub fn last_financial_year(today: Date) -> Period {
        Period::financial_year_of(today).earlier(1)
    }

    /// The UK financial year (1 April – 31 March) that `d` falls in.
    pub fn financial_year_of(d: Date) -> Period {
        let (y, m, _) = d.ymd();
        let start = if m >= 4 { y } else { y - 1 };
        Period {
            from: Date::from_ymd(start, 4, 1).unwrap_or(d),
            to: Date::from_ymd(start + 1, 3, 31).unwrap_or(d),
        }
    }

    /// The same period `years` earlier (29 February becomes 28 February in other years).
    pub fn earlier(&self, years: i32) -> Period {
        let shift = |d: Date| {
            let (y, m, day) = d.ymd();
            Date::from_ymd(y - years, m, day)
                .or_else(|| Date::from_ymd(y - years, m, 28))
                .unwrap_or(d)
        };
        Period {
            from: shift(self.from),
            to: shift(self.to),
        }
    }

    /// Whether a date falls in the period.
    pub fn contains(&self, d: Date) -> bool {
        self.from <= d && d <= self.to
    }
}

/// The NCP_CR priority group of an episode (kpis.md), derived from event and treatment.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum PriorityGroup {
    /// Coronary artery bypass graft.
    Cabg,
    /// Myocardial infarction treated with PCI.
    MiPci,
    /// PCI without MI.
    Pci,
    /// Myocardial infarction, medically managed.
    Mi,
    /// Heart failure.
    HeartFailure,
    /// Everything else.
    Other,
}

impl PriorityGroup {
    /// The groups a programme can offer (KPI 2), in the spec's order.
    pub const OFFERED: [PriorityGroup; 5] = [
        PriorityGroup::Mi,
        PriorityGroup::MiPci,
        PriorityGroup::Pci,
        PriorityGroup::Cabg,
        PriorityGroup::HeartFailure,
    ];

    /// Derives the group; the rules are checked in the order of kpis.md.
    pub fn of(initiating_event: &str, treatment: &str) -> PriorityGroup {
        let mi = matches!(
            initiating_event,
            "mi_stemi" | "mi_nstemi" | "mi_unspecified"
        );
        match (mi, treatment) {
            (_, "cabg") => PriorityGroup::Cabg,
            (true, "pci") => PriorityGroup::MiPci,
            (false, "pci") => PriorityGroup::Pci,
            (true, "medical") => PriorityGroup::Mi,
            _ if initiating_event == "heart_failure" => PriorityGroup::HeartFailure,
            _ => PriorityGroup::Other,
        }
    }

    /// The group's name as the NCP_CR writes it, for pages and reports.
    pub fn label(self) -> &'static str {
        match self {
            PriorityGroup::Cabg => "CABG",
            PriorityGroup::MiPci => "MI/PCI",
            PriorityGroup::Pci => "PCI",
            PriorityGroup::Mi => "MI",
            PriorityGroup::HeartFailure => "Heart failure",
            PriorityGroup::Other => "Other",
        }
    }

    /// The code used in files and JSON.
    pub fn code(self) -> &'static str {
        match self {
            PriorityGroup::Cabg => "cabg",
            PriorityGroup::MiPci => "mi_pci",
            PriorityGroup::Pci => "pci",
            PriorityGroup::Mi => "mi",
            PriorityGroup::HeartFailure => "heart_failure",
            PriorityGroup::Other => "other",
        }
    }

    /// Parses a code (as in the programmes file's `offers`).
    pub fn parse(code: &str) -> Option<PriorityGroup> {
        [Self::OFFERED.as_slice(), &[PriorityGroup::Other]]
            .concat()
            .into_iter()
            .find(|g| g.code().eq_ignore_ascii_case(code.trim()))
    }
}

/// The facts of one episode that the seven KPIs read.
#[derive(Clone, Debug, PartialEq)]
pub struct KpiEpisode {
    /// Index of the episode's programme in the programme list it was loaded with.
    pub programme: usize,
    /// Decides the cohort.
    pub referral_date: Date,
    /// Start of core CR (`started` when present).
    pub core_start: Option<Date>,
    /// End of core CR.
    pub core_end: Option<Date>,
    /// Assessment 1.
    pub assessment1: Option<Date>,
    /// Assessment 2.
    pub assessment2: Option<Date>,
    /// Status is `completed`.
    pub completed: bool,
    /// Priority group.
    pub group: PriorityGroup,
}

/// Bytes per episode in [`KpiEpisode::encode`]'s packed form.
pub const PACKED_BYTES: usize = 22;

/// The age band at the event, as kpis.md defines them for inequalities.
pub fn age_band(age: Option<i64>) -> &'static str {
    match age {
        Some(a) if a < 50 => "<50",
        Some(a) if a < 60 => "50-59",
        Some(a) if a < 70 => "60-69",
        Some(a) if a < 80 => "70-79",
        Some(_) => "80+",
        None => "not known",
    }
}

/// The broad ethnic group of an NHS ethnic category letter (dataset.md), for inequalities.
pub fn ethnic_group(letter: Option<&str>) -> &'static str {
    match letter.map(str::trim) {
        Some("A" | "B" | "C") => "White",
        Some("D" | "E" | "F" | "G") => "Mixed",
        Some("H" | "J" | "K" | "L") => "Asian or Asian British",
        Some("M" | "N" | "P") => "Black or Black British",
        Some("R" | "S") => "Other",
        Some("Z") => "Not stated",
        _ => "Not known",
    }
}

impl PriorityGroup {
    const ALL: [PriorityGroup; 6] = [
        PriorityGroup::Cabg,
        PriorityGroup::MiPci,
        PriorityGroup::Pci,
        PriorityGroup::Mi,
        PriorityGroup::HeartFailure,
        PriorityGroup::Other,
    ];
}

impl KpiEpisode {
    /// The KPI facts of a valid episode record (`None` without a referral date).
    pub fn of_record(rec: &crate::Record, programme: usize) -> Option<KpiEpisode> {
        use crate::Col;
        Some(KpiEpisode {
            programme,
            referral_date: rec.date(Col::ReferralDate)?,
            core_start: rec.date(Col::CoreStartDate),
            core_end: rec.date(Col::CoreEndDate),
            assessment1: rec.date(Col::Assessment1Date),
            assessment2: rec.date(Col::Assessment2Date),
            completed: rec.text(Col::Status) == Some("completed"),
            group: PriorityGroup::of(
                rec.text(Col::InitiatingEvent).unwrap_or_default(),
                rec.text(Col::Treatment).unwrap_or_default(),
            ),
        })
    }

    /// Appends the episode's facts (not its programme) in a fixed 22-byte little-endian form:
    /// referral date, core start, core end, assessment 1, assessment 2 (days since 1970,
    /// `i32::MIN` for none), completed, priority group. A store keeps each programme's facts
    /// packed like this so the KPIs read a few bytes per episode instead of a row.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let day = |d: Option<Date>| d.map_or(i32::MIN, Date::days).to_le_bytes();
        out.extend_from_slice(&self.referral_date.days().to_le_bytes());
        for d in [
            self.core_start,
            self.core_end,
            self.assessment1,
            self.assessment2,
        ] {
            out.extend_from_slice(&day(d));
        }
        out.push(u8::from(self.completed));
        out.push(
            PriorityGroup::ALL
                .iter()
                .position(|g| *g == self.group)
                .unwrap_or(5) as u8,
        );
    }

    /// The referral date of one episode's packed facts (as [`KpiEpisode::encode`] wrote
    /// them); `None` if there are not enough bytes.
    pub fn referral_of(packed: &[u8]) -> Option<Date> {
        let day: [u8; 4] = packed.get(..4)?.try_into().ok()?;
        Some(Date::from_days(i32::from_le_bytes(day)))
    }

    /// Reads facts written by [`KpiEpisode::encode`], giving each the programme index
    /// `programme` and keeping those `keep` accepts. `None` if the bytes are not such facts.
    pub fn decode(
        bytes: &[u8],
        programme: usize,
        mut keep: impl FnMut(&KpiEpisode) -> bool,
        out: &mut Vec<KpiEpisode>,
    ) -> Option<()> {
        if !bytes.len().is_multiple_of(PACKED_BYTES) {
            return None;
        }
        for c in bytes.chunks_exact(PACKED_BYTES) {
            let int = |i: usize| i32::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
            let day = |i: usize| Some(int(i)).filter(|d| *d != i32::MIN).map(Date::from_days);
            let e = KpiEpisode {
                programme,
                referral_date: Date::from_days(int(0)),
                core_start: day(4),
                core_end: day(8),
                assessment1: day(12),
                assessment2: day(16),
                completed: match c[20] {
                    0 => false,
                    1 => true,
                    _ => return None,
                },
                group: *PriorityGroup::ALL.get(usize::from(c[21]))?,
            };
            if keep(&e) {
                out.push(e);
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_facts_round_trip() {
        let d = |n| Some(Date::from_days(n));
        let all: Vec<KpiEpisode> = PriorityGroup::ALL
            .iter()
            .enumerate()
            .map(|(i, g)| KpiEpisode {
                programme: 3,
                referral_date: Date::from_days(19_000 + i as i32),
                core_start: d(19_010).filter(|_| i % 2 == 0),
                core_end: d(19_070).filter(|_| i % 3 == 0),
                assessment1: d(-5),
                assessment2: None,
                completed: i % 2 == 1,
                group: *g,
            })
            .collect();
        let mut bytes = Vec::new();
        all.iter().for_each(|e| e.encode(&mut bytes));
        assert_eq!(bytes.len(), all.len() * PACKED_BYTES);
        let mut back = Vec::new();
        KpiEpisode::decode(&bytes, 3, |_| true, &mut back).unwrap();
        assert_eq!(back, all);
        back.clear();
        KpiEpisode::decode(&bytes, 3, |e| e.completed, &mut back).unwrap();
        assert_eq!(back.len(), 3);
        assert!(KpiEpisode::decode(&bytes[1..], 3, |_| true, &mut back).is_none());
    }

    #[test]
    fn priority_groups_in_spec_order() {
        assert_eq!(PriorityGroup::of("mi_stemi", "cabg"), PriorityGroup::Cabg);
        assert_eq!(
            PriorityGroup::of("heart_failure", "cabg"),
            PriorityGroup::Cabg
        );
        assert_eq!(PriorityGroup::of("mi_nstemi", "pci"), PriorityGroup::MiPci);
        assert_eq!(
            PriorityGroup::of("stable_angina", "pci"),
            PriorityGroup::Pci
        );
        assert_eq!(
            PriorityGroup::of("heart_failure", "pci"),
            PriorityGroup::Pci
        );
        assert_eq!(
            PriorityGroup::of("mi_unspecified", "medical"),
            PriorityGroup::Mi
        );
        assert_eq!(
            PriorityGroup::of("heart_failure", "medical"),
            PriorityGroup::HeartFailure
        );
        assert_eq!(
            PriorityGroup::of("heart_failure", "icd_crt"),
            PriorityGroup::HeartFailure
        );
        assert_eq!(
            PriorityGroup::of("mi_stemi", "icd_crt"),
            PriorityGroup::Other
        );
        assert_eq!(
            PriorityGroup::of("arrhythmia", "medical"),
            PriorityGroup::Other
        );
        assert_eq!(PriorityGroup::parse("MI_PCI"), Some(PriorityGroup::MiPci));
    }
}
