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
    /// The last complete UK financial year (1 April – 31 March) before `today`.
    pub fn last_financial_year(today: Date) -> Period {
        let (y, m, _) = today.ymd();
        let end_year = if m >= 4 { y } else { y - 1 };
        Period {
            from: Date::from_ymd(end_year - 1, 4, 1).unwrap_or(today),
            to: Date::from_ymd(end_year, 3, 31).unwrap_or(today),
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

#[cfg(test)]
mod tests {
    use super::*;

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
