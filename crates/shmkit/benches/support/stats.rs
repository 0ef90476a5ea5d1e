//! What every benchmark here reports of its rounds: the median and the 10th and 90th
//! percentiles.

/// Sorts `xs` and gives (median, p10, p90).
pub fn stats(xs: &mut [f64]) -> (f64, f64, f64) {
    xs.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| xs[((xs.len() - 1) as f64 * p).round() as usize];
    (q(0.5), q(0.1), q(0.9))
}
