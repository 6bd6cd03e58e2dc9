//! `warmstart serve`: loads a store's trained artifacts and answers HTTP requests.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use warmstart_app::experiment::Experiments;
use warmstart_app::feedback::FeedbackOptions;
use warmstart_app::service::ProductLinks;
use warmstart_app::{Retrieval, Service, ServiceOptions};
use warmstart_server::ratelimit::Rate;
use warmstart_server::ServerOptions;

use crate::Cli;

/// Arguments of `warmstart serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Serve only these dataset groups (repeatable; default: every group with artifacts).
    #[arg(long = "dataset")]
    pub datasets: Vec<String>,
    /// Default model of a dataset group, DATASET=MODEL (repeatable; default: the artifact
    /// with the best hold-out NDCG@10).
    #[arg(long = "default-model", value_name = "DATASET=MODEL")]
    pub default_models: Vec<String>,
    /// Where a shop's product pages are, SITE=TEMPLATE with `{site}` and `{id}` (SITE `*`
    /// for any; repeatable): the links of `GET /v1/sites/{site}/catalog`.
    #[arg(long = "product-url", value_name = "SITE=TEMPLATE")]
    pub product_urls: Vec<String>,
    /// Where a shop's product photos are, SITE=TEMPLATE as --product-url (otherwise a
    /// product's own http(s) image).
    #[arg(long = "image-url", value_name = "SITE=TEMPLATE")]
    pub image_urls: Vec<String>,
    /// API key of catalog writes (PUT/DELETE products); writes are refused without one.
    #[arg(long, env = "WARMSTART_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Longest history of a request.
    #[arg(long, default_value_t = 500)]
    pub max_history: usize,
    /// Largest k.
    #[arg(long, default_value_t = 100)]
    pub max_k: usize,
    /// Sites with fewer live products are scored exactly (no ANN index).
    #[arg(long, default_value_t = 2000)]
    pub ann_min_items: usize,
    /// Candidates taken from the ANN index per query vector and re-ranked exactly with the
    /// model's score (at least 3 k).
    #[arg(long, default_value_t = 50)]
    pub ann_candidates: usize,
    /// HNSW search breadth (at least the candidates; more: higher recall, slower).
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
    /// Where content-space nearest neighbours are searched: `in-process` (HNSW indexes
    /// memory-mapped from the models directory) or `pgvector` (the PostgreSQL store's HNSW
    /// index; nothing indexed in this process).
    #[arg(long, default_value = "in-process", value_parser = ["in-process", "pgvector"])]
    pub retrieval: String,
    /// Connections for pgvector searches (concurrent content-space queries).
    #[arg(long, default_value_t = 4)]
    pub pgvector_connections: usize,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Requests per second per client address (bursts of twice that; 0: no limit). Behind a
    /// proxy every client shares the proxy's address: limit there instead.
    #[arg(long, default_value_t = 0.0)]
    pub rate_limit: f64,
    /// Catalog writes per second per API key (bursts of twice that; 0: no limit).
    #[arg(long, default_value_t = 20.0)]
    pub write_rate_limit: f64,
    /// Seconds a client may take to send a request's head, and the idle limit of a kept-alive
    /// connection (slow clients are disconnected).
    #[arg(long, default_value_t = 10)]
    pub header_timeout: u64,
    /// Experiments (TOML: `[[experiment]]` with `[[experiment.variant]]`s; README: Online
    /// feedback).
    #[arg(long)]
    pub experiments: Option<PathBuf>,
    /// Turn the online loop off: recommendations are not recorded, `/v1/events` answers 404.
    #[arg(long)]
    pub no_feedback: bool,
    /// Days events and recommendation records are kept.
    #[arg(long, default_value_t = 90.0)]
    pub events_retention_days: f64,
    /// Half-life of the live-trending signal, in hours.
    #[arg(long, default_value_t = 6.0)]
    pub trending_half_life_hours: f64,
    /// Milliseconds between syncs with the store: catalog changes made by other replicas or
    /// commands are served after at most this long (plus the sync itself); newly published
    /// artifacts are looked for every tenth sync. 0: never.
    #[arg(long, default_value_t = 500)]
    pub sync_ms: u64,
    /// Write the bound address to this file once listening (for scripts).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
}

/// `warmstart serve`.
pub fn run(cli: &Cli, a: &ServeArgs) -> anyhow::Result<()> {
    let pairs = |flag: &str, values: &[String], form: &str| {
        values
            .iter()
            .map(|d| {
                d.split_once('=')
                    .map(|(x, y)| (x.to_string(), y.to_string()))
                    .ok_or_else(|| anyhow::anyhow!("{flag} {d}: expected {form}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    };
    let default_models = pairs("--default-model", &a.default_models, "DATASET=MODEL")?;
    let links = ProductLinks {
        page: pairs("--product-url", &a.product_urls, "SITE=TEMPLATE")?,
        image: pairs("--image-url", &a.image_urls, "SITE=TEMPLATE")?,
    };
    let opts = ServiceOptions {
        max_k: a.max_k,
        max_history: a.max_history,
        ann_min_items: a.ann_min_items,
        ann_candidates: a.ann_candidates,
        ef: a.ef,
        datasets: a.datasets.clone(),
        default_models,
        links,
        retrieval: match a.retrieval.as_str() {
            "pgvector" => Retrieval::Pgvector { connections: a.pgvector_connections.clamp(1, 64) },
            _ => Retrieval::InProcess,
        },
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let (mut service, report) = Service::open(&cli.store_path(), opts)?;
    if !a.no_feedback {
        anyhow::ensure!(
            a.events_retention_days.is_finite() && a.events_retention_days > 0.0,
            "--events-retention-days must be positive"
        );
        anyhow::ensure!(
            a.trending_half_life_hours.is_finite() && a.trending_half_life_hours > 0.0,
            "--trending-half-life-hours must be positive"
        );
        let experiments = match &a.experiments {
            Some(p) => Experiments::load(p)?,
            None => Experiments::default(),
        };
        let fopts = FeedbackOptions {
            retention_seconds: (a.events_retention_days * 86_400.0).round().max(1.0) as i64,
            trending_half_life_seconds: a.trending_half_life_hours * 3600.0,
            ..Default::default()
        };
        for w in service.enable_feedback(fopts, experiments)? {
            eprintln!("warning: {w}");
        }
    } else {
        anyhow::ensure!(a.experiments.is_none(), "--experiments needs the online loop (drop --no-feedback)");
    }
    for s in &report.skipped {
        eprintln!("skipped artifact: {s}");
    }
    eprintln!(
        "loaded {} artifacts ({}) in {:.1}s; content indexes: {} memory-mapped, {} built",
        report.models.len(),
        report.models.iter().map(|(d, m, v)| format!("{d}/{m} v{v}")).collect::<Vec<_>>().join(", "),
        started.elapsed().as_secs_f64(),
        report.indexes_opened,
        report.indexes_built
    );
    let rate = |per_second: f64, flag: &str| -> anyhow::Result<Option<Rate>> {
        anyhow::ensure!(per_second.is_finite() && per_second >= 0.0, "{flag} must be a non-negative number");
        Ok(if per_second == 0.0 { None } else { Rate::new(per_second, (2.0 * per_second).ceil().max(1.0) as u32) })
    };
    let server = ServerOptions {
        max_body: a.max_body,
        api_key: a.api_key.clone(),
        rate_per_address: rate(a.rate_limit, "--rate-limit")?,
        write_rate_per_key: rate(a.write_rate_limit, "--write-rate-limit")?,
        header_timeout_seconds: a.header_timeout,
        catalog_sync: (a.sync_ms > 0).then(|| std::time::Duration::from_millis(a.sync_ms)),
        ..Default::default()
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if a.threads > 0 {
        rt.worker_threads(a.threads);
    }
    let rt = rt.enable_all().build()?;
    let ready_file = a.ready_file.clone();
    rt.block_on(warmstart_server::serve(service, a.addr, server, move |addr| {
        eprintln!("listening on http://{addr}");
        if let Some(f) = ready_file {
            let _ = std::fs::write(f, addr.to_string());
        }
    }))?;
    Ok(())
}
