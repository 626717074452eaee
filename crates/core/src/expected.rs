//! Expected patients: how many people were eligible for cardiac rehabilitation, per programme
//! (or region), calendar quarter and condition, as a count of hospital episodes would give it.
//! Set against referrals they give case ascertainment (referred ÷ expected) and the uptake of
//! the eligible population (started ÷ expected).

use crate::{Date, Invalid, PriorityGroup};

/// The columns of an expected-patients file, in order; `region` may stand in place of
/// `programme_code`.
pub const COLUMNS: [&str; 4] = ["programme_code", "quarter", "condition", "expected"];

/// The most a file may say for one area, quarter and condition: more is a typing slip.
pub const MOST_EXPECTED: u32 = 1_000_000;

/// A calendar quarter: Q1 is January to March.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    /// The year.
    pub year: i32,
    /// 1 to 4.
    pub q: u32,
}

impl Quarter {
    /// A quarter written `YYYY-Qn` (`2024-Q3`).
    pub fn parse(s: &str) -> Result<Quarter, Invalid> {
        let bad = || {
            Invalid(format!("'{s}' is not a quarter: write the year and quarter as 2024-Q3 (Q1 is January to March)"))
        };
        let (y, q) = s.trim().split_once('-').ok_or_else(bad)?;
        let q = q.strip_prefix(['Q', 'q']).ok_or_else(bad)?;
        let (year, q): (i32, u32) = (y.parse().map_err(|_| bad())?, q.parse().map_err(|_| bad())?);
        if y.len() != 4 || !(1..=4).contains(&q) || !(1900..=2200).contains(&year) {
            return Err(bad());
        }
        Ok(Quarter { year, q })
    }

    /// The quarter a date falls in.
    pub fn of(d: Date) -> Quarter {
        let (year, month, _) = d.ymd();
        Quarter {
            year,
            q: (month - 1) / 3 + 1,
        }
    }

    /// Its first day.
    pub fn first_day(self) -> Date {
        Date::from_ymd(self.year, (self.q - 1) * 3 + 1, 1).unwrap_or_else(|| Date::from_days(0))
    }

    /// Its last day.
    pub fn last_day(self) -> Date {
        self.next().first_day().add_days(-1)
    }

    /// The quarter after it.
    pub fn next(self) -> Quarter {
        if self.q == 4 {
            Quarter {
                year: self.year + 1,
                q: 1,
            }
        } else {
            Quarter {
                q: self.q + 1,
                ..self
            }
        }
    }

    /// Whether it lies wholly from `from` to `to`.
    pub fn within(self, from: Date, to: Date) -> bool {
        self.first_day() >= from && self.last_day() <= to
    }
}

impl std::fmt::Display for Quarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-Q{}", self.year, self.q)
    }
}

/// The condition that made a patient eligible, as hospital episode counts group them. Each
/// patient counts once, in the first group that fits: bypass surgery, then a heart attack (with
/// or without a stent), then a stent without a heart attack, then heart failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Condition {
    /// Heart attack (MI), with or without PCI.
    Mi,
    /// PCI without a heart attack.
    Pci,
    /// Bypass surgery.
    Cabg,
    /// Heart failure.
    HeartFailure,
    /// Anything else.
    Other,
}

impl Condition {
    /// Every condition, in the order tables show them.
    pub const ALL: [Condition; 5] = [
        Condition::Mi,
        Condition::Pci,
        Condition::Cabg,
        Condition::HeartFailure,
        Condition::Other,
    ];

    /// The code in files: `mi`, `pci`, `cabg`, `heart_failure`, `other`.
    pub fn code(self) -> &'static str {
        match self {
            Condition::Mi => "mi",
            Condition::Pci => "pci",
            Condition::Cabg => "cabg",
            Condition::HeartFailure => "heart_failure",
            Condition::Other => "other",
        }
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            Condition::Mi => "Heart attack (MI)",
            Condition::Pci => "Stent without a heart attack (PCI)",
            Condition::Cabg => "Bypass surgery (CABG)",
            Condition::HeartFailure => "Heart failure",
            Condition::Other => "Other conditions",
        }
    }

    /// The condition of its code.
    pub fn parse(s: &str) -> Result<Condition, Invalid> {
        let s = s.trim();
        Condition::ALL
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Invalid(format!(
                    "'{s}' is not a condition: use one of {}",
                    Condition::ALL.map(Condition::code).join(", ")
                ))
            })
    }

    /// The condition of an episode, from its priority group.
    pub fn of(group: PriorityGroup) -> Condition {
        match group {
            PriorityGroup::Cabg => Condition::Cabg,
            PriorityGroup::MiPci | PriorityGroup::Mi => Condition::Mi,
            PriorityGroup::Pci => Condition::Pci,
            PriorityGroup::HeartFailure => Condition::HeartFailure,
            PriorityGroup::Other => Condition::Other,
        }
    }
}

/// Whose patients a figure counts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    /// One programme, by code.
    Programme(String),
    /// A region's population, by name (where counts are not split by programme).
    Region(String),
}

impl Area {
    /// `programme` or `region`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Area::Programme(_) => "programme",
            Area::Region(_) => "region",
        }
    }

    /// The programme's code or the region's name.
    pub fn name(&self) -> &str {
        match self {
            Area::Programme(c) | Area::Region(c) => c,
        }
    }

    /// The area from its stored kind and name.
    pub fn from_stored(kind: &str, name: &str) -> Option<Area> {
        match kind {
            "programme" => Some(Area::Programme(name.to_string())),
            "region" => Some(Area::Region(name.to_string())),
            _ => None,
        }
    }
}

/// The expected number of eligible patients of one area, quarter and condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Whose patients.
    pub area: Area,
    /// When they had their event.
    pub quarter: Quarter,
    /// What they had.
    pub condition: Condition,
    /// How many.
    pub count: u32,
}

impl Expected {
    /// One row of a file, checked: every problem with it, in words, at once.
    pub fn parse(
        area: Area,
        quarter: &str,
        condition: &str,
        expected: &str,
    ) -> Result<Expected, Vec<Invalid>> {
        let mut problems = Vec::new();
        if area.name().trim().is_empty() {
            problems.push(Invalid(format!(
                "the {} is empty",
                match area {
                    Area::Programme(_) => "programme code",
                    Area::Region(_) => "region",
                }
            )));
        }
        let quarter = Quarter::parse(quarter).map_err(|e| problems.push(e)).ok();
        let condition = Condition::parse(condition)
            .map_err(|e| problems.push(e))
            .ok();
        let count = match expected.trim().parse::<u32>() {
            Ok(n) if n <= MOST_EXPECTED => Some(n),
            _ => {
                problems.push(Invalid(format!(
                    "expected '{}' is not a whole number of patients from 0 to {MOST_EXPECTED}",
                    expected.trim()
                )));
                None
            }
        };
        match (quarter, condition, count) {
            (Some(quarter), Some(condition), Some(count)) if problems.is_empty() => Ok(Expected {
                area: Area::from_stored(area.kind(), area.name().trim()).unwrap_or(area),
                quarter,
                condition,
                count,
            }),
            _ => Err(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters() {
        let q = Quarter::parse("2024-Q4").unwrap();
        assert_eq!(q.first_day().to_string(), "2024-10-01");
        assert_eq!(q.last_day().to_string(), "2024-12-31");
        assert_eq!(q.next().to_string(), "2025-Q1");
        assert_eq!(
            Quarter::of(Date::parse_iso("2025-03-31").unwrap()).to_string(),
            "2025-Q1"
        );
        assert_eq!(
            Quarter::of(Date::parse_iso("2025-04-01").unwrap()).to_string(),
            "2025-Q2"
        );
        for bad in ["2024-Q5", "2024Q1", "24-Q1", "2024-Q0", "2024-3", ""] {
            assert!(Quarter::parse(bad).is_err(), "{bad}");
        }
        let (from, to) = (
            Date::parse_iso("2024-04-01").unwrap(),
            Date::parse_iso("2025-03-31").unwrap(),
        );
        assert!(Quarter::parse("2024-Q2").unwrap().within(from, to));
        assert!(Quarter::parse("2025-Q1").unwrap().within(from, to));
        assert!(!Quarter::parse("2024-Q1").unwrap().within(from, to));
    }

    #[test]
    fn conditions_follow_the_priority_groups() {
        assert_eq!(Condition::of(PriorityGroup::MiPci), Condition::Mi);
        assert_eq!(Condition::of(PriorityGroup::Pci), Condition::Pci);
        assert_eq!(Condition::of(PriorityGroup::Cabg), Condition::Cabg);
        for c in Condition::ALL {
            assert_eq!(Condition::parse(c.code()), Ok(c));
        }
    }

    #[test]
    fn a_row_says_everything_wrong_at_once() {
        let e =
            Expected::parse(Area::Programme(String::new()), "2024-Q9", "angina", "-3").unwrap_err();
        assert_eq!(e.len(), 4, "{e:?}");
        let ok = Expected::parse(Area::Region(" North ".into()), "2024-Q1", "MI", "120").unwrap();
        assert_eq!(
            (ok.area, ok.condition, ok.count),
            (Area::Region("North".into()), Condition::Mi, 120)
        );
    }
}
