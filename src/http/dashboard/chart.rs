//! The pool over the last days as inline SVG, drawn on the server: three
//! lines (free, held, soft-deleted) over hourly points, with a day grid.

use crate::pool::HistoryPoint;
use maud::{Markup, html};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 20.0;

/// How to read one series from a point.
type Reading = fn(&HistoryPoint) -> i64;

/// One series: its CSS class, its legend, how to read it from a point, and
/// its stroke width. Drawn in this order, each narrower than the one before,
/// so lines that coincide (held and soft-deleted both at 0, say) show as
/// nested stripes and none hides another.
const SERIES: [(&str, &str, Reading, f64); 3] = [
    ("soft-deleted", "soft-deleted", |p| p.soft_deleted, 6.0),
    ("free", "free", |p| p.free, 4.0),
    ("held", "held", |p| p.held, 2.0),
];

/// About how wide a day label (`Dec 02`) is in the axis font.
const LABEL_WIDTH: f64 = 36.0;

fn polyline(points: &[HistoryPoint], value: Reading, top: i64) -> String {
    let last = points.len().saturating_sub(1).max(1) as f64;
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let x = LEFT + (WIDTH - LEFT) * i as f64 / last;
            let y = (HEIGHT - BOTTOM) * (1.0 - value(p) as f64 / top as f64);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn chart(points: &[HistoryPoint]) -> Markup {
    let top = points
        .iter()
        .flat_map(|p| [p.free, p.held, p.soft_deleted])
        .max()
        .unwrap_or(0)
        .max(1);
    let last = points.len().saturating_sub(1).max(1) as f64;
    // A vertical line at each midnight (UTC) in the window.
    let days: Vec<(f64, String)> = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.hour.format("%H").to_string() == "00")
        .map(|(i, p)| {
            (
                LEFT + (WIDTH - LEFT) * i as f64 / last,
                p.hour.format("%b %d").to_string(),
            )
        })
        .collect();
    html! {
        svg class="chart" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img"
            aria-label="Pool namespaces over the last 7 days: free, held and soft-deleted, hour by hour" {
            @for (x, label) in &days {
                line class="grid" x1=(format!("{x:.1}")) y1="0" x2=(format!("{x:.1}")) y2=(HEIGHT - BOTTOM) {}
                // Right of its line, unless that would cut it at the edge.
                @if x + 3.0 + LABEL_WIDTH <= WIDTH {
                    text class="axis" x=(format!("{:.1}", x + 3.0)) y=(HEIGHT - 5.0) { (label) }
                } @else {
                    text class="axis" x=(format!("{:.1}", x - 3.0)) y=(HEIGHT - 5.0) text-anchor="end" { (label) }
                }
            }
            line class="grid" x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) {}
            text class="axis" x="2" y="12" { (top) }
            text class="axis" x="2" y=(HEIGHT - BOTTOM) { "0" }
            @for (class, legend, value, width) in SERIES {
                polyline class=(format!("line {class}")) stroke-width=(width) points=(polyline(points, value, top)) {
                    title { (legend) }
                }
            }
        }
        p class="legend" {
            @for (class, legend, _, _) in SERIES {
                span class=(format!("key {class}")) {} " " (legend) " "
            }
            "(hourly, UTC, from the event log)"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn three_lines_scaled_to_the_largest_count() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 22, 0, 0).unwrap();
        let points: Vec<_> = (0..4)
            .map(|i| HistoryPoint {
                hour: start + Duration::hours(i),
                free: 10 - i,
                held: i,
                soft_deleted: 0,
            })
            .collect();
        let svg = chart(&points).into_string();
        assert_eq!(svg.matches("<polyline").count(), 3);
        // The largest count is the top of the scale; midnight gets a grid line.
        assert!(svg.contains(">10</text>"), "{svg}");
        assert!(svg.contains("Jan 02"), "{svg}");
        // free starts at the top: y = 0.
        assert!(svg.contains("points=\"40.0,0.0 "), "{svg}");
    }

    #[test]
    fn coinciding_lines_all_show_and_the_last_label_is_not_cut() {
        // Seven days ending just after a midnight: that midnight is at the edge.
        let end = Utc.with_ymd_and_hms(2026, 12, 2, 1, 0, 0).unwrap();
        let points: Vec<_> = (0..168)
            .rev()
            .map(|i| HistoryPoint {
                hour: end - Duration::hours(i),
                free: 3,
                held: 0,
                soft_deleted: 0,
            })
            .collect();
        let svg = chart(&points).into_string();
        // held and soft-deleted coincide: held is drawn last and narrowest.
        let soft = svg.find("line soft-deleted").unwrap();
        let held = svg.find("line held").unwrap();
        assert!(held > soft, "held is drawn over soft-deleted");
        assert!(svg.contains("stroke-width=\"2\"") && svg.contains("stroke-width=\"6\""));
        // The label of the last midnight ends at its line instead of running off.
        assert!(svg.contains("text-anchor=\"end\">Dec 02</text>"), "{svg}");
    }
}
