//! `shmkit bench --plot FILE.svg`: the round-trip latency percentiles of every transport, one
//! panel per message size, on a log scale (a tail that is 100 times the median shows).

use super::Row;
use crate::fail::Fail;
use plotters::prelude::*;
use std::path::Path;

const PERCENTILES: [&str; 5] = ["min", "p50", "p99", "p99.9", "max"];

/// Draws the rows that have round trips into an SVG file at `path`.
pub fn svg(rows: &[Row], path: &Path) -> Result<(), Fail> {
    let failed = |e: &dyn std::fmt::Display| {
        Fail::error(format!(
            "plot {}: {e}",
            crate::quote::text(&path.display().to_string())
        ))
    };
    let mut sizes: Vec<usize> = rows
        .iter()
        .filter(|r| r.rtt.is_some())
        .map(|r| r.size)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.is_empty() {
        return Err(Fail::usage(
            "--plot draws round trips, and no transport of this run measures them (memcpy only)",
        ));
    }
    let transports: Vec<&str> = {
        let mut t: Vec<&str> = Vec::new();
        for r in rows.iter().filter(|r| r.rtt.is_some()) {
            if !t.contains(&r.transport.as_str()) {
                t.push(&r.transport);
            }
        }
        t
    };
    let height = 360 * sizes.len() as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(&e))?;
    for (panel, size) in root.split_evenly((sizes.len(), 1)).iter().zip(&sizes) {
        let here: Vec<(&Row, [u64; 5])> = rows
            .iter()
            .filter(|r| r.size == *size)
            .filter_map(|r| r.rtt.map(|rtt| (r, rtt)))
            .collect();
        let lo = here.iter().map(|(_, v)| v[0]).min().unwrap_or(1).max(1) as f64;
        let hi = here.iter().map(|(_, v)| v[4]).max().unwrap_or(2).max(2) as f64;
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("round trip, {} messages", shmkit::size::human(*size as u64)),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.2f64..4.2f64, ((lo / 1.5)..(hi * 1.5)).log_scale())
            .map_err(|e| failed(&e))?;
        chart
            .configure_mesh()
            .x_labels(5)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 0.01 && (0.0..=4.0).contains(&i) {
                    PERCENTILES[i as usize].to_string()
                } else {
                    String::new()
                }
            })
            .y_desc("latency")
            .y_label_formatter(&|ns| super::ns(*ns as u64))
            .draw()
            .map_err(|e| failed(&e))?;
        for (row, rtt) in &here {
            let i = transports
                .iter()
                .position(|t| *t == row.transport)
                .unwrap_or(0);
            let color = Palette99::pick(i).to_rgba();
            let points: Vec<(f64, f64)> = rtt
                .iter()
                .enumerate()
                .map(|(k, v)| (k as f64, (*v).max(1) as f64))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| failed(&e))?
                .label(row.transport.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| failed(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| failed(&e))?;
    }
    root.present().map_err(|e| failed(&e))?;
    Ok(())
}
