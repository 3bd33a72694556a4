//! The figures AWS published for the experiment the suite reproduces
//! (aws-samples/lambda-extension-optimization, blog "Optimizing AWS Lambda
//! extensions in C# and Rust"), in one place, as data.
//!
//! Each dashboard was a separate load test (5,000 requests, 250 in flight,
//! through API Gateway) with its own no-extension baseline, so relative
//! figures are taken against the baseline of the same dashboard. Duration and
//! PostRuntimeExtensionsDuration are the dashboards' printed numbers; memory
//! used, cold-start duration and cold-start counts are read off their bar
//! charts (marked `approx`: about ±5 MB, ±20 ms, ±25 cold starts).

/// Where the numbers come from.
pub const SOURCE: &str =
    "https://github.com/aws-samples/lambda-extension-optimization (Blog.md, assets/*.png)";

/// The seed's load: requests and how many in flight.
pub const REQUESTS: u32 = 5000;
pub const IN_FLIGHT: u32 = 250;

/// The seed's function: C# on .NET 6 (managed, JIT) with a 500 ms sleep.
pub const FUNCTION_RUNTIME: &str = ".NET 6 (CoreCLR JIT)";

/// One scenario of one published dashboard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Published {
    /// The dashboard (`assets/<dashboard>.png`).
    pub dashboard: &'static str,
    pub memory_mb: u32,
    /// Our scenario of the same extension (`no-extension` for the baseline).
    pub scenario: &'static str,
    /// AWS's name of it.
    pub aws_name: &'static str,
    /// What it ran on at AWS.
    pub runtime: &'static str,
    /// Duration avg / max, ms.
    pub duration_ms: (f64, f64),
    /// PostRuntimeExtensionsDuration avg / max, ms (None: no extension).
    pub post_runtime_ms: Option<(f64, f64)>,
    /// Average memory used, MB (approx, from the chart).
    pub memory_used_mb: f64,
    /// Cold start duration avg / max, ms (approx, from the chart).
    pub cold_start_ms: (f64, f64),
    /// Cold starts over the 5,000 requests (approx, from the chart).
    pub cold_starts: f64,
}

const NONE: &str = "no-extension";
const DOTNET6: &str = ".NET 6 (CoreCLR JIT)";
const RUST: &str = "Rust (native)";

/// Every scenario of the four published dashboards.
pub const PUBLISHED: &[Published] = &[
    // Blank extensions at 128 MB.
    p(
        "blank-extension-128",
        128,
        NONE,
        "no-extensions-lambda",
        "–",
        (567.0, 1530.0),
        None,
        72.0,
        (210.0, 285.0),
        250.0,
    ),
    p(
        "blank-extension-128",
        128,
        "csharp-blank",
        "dotnet-blank-extension-lambda",
        DOTNET6,
        (598.0, 1760.0),
        Some((0.1, 17.2)),
        87.0,
        (400.0, 445.0),
        250.0,
    ),
    p(
        "blank-extension-128",
        128,
        "rust-blank",
        "rust-blank-extension-lambda",
        RUST,
        (563.0, 1510.0),
        Some((0.1, 31.6)),
        76.0,
        (240.0, 440.0),
        230.0,
    ),
    // EventCollector at 128 MB.
    p(
        "ec-extension-128",
        128,
        NONE,
        "no-extensions-lambda",
        "–",
        (567.0, 1500.0),
        None,
        71.0,
        (215.0, 265.0),
        250.0,
    ),
    p(
        "ec-extension-128",
        128,
        "csharp-event-collector",
        "dotnet-event-collector-extension-lambda",
        DOTNET6,
        (1480.0, 9620.0),
        Some((584.0, 6500.0)),
        120.0,
        (490.0, 625.0),
        600.0,
    ),
    p(
        "ec-extension-128",
        128,
        "rust-event-collector",
        "rust-event-collector-extension-lambda",
        RUST,
        (583.0, 1670.0),
        Some((1.08, 555.0)),
        91.0,
        (310.0, 515.0),
        250.0,
    ),
    // EventCollector at 512 MB.
    p(
        "ec-extension-512",
        512,
        NONE,
        "no-extensions-lambda",
        "–",
        (508.0, 721.0),
        None,
        70.0,
        (210.0, 250.0),
        150.0,
    ),
    p(
        "ec-extension-512",
        512,
        "csharp-event-collector",
        "dotnet-event-collector-extension-lambda",
        DOTNET6,
        (567.0, 1750.0),
        Some((36.9, 825.0)),
        137.0,
        (490.0, 575.0),
        280.0,
    ),
    p(
        "ec-extension-512",
        512,
        "rust-event-collector",
        "rust-event-collector-extension-lambda",
        RUST,
        (510.0, 1080.0),
        Some((0.86, 580.0)),
        90.0,
        (310.0, 335.0),
        150.0,
    ),
    // EventCollector compiled with .NET 7 Native AOT, 128 MB.
    p(
        "ec-aot-extension-128",
        128,
        NONE,
        "no-extensions-lambda",
        "–",
        (563.0, 1510.0),
        None,
        72.0,
        (210.0, 260.0),
        230.0,
    ),
    p(
        "ec-aot-extension-128",
        128,
        "csharp-aot-event-collector",
        "dotnet-event-collector-extension-lambda (Native AOT)",
        ".NET 7 Native AOT",
        (602.0, 2450.0),
        Some((0.77, 297.0)),
        122.0,
        (440.0, 485.0),
        250.0,
    ),
    p(
        "ec-aot-extension-128",
        128,
        "rust-event-collector",
        "rust-event-collector-extension-lambda",
        RUST,
        (575.0, 1650.0),
        Some((0.65, 497.0)),
        92.0,
        (305.0, 350.0),
        250.0,
    ),
];

/// Published binary sizes, bytes (Blog.md): the Rust EventCollector and the
/// C# one compiled with Native AOT.
pub const BINARY_SIZES: &[(&str, u64)] = &[
    ("rust-event-collector", 12_300_000),
    ("csharp-aot-event-collector", 36_400_000),
];

#[allow(clippy::too_many_arguments)]
const fn p(
    dashboard: &'static str,
    memory_mb: u32,
    scenario: &'static str,
    aws_name: &'static str,
    runtime: &'static str,
    duration_ms: (f64, f64),
    post_runtime_ms: Option<(f64, f64)>,
    memory_used_mb: f64,
    cold_start_ms: (f64, f64),
    cold_starts: f64,
) -> Published {
    Published {
        dashboard,
        memory_mb,
        scenario,
        aws_name,
        runtime,
        duration_ms,
        post_runtime_ms,
        memory_used_mb,
        cold_start_ms,
        cold_starts,
    }
}

/// The extension scenarios AWS published at `memory_mb`, each with the
/// baseline of its own dashboard.
pub fn extensions_at(memory_mb: u32) -> Vec<(&'static Published, &'static Published)> {
    PUBLISHED
        .iter()
        .filter(|x| x.memory_mb == memory_mb && x.scenario != NONE)
        .filter_map(|x| {
            PUBLISHED
                .iter()
                .find(|b| b.dashboard == x.dashboard && b.scenario == NONE)
                .map(|b| (x, b))
        })
        .collect()
}

/// The published binary size of a scenario's extension.
pub fn binary_size(scenario: &str) -> Option<u64> {
    BINARY_SIZES
        .iter()
        .find(|(s, _)| *s == scenario)
        .map(|(_, b)| *b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_extension_row_has_its_dashboards_baseline() {
        let n128 = extensions_at(128);
        assert_eq!(n128.len(), 6);
        for (x, base) in n128.iter().chain(extensions_at(512).iter()) {
            assert_eq!((base.dashboard, base.scenario), (x.dashboard, NONE));
            assert!(x.post_runtime_ms.is_some());
        }
        let (ec, base) = n128
            .iter()
            .find(|(x, _)| x.scenario == "csharp-event-collector")
            .expect("C# EC");
        // The blog's "almost three times" the baseline.
        let ratio = ec.duration_ms.0 / base.duration_ms.0;
        assert!((2.5..3.0).contains(&ratio), "{ratio}");
        assert!(extensions_at(1024).is_empty());
        assert_eq!(binary_size("rust-event-collector"), Some(12_300_000));
    }
}
