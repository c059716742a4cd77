//! The report: its rows and verdicts, the table, the JSON.

use crate::{GIB, MIB};
use serde::{Serialize, Serializer};
use std::fmt::Write as _;

/// One line of the table (and one object in the JSON).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) workload: &'static str,
    pub(crate) contender: String,
    pub(crate) readers: Option<usize>,
    /// `None`: not measured (see `note`).
    pub(crate) value: Option<f64>,
    /// Throughputs are in bytes per second and sizes in bytes in the JSON.
    #[serde(serialize_with = "json_unit")]
    pub(crate) unit: &'static str,
    pub(crate) limit_name: String,
    pub(crate) limit: Option<f64>,
    /// value / limit.
    pub(crate) vs_limit: Option<f64>,
    /// value / streamcache's value in the same workload (same storage class).
    pub(crate) vs_streamcache: Option<f64>,
    pub(crate) note: String,
}

impl Row {
    pub(crate) fn new(
        workload: &'static str,
        contender: &str,
        readers: Option<usize>,
        unit: &'static str,
    ) -> Row {
        Row {
            workload,
            contender: contender.to_owned(),
            readers,
            value: None,
            unit,
            limit_name: String::new(),
            limit: None,
            vs_limit: None,
            vs_streamcache: None,
            note: String::new(),
        }
    }

    pub(crate) fn value(mut self, value: f64) -> Row {
        self.value = Some(value);
        self
    }

    pub(crate) fn limit(mut self, name: &str, limit: f64) -> Row {
        self.limit_name = name.to_owned();
        self.limit = Some(limit);
        self.vs_limit = self.value.map(|v| v / limit);
        self
    }

    pub(crate) fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }
}

/// One target of the issue, with its verdict.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Verdict {
    pub(crate) target: String,
    pub(crate) measured: String,
    /// `None`: could not be measured.
    pub(crate) met: Option<bool>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    #[serde(serialize_with = "json_header")]
    pub(crate) header: Vec<(String, String)>,
    pub(crate) rows: Vec<Row>,
    #[serde(rename = "targets")]
    pub(crate) verdicts: Vec<Verdict>,
}

impl Report {
    pub(crate) fn info(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        println!("  {key}: {value}");
        self.header.push((key.to_owned(), value));
    }

    pub(crate) fn verdict(&mut self, target: String, measured: String, met: Option<bool>) {
        self.verdicts.push(Verdict {
            target,
            measured,
            met,
        });
    }

    pub(crate) fn value(
        &self,
        workload: &str,
        contender: &str,
        readers: Option<usize>,
    ) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.workload == workload && r.contender == contender && r.readers == readers)
            .and_then(|r| r.value)
    }
}

pub(crate) fn gib_s(rate: f64) -> String {
    format!("{:.2} GiB/s", rate / GIB)
}

pub(crate) fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "GiB/s" => format!("{:.2}", v / GIB),
        "MiB" => format!("{:.1}", v / MIB as f64),
        _ => format!("{v:.1}"),
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"))
}

impl Report {
    /// Prints the table of every row.
    pub(crate) fn print_table(&self) {
        let header = [
            "wl",
            "contender",
            "N",
            "value",
            "unit",
            "limit",
            "×limit",
            "×sc",
            "note",
        ];
        let mut lines: Vec<[String; 9]> = vec![header.map(str::to_owned)];
        for r in &self.rows {
            let limit = match r.limit {
                Some(l) => format!("{} {}", r.limit_name, fmt_value(l, r.unit)),
                None => r.limit_name.clone(),
            };
            lines.push([
                r.workload.to_owned(),
                r.contender.clone(),
                r.readers.map_or_else(|| "-".to_owned(), |n| n.to_string()),
                r.value
                    .map_or_else(|| "n/a".to_owned(), |v| fmt_value(v, r.unit)),
                r.unit.to_owned(),
                limit,
                fmt_ratio(r.vs_limit),
                fmt_ratio(r.vs_streamcache),
                r.note.clone(),
            ]);
        }
        let widths: Vec<usize> = (0..8)
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for (k, line) in lines.iter().enumerate() {
            let mut out = String::new();
            for (i, cell) in line.iter().enumerate() {
                if i < 8 {
                    let pad = widths[i] - cell.chars().count();
                    // Numbers right-aligned, text left-aligned.
                    if matches!(i, 2 | 3 | 6 | 7) {
                        let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
                    } else {
                        let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
                    }
                } else {
                    out.push_str(cell);
                }
            }
            println!("{}", out.trim_end());
            if k == 0 {
                println!("{}", "-".repeat(widths.iter().sum::<usize>() + 2 * 8 + 4));
            }
        }
    }

    /// Prints the verdicts and how many were met.
    pub(crate) fn print_verdicts(&self) {
        let w = self
            .verdicts
            .iter()
            .map(|v| v.target.chars().count())
            .max()
            .unwrap_or(0);
        for v in &self.verdicts {
            let verdict = match v.met {
                Some(true) => "met",
                Some(false) => "NOT MET",
                None => "n/a",
            };
            let pad = w - v.target.chars().count();
            println!(
                "{:<7}  {}{}  {}",
                verdict,
                v.target,
                " ".repeat(pad),
                v.measured
            );
        }
        let met = self.verdicts.iter().filter(|v| v.met == Some(true)).count();
        let not = self
            .verdicts
            .iter()
            .filter(|v| v.met == Some(false))
            .count();
        println!("{met} met, {not} not met");
    }

    /// The table and the verdicts as JSON.
    pub(crate) fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("a report serialises");
        json.push('\n');
        json
    }
}

fn json_header<S: Serializer>(header: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(header.iter().map(|(k, v)| (k, v)))
}

fn json_unit<S: Serializer>(unit: &&'static str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match *unit {
        "GiB/s" => "bytes/s",
        "MiB" => "bytes",
        u => u,
    })
}
