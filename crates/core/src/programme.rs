//! CR programmes as registered in crest: nation, region, staffing return and offered groups
//! (the inputs to KPIs 1 and 2).

use crate::episode::PriorityGroup;
use serde::{Deserialize, Serialize};

/// UK nation, which decides the KPI thresholds.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nation {
    /// England.
    England,
    /// Wales.
    Wales,
    /// Northern Ireland.
    NorthernIreland,
}

impl Nation {
    /// All nations.
    pub const ALL: [Nation; 3] = [Nation::England, Nation::Wales, Nation::NorthernIreland];

    /// The nation's name, for pages and reports.
    pub fn label(self) -> &'static str {
        match self {
            Nation::England => "England",
            Nation::Wales => "Wales",
            Nation::NorthernIreland => "Northern Ireland",
        }
    }

    /// The code used in files and JSON.
    pub fn code(self) -> &'static str {
        match self {
            Nation::England => "england",
            Nation::Wales => "wales",
            Nation::NorthernIreland => "northern_ireland",
        }
    }

    /// Parses a nation code (case-insensitive).
    pub fn parse(s: &str) -> Option<Nation> {
        Nation::ALL
            .into_iter()
            .find(|n| n.code().eq_ignore_ascii_case(s.trim()))
    }
}

/// Professions in the annual staffing return.
pub const PROFESSIONS: &[&str] = &[
    "nurse",
    "physiotherapist",
    "exercise_physiologist",
    "dietitian",
    "psychologist",
    "pharmacist",
    "occupational_therapist",
    "doctor",
    "exercise_instructor",
    "counsellor",
    "other",
];

/// Columns of the programmes file, in order.
pub const PROGRAMME_COLUMNS: [&str; 6] = [
    "programme_code",
    "name",
    "nation",
    "region",
    "professions",
    "offers",
];

/// A registered CR programme.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Programme {
    /// Unique code, letters and digits (upper case).
    pub code: String,
    /// Name.
    pub name: String,
    /// Nation.
    pub nation: Nation,
    /// Region or network for roll-ups.
    pub region: String,
    /// Distinct professions in the staffing return; `None` when no return was made.
    pub professions: Option<Vec<String>>,
    /// Priority groups offered; `None` when none were recorded.
    pub offers: Option<Vec<PriorityGroup>>,
}

impl Programme {
    /// Parses one row of the programmes file (cells in [`PROGRAMME_COLUMNS`] order).
    pub fn parse(cells: [&str; 6]) -> Result<Programme, crate::Invalid> {
        let [code, name, nation, region, professions, offers] = cells.map(str::trim);
        if code.is_empty() || code.len() > 20 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(
                format!("programme_code '{code}' must be letters and digits, e.g. P001").into(),
            );
        }
        if name.is_empty() {
            return Err("name is required".into());
        }
        let nation = Nation::parse(nation).ok_or_else(|| {
            format!("nation '{nation}' must be one of: england, wales, northern_ireland")
        })?;
        let mut profs: Vec<String> = Vec::new();
        for p in split_list(professions) {
            let known = PROFESSIONS
                .iter()
                .find(|k| k.eq_ignore_ascii_case(p))
                .ok_or_else(|| {
                    format!("profession '{p}' is not one of: {}", PROFESSIONS.join(", "))
                })?;
            if !profs.iter().any(|x| x == known) {
                profs.push(known.to_string());
            }
        }
        let mut groups: Vec<PriorityGroup> = Vec::new();
        for g in split_list(offers) {
            let known = PriorityGroup::parse(g)
                .filter(|g| *g != PriorityGroup::Other)
                .ok_or_else(|| {
                    format!(
                        "offered group '{g}' is not one of: mi, mi_pci, pci, cabg, heart_failure"
                    )
                })?;
            if !groups.contains(&known) {
                groups.push(known);
            }
        }
        Ok(Programme {
            code: code.to_ascii_uppercase(),
            name: name.to_string(),
            nation,
            region: region.to_string(),
            professions: (!profs.is_empty()).then_some(profs),
            offers: (!groups.is_empty()).then_some(groups),
        })
    }

    /// The professions as stored (`;`-joined, empty for none).
    pub fn professions_text(&self) -> String {
        self.professions.as_deref().unwrap_or_default().join(";")
    }

    /// The offered groups as stored (`;`-joined, empty for none).
    pub fn offers_text(&self) -> String {
        self.offers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|g| g.code())
            .collect::<Vec<_>>()
            .join(";")
    }
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(';').map(str::trim).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_programme_row() {
        let p = Programme::parse([
            "p001",
            "St Elsewhere",
            "England",
            "South London",
            "nurse; Physiotherapist;nurse",
            "mi;cabg",
        ])
        .unwrap();
        assert_eq!(p.code, "P001");
        assert_eq!(p.professions_text(), "nurse;physiotherapist");
        assert_eq!(p.offers, Some(vec![PriorityGroup::Mi, PriorityGroup::Cabg]));
        let empty = Programme::parse(["P2", "X", "wales", "", "", ""]).unwrap();
        assert_eq!((empty.professions, empty.offers), (None, None));
        assert!(Programme::parse(["P3", "X", "scotland", "", "", ""])
            .unwrap_err()
            .0
            .contains("nation"));
        assert!(Programme::parse(["P3", "X", "wales", "", "surgeon", ""])
            .unwrap_err()
            .0
            .contains("surgeon"));
        assert!(Programme::parse(["P3", "X", "wales", "", "", "other"]).is_err());
    }
}
