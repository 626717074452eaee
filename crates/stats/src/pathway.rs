//! Where a patient is on the cardiac rehabilitation pathway and what is due next: the summary a
//! nurse sees on opening an episode. The dates due follow the national standards of kpis.md:
//! core rehabilitation starts within the nation's wait for the patient's priority group
//! (KPIs 5 and 6), lasts at least the minimum duration (KPI 3), and assessment 2 comes no
//! more than 140 days after assessment 1 (KPI 7).

use crate::kpis::Thresholds;
use crest_core::{Col, Date, Nation, PriorityGroup, Record};

/// The most days from assessment 1 to assessment 2 that KPI 7 counts.
pub const ASSESSMENT2_WITHIN_DAYS: i32 = 140;

/// One stage of the pathway and the date it was reached, if it has been.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// The stage in a nurse's words.
    pub name: &'static str,
    /// When it happened; `None` while it has not.
    pub on: Option<Date>,
}

/// Something due for the patient, with the date it is due by and the standard behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct Due {
    /// What is due, as a nurse says it.
    pub what: &'static str,
    /// The earliest date it should happen on, where the standards set one.
    pub from: Option<Date>,
    /// The date it is due by, where the standards set one.
    pub by: Option<Date>,
    /// Why that date: the standard it comes from.
    pub why: String,
}

impl Due {
    /// Days past its date on `today` (0 if not late or undated).
    pub fn days_late(&self, today: Date) -> i32 {
        self.by.map_or(0, |by| today.days_since(by).max(0))
    }
}

/// The pathway of one episode.
#[derive(Clone, Debug, PartialEq)]
pub struct Pathway {
    /// Referral, assessment 1, start and end of core rehabilitation, assessment 2.
    pub stages: Vec<Stage>,
    /// What is due next, in pathway order; empty once the episode is closed.
    pub due: Vec<Due>,
    /// Whether the episode has ended (completed with assessment 2, or left the pathway).
    pub closed: bool,
}

/// Works out the pathway of an episode of a programme in `nation`.
pub fn pathway(rec: &Record, nation: Nation, thresholds: &Thresholds) -> Pathway {
    let date = |c| rec.date(c);
    let stages = vec![
        Stage {
            name: "Referred",
            on: date(Col::ReferralDate),
        },
        Stage {
            name: "Assessment 1",
            on: date(Col::Assessment1Date),
        },
        Stage {
            name: "Core rehabilitation started",
            on: date(Col::CoreStartDate),
        },
        Stage {
            name: "Core rehabilitation ended",
            on: date(Col::CoreEndDate),
        },
        Stage {
            name: "Assessment 2",
            on: date(Col::Assessment2Date),
        },
    ];
    let status = rec.text(Col::Status).unwrap_or("referred");
    let group = PriorityGroup::of(
        rec.text(Col::InitiatingEvent).unwrap_or_default(),
        rec.text(Col::Treatment).unwrap_or_default(),
    );
    let wait = thresholds.nations.get(&nation).and_then(|t| match group {
        PriorityGroup::Cabg => Some(t.wait_cabg),
        PriorityGroup::Mi | PriorityGroup::MiPci | PriorityGroup::Pci => Some(t.wait_mi_pci),
        _ => None,
    });
    let days = |d: f64| d.round() as i32;
    let start_by = match (date(Col::ReferralDate), wait) {
        (Some(r), Some(w)) => Some(r.add_days(days(w))),
        _ => None,
    };
    let start_why = match wait {
        Some(w) => format!(
            "Within {} days of referral, the national standard for {} patients",
            days(w),
            group.label()
        ),
        None => format!(
            "There is no national standard for the wait of {} patients",
            group.label()
        ),
    };
    let a2_by = date(Col::Assessment1Date).map(|a| a.add_days(ASSESSMENT2_WITHIN_DAYS));
    let a2_why = || {
        match a2_by {
        Some(_) => format!(
            "No more than {ASSESSMENT2_WITHIN_DAYS} days (20 weeks) after assessment 1, to count for the audit"
        ),
        None => "At the end of core rehabilitation".to_string(),
    }
    };
    let min_days = days(thresholds.duration);
    let mut due = Vec::new();
    let missing = |c| date(c).is_none();
    let closed = match status {
        "referred" => {
            if missing(Col::Assessment1Date) {
                due.push(Due {
                    what: "Assessment 1",
                    from: None,
                    by: start_by,
                    why: "Before core rehabilitation starts".to_string(),
                });
            }
            due.push(Due {
                what: "Start core rehabilitation",
                from: None,
                by: start_by,
                why: start_why,
            });
            false
        }
        "in_progress" => {
            if missing(Col::Assessment1Date) {
                due.push(Due {
                    what: "Assessment 1",
                    from: None,
                    by: date(Col::CoreStartDate),
                    why: "It should have been done before core rehabilitation started".to_string(),
                });
            }
            let end_from = date(Col::CoreStartDate).map(|s| s.add_days(min_days));
            if missing(Col::CoreEndDate) {
                due.push(Due {
                    what: "End core rehabilitation",
                    from: end_from,
                    by: None,
                    why: format!(
                        "Core rehabilitation should last at least {min_days} days ({} weeks), the national standard",
                        min_days / 7
                    ),
                });
            }
            if missing(Col::Assessment2Date) {
                due.push(Due {
                    what: "Assessment 2",
                    from: end_from,
                    by: a2_by,
                    why: a2_why(),
                });
            }
            false
        }
        "completed" if missing(Col::Assessment2Date) => {
            due.push(Due {
                what: "Assessment 2",
                from: None,
                by: a2_by,
                why: a2_why(),
            });
            false
        }
        _ => true,
    };
    Pathway {
        stages,
        due,
        closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crest_core::Value;

    fn d(s: &str) -> Date {
        Date::parse_iso(s).unwrap()
    }

    fn episode(event: &str, treatment: &str, status: &str, dates: &[(Col, &str)]) -> Record {
        let mut r = Record::new();
        r.set(Col::InitiatingEvent, Value::Text(event.into()));
        r.set(Col::Treatment, Value::Text(treatment.into()));
        r.set(Col::Status, Value::Text(status.into()));
        for (c, s) in dates {
            r.set(*c, Value::Date(d(s)));
        }
        r
    }

    #[test]
    fn a_referred_mi_pci_patient_in_england_is_due_to_start_within_33_days() {
        let r = episode(
            "mi_stemi",
            "pci",
            "referred",
            &[(Col::ReferralDate, "2026-11-02")],
        );
        let p = pathway(&r, Nation::England, &Thresholds::default());
        assert!(!p.closed);
        let what: Vec<&str> = p.due.iter().map(|d| d.what).collect();
        assert_eq!(what, ["Assessment 1", "Start core rehabilitation"]);
        // 2 November + 33 days = 5 December.
        assert_eq!(p.due[1].by, Some(d("2026-12-05")));
        assert!(p.due[1].why.contains("33 days") && p.due[1].why.contains("MI/PCI"));
        assert_eq!(p.due[1].days_late(d("2026-12-06")), 1);
        assert_eq!(p.due[1].days_late(d("2026-12-05")), 0);
        assert_eq!(p.stages[0].on, Some(d("2026-11-02")));
        assert_eq!(p.stages[1].on, None);
    }

    #[test]
    fn cabg_waits_follow_the_nation_and_other_groups_have_no_standard() {
        let r = episode(
            "stable_angina",
            "cabg",
            "referred",
            &[
                (Col::ReferralDate, "2026-01-10"),
                (Col::Assessment1Date, "2026-01-12"),
            ],
        );
        let p = pathway(&r, Nation::Wales, &Thresholds::default());
        assert_eq!(p.due.len(), 1, "assessment 1 is done");
        // Wales: 42 days for CABG.
        assert_eq!(p.due[0].by, Some(d("2026-02-21")));
        let r = episode(
            "stable_angina",
            "medical",
            "referred",
            &[(Col::ReferralDate, "2026-01-10")],
        );
        let p = pathway(&r, Nation::England, &Thresholds::default());
        assert_eq!(p.due[1].by, None);
        assert!(p.due[1].why.contains("no national standard"));
    }

    #[test]
    fn in_core_rehabilitation_the_end_and_assessment_2_fall_between_the_standards() {
        let r = episode(
            "mi_nstemi",
            "medical",
            "in_progress",
            &[
                (Col::ReferralDate, "2026-03-01"),
                (Col::Assessment1Date, "2026-03-10"),
                (Col::CoreStartDate, "2026-03-20"),
            ],
        );
        let p = pathway(&r, Nation::England, &Thresholds::default());
        let what: Vec<&str> = p.due.iter().map(|d| d.what).collect();
        assert_eq!(what, ["End core rehabilitation", "Assessment 2"]);
        // 20 March + 56 days = 15 May; 10 March + 140 days = 28 July.
        assert_eq!(p.due[0].from, Some(d("2026-05-15")));
        assert_eq!(p.due[1].from, Some(d("2026-05-15")));
        assert_eq!(p.due[1].by, Some(d("2026-07-28")));
    }

    #[test]
    fn closed_episodes_have_nothing_due_unless_assessment_2_is_missing() {
        for status in [
            "declined",
            "did_not_start",
            "dropped_out",
            "died",
            "transferred",
        ] {
            let r = episode("mi_stemi", "pci", status, &[]);
            let p = pathway(&r, Nation::England, &Thresholds::default());
            assert!(p.closed && p.due.is_empty(), "{status}");
        }
        let r = episode(
            "mi_stemi",
            "pci",
            "completed",
            &[(Col::Assessment1Date, "2026-03-10")],
        );
        let p = pathway(&r, Nation::England, &Thresholds::default());
        assert!(!p.closed);
        assert_eq!(p.due[0].what, "Assessment 2");
        assert_eq!(p.due[0].by, Some(d("2026-07-28")));
        let r = episode(
            "mi_stemi",
            "pci",
            "completed",
            &[
                (Col::Assessment1Date, "2026-03-10"),
                (Col::Assessment2Date, "2026-06-10"),
            ],
        );
        assert!(pathway(&r, Nation::England, &Thresholds::default()).closed);
    }
}
