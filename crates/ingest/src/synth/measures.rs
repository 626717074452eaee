//! Synthetic assessment measures: weight, height, waist, blood pressure, cholesterol,
//! smoking, HADS, walk distances and EQ-5D at assessment 1, and a plausible change by
//! assessment 2.

use super::*;

#[derive(Clone)]
pub(super) struct Measures {
    height: f64,
    bmi: f64,
    waist: f64,
    systolic: f64,
    diastolic: f64,
    cholesterol: f64,
    smoking: &'static str,
    activity: f64,
    walk: f64,
    iswt: bool,
    anxiety: f64,
    depression: f64,
    eq5d: f64,
}

pub(super) fn measures(rng: &mut Rng, female: bool, iswt: bool) -> Measures {
    let systolic = rng.clamped(130.0, 18.0, 85.0, 215.0);
    Measures {
        height: if female {
            rng.clamped(162.0, 6.5, 142.0, 190.0)
        } else {
            rng.clamped(175.0, 7.0, 150.0, 205.0)
        },
        bmi: rng.clamped(28.5, 5.0, 16.0, 55.0),
        waist: if female {
            rng.clamped(92.0, 13.0, 62.0, 158.0)
        } else {
            rng.clamped(100.0, 13.0, 62.0, 158.0)
        },
        systolic,
        diastolic: (systolic * 0.6 + rng.normal() * 8.0).clamp(45.0, systolic - 15.0),
        cholesterol: rng.clamped(4.0, 1.0, 2.0, 9.5),
        smoking: SMOKING_MIX[rng.int(0, 99) as usize / 5],
        activity: (100.0 * (1.1 * rng.normal()).exp()).clamp(0.0, 1400.0),
        walk: if iswt {
            if female {
                rng.clamped(270.0, 120.0, 20.0, 1000.0)
            } else {
                rng.clamped(395.0, 165.0, 20.0, 1000.0)
            }
        } else {
            rng.clamped(400.0, 110.0, 60.0, 790.0)
        },
        iswt,
        // Means set below the targets so that, after clamping at 0, they land on them.
        anxiety: rng.clamped(5.25, 4.0, 0.0, 21.0).round(),
        depression: rng.clamped(4.0, 3.5, 0.0, 21.0).round(),
        eq5d: rng.clamped(68.0, 18.0, 0.0, 100.0).round(),
    }
}

impl Measures {
    pub(super) fn improved(&self, rng: &mut Rng) -> Measures {
        let mut m = self.clone();
        m.bmi = (m.bmi - 0.3 + 0.8 * rng.normal()).clamp(16.0, 55.0);
        m.waist = (m.waist - 1.5 + 3.0 * rng.normal()).clamp(62.0, 158.0);
        m.systolic = (m.systolic - 3.0 + 12.0 * rng.normal()).clamp(85.0, 215.0);
        m.diastolic = (m.diastolic - 1.0 + 6.0 * rng.normal()).clamp(45.0, m.systolic - 15.0);
        m.cholesterol = (m.cholesterol - 0.15 + 0.5 * rng.normal()).clamp(2.0, 9.5);
        if m.smoking == "current" && rng.chance(0.35) {
            m.smoking = "recent_quitter";
        }
        m.activity = (m.activity * 1.9 * (0.4 * rng.normal()).exp()).clamp(0.0, 1450.0);
        m.walk = (m.walk + if m.iswt { 90.0 } else { 50.0 } + 50.0 * rng.normal())
            .clamp(20.0, if m.iswt { 1020.0 } else { 790.0 });
        // Shifts tuned by simulation to reach mean 4.7 (21% ≥ 8) and 3.4 (12% ≥ 8).
        m.anxiety = (m.anxiety - 0.95 + 1.3 * rng.normal())
            .round()
            .clamp(0.0, 21.0);
        m.depression = (m.depression - 0.95 + 1.2 * rng.normal())
            .round()
            .clamp(0.0, 21.0);
        m.eq5d = (m.eq5d + 6.0 + 12.0 * rng.normal())
            .round()
            .clamp(0.0, 100.0);
        m
    }

    /// Writes the measures of assessment `n`, each missing 10–30% of the time (more at A2).
    pub(super) fn write(&self, rng: &mut Rng, r: &mut Row, n: u8) {
        let miss = if n == 1 { 0.15 } else { 0.22 };
        let c = |a1: Col, a2: Col| if n == 1 { a1 } else { a2 };
        let weight = self.bmi * (self.height / 100.0).powi(2);
        let weight_txt = d1(weight);
        let height_txt = format!("{:.0}", self.height);
        let set = |rng: &mut Rng, r: &mut Row, col: Col, v: String| {
            if !rng.chance(miss) {
                r.set(col, v);
            }
        };
        if !rng.chance(miss) {
            r.set(c(Col::A1WeightKg, Col::A2WeightKg), &weight_txt);
            r.set(c(Col::A1HeightCm, Col::A2HeightCm), &height_txt);
            // Half the files leave BMI for crest to work out.
            if rng.chance(0.5) {
                let w: f64 = weight_txt.parse().unwrap_or(weight);
                let h: f64 = height_txt.parse().unwrap_or(self.height);
                r.set(c(Col::A1Bmi, Col::A2Bmi), d1(w / (h / 100.0).powi(2)));
            }
        }
        set(rng, r, c(Col::A1WaistCm, Col::A2WaistCm), d1(self.waist));
        if !rng.chance(miss) {
            r.set(
                c(Col::A1SystolicBp, Col::A2SystolicBp),
                format!("{:.0}", self.systolic),
            );
            r.set(
                c(Col::A1DiastolicBp, Col::A2DiastolicBp),
                format!("{:.0}", self.diastolic.min(self.systolic - 15.0)),
            );
        }
        set(
            rng,
            r,
            c(Col::A1TotalCholesterol, Col::A2TotalCholesterol),
            d1(self.cholesterol),
        );
        set(
            rng,
            r,
            c(Col::A1Smoking, Col::A2Smoking),
            self.smoking.to_string(),
        );
        set(
            rng,
            r,
            c(Col::A1ActivityMinutes, Col::A2ActivityMinutes),
            format!("{:.0}", self.activity),
        );
        if self.iswt {
            set(
                rng,
                r,
                c(Col::A1IswtM, Col::A2IswtM),
                format!("{:.0}", (self.walk / 10.0).round() * 10.0),
            );
        } else {
            set(
                rng,
                r,
                c(Col::A1SixMwtM, Col::A2SixMwtM),
                format!("{:.0}", self.walk),
            );
        }
        set(
            rng,
            r,
            c(Col::A1HadsAnxiety, Col::A2HadsAnxiety),
            format!("{:.0}", self.anxiety),
        );
        set(
            rng,
            r,
            c(Col::A1HadsDepression, Col::A2HadsDepression),
            format!("{:.0}", self.depression),
        );
        set(
            rng,
            r,
            c(Col::A1Eq5dVas, Col::A2Eq5dVas),
            format!("{:.0}", self.eq5d),
        );
    }
}
