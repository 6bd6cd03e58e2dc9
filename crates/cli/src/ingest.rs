//! `warmstart ingest`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use warmstart_core::InteractionKind;
use warmstart_ingest::generic::{self, GenericOptions, RecordType};
use warmstart_ingest::{amazon, cdrib, fashion, html, movielens, Import};
use warmstart_store::{Store, WriteSummary};

use crate::{progress, Cli};

/// Import sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// Myntra fashion catalog: styles.csv + images.tar.gz.
    FashionProducts,
    /// Amazon Arts/Office cross-domain data (URLLM preprocessing).
    AmazonArtOffice,
    /// CDRIB game/video cold-start split.
    Cdrib,
    /// MovieLens 100K.
    #[value(name = "movielens-100k")]
    Movielens100k,
    /// Generic JSON Lines (products and/or interactions).
    Jsonl,
    /// Generic CSV (products or interactions, see --records and --map).
    Csv,
    /// Saved product pages (schema.org JSON-LD, microdata, OpenGraph).
    Html,
}

/// CSV record types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Records {
    /// Catalog rows.
    Products,
    /// Interaction rows.
    Interactions,
}

/// Arguments of `warmstart ingest`.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// What kind of data.
    pub source: Source,
    /// File or directory to read.
    pub path: PathBuf,
    /// Stop at the first bad row instead of counting it as skipped.
    #[arg(long)]
    pub strict: bool,
    /// fashion-products: deal the catalog into this many simulated shops.
    #[arg(long, default_value_t = 1)]
    pub shops: usize,
    /// fashion-products: seed of the dealing.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// fashion-products: do not decode photos (faster; corrupt images go unnoticed).
    #[arg(long)]
    pub no_verify_images: bool,
    /// cdrib: users below this id are the same people in both domains.
    #[arg(long, default_value_t = cdrib::OVERLAP_USERS)]
    pub overlap_users: u32,
    /// jsonl/csv/html: site for records that name none.
    #[arg(long)]
    pub site: Option<String>,
    /// jsonl/csv/html: dataset group of the sites created.
    #[arg(long)]
    pub dataset: Option<String>,
    /// jsonl/csv/html: currency for prices that name none (ISO code).
    #[arg(long)]
    pub currency: Option<String>,
    /// csv: whether rows are products or interactions.
    #[arg(long, value_enum, default_value_t = Records::Products)]
    pub records: Records,
    /// csv: column mapping, `field=column,...` (e.g. `title=name,price=cost`).
    #[arg(long)]
    pub map: Option<String>,
    /// csv: field delimiter (one character; `\t` for tab).
    #[arg(long, default_value = ",")]
    pub delimiter: String,
    /// jsonl/csv: kind of interactions without a `kind` field.
    #[arg(long, default_value = "purchase")]
    pub kind: String,
    /// jsonl/csv: prefix added to user ids (a namespace).
    #[arg(long, default_value = "")]
    pub user_prefix: String,
}

fn generic_options(a: &IngestArgs) -> anyhow::Result<GenericOptions> {
    let delimiter = match a.delimiter.as_str() {
        "\\t" | "tab" => b'\t',
        d if d.len() == 1 => d.as_bytes()[0],
        d => anyhow::bail!("--delimiter must be one character, got `{d}`"),
    };
    Ok(GenericOptions {
        default_site: a.site.clone(),
        dataset: a.dataset.clone().or_else(|| a.site.clone()).unwrap_or_else(|| "custom".into()),
        default_currency: a.currency.clone(),
        default_kind: a.kind.parse::<InteractionKind>()?,
        records: match a.records {
            Records::Products => RecordType::Products,
            Records::Interactions => RecordType::Interactions,
        },
        column_map: a.map.as_deref().map(generic::parse_column_map).transpose()?.unwrap_or_default(),
        delimiter,
        user_prefix: a.user_prefix.clone(),
        strict: a.strict,
    })
}

/// Reads the source into memory (nothing is written yet).
pub(crate) fn read(a: &IngestArgs, json: bool) -> anyhow::Result<Import> {
    let pb = progress(0, json, "reading");
    let path: &Path = &a.path;
    let import = match a.source {
        Source::FashionProducts => fashion::import(
            path,
            &fashion::FashionOptions {
                shops: a.shops,
                seed: a.seed,
                verify_images: !a.no_verify_images,
                strict: a.strict,
            },
            &pb,
        )?,
        Source::AmazonArtOffice => amazon::import(path, a.strict, &pb)?,
        Source::Cdrib => cdrib::import(path, a.overlap_users, a.strict, &pb)?,
        Source::Movielens100k => movielens::import(path, a.strict, &pb)?,
        Source::Jsonl => generic::import_jsonl(path, &generic_options(a)?, &pb)?,
        Source::Csv => generic::import_csv(path, &generic_options(a)?, &pb)?,
        Source::Html => html::import(
            path,
            &html::HtmlOptions {
                site: a.site.clone(),
                dataset: a.dataset.clone(),
                default_currency: a.currency.clone(),
                strict: a.strict,
            },
            &pb,
        )?,
    };
    pb.finish_and_clear();
    Ok(import)
}

/// Writes an import into the store in one transaction.
pub(crate) fn write(store: &mut Store, import: &Import, json: bool) -> anyhow::Result<WriteSummary> {
    let total = (import.products.len() + import.interactions.len()) as u64;
    let pb = progress(total, json, "writing");
    let log = serde_json::to_string(&import.report)?;
    let summary = store
        .write(&import.report.source, &import.sites, &import.products, &import.interactions, &log, &|n| {
            pb.set_position(n)
        })
        .context("writing to the store (nothing was changed)")?;
    pb.finish_and_clear();
    Ok(summary)
}

/// Human-readable lines for an import.
pub(crate) fn describe(import: &Import, s: &WriteSummary) -> String {
    let r = &import.report;
    let mut out = format!(
        "{}: read {} rows, imported {}, skipped {}; {} products ({} new, {} updated, {} unchanged), {} interactions ({} new, {} already stored)",
        r.source,
        r.rows_read,
        r.rows_imported,
        r.total_skipped(),
        import.products.len(),
        s.products_inserted,
        s.products_updated,
        s.products_unchanged,
        import.interactions.len(),
        s.interactions_inserted,
        s.interactions_existing
    );
    for (reason, n) in &r.rows_skipped {
        out.push_str(&format!("\n  skipped {n} rows: {reason}"));
    }
    for (reason, n) in &r.fields_dropped {
        out.push_str(&format!("\n  dropped {n} fields: {reason}"));
    }
    if s.interactions_unknown_product > 0 {
        out.push_str(&format!(
            "\n  skipped {} interactions with unknown products (e.g. {})",
            s.interactions_unknown_product,
            s.unknown_product_examples.join(", ")
        ));
    }
    for ex in r.examples.iter().take(5) {
        let at = ex.line.map(|l| format!(":{l}")).unwrap_or_default();
        let field = ex.field.as_ref().map(|f| format!(" [{f}]")).unwrap_or_default();
        out.push_str(&format!("\n    e.g. {}{at}{field}: {}", ex.file, ex.reason));
    }
    out
}

/// `warmstart ingest`.
pub fn run(cli: &Cli, a: &IngestArgs) -> anyhow::Result<()> {
    let import =
        read(a, cli.json).with_context(|| format!("importing {} (the store was not changed)", a.path.display()))?;
    let mut store = Store::open(&cli.store_path())?;
    let summary = write(&mut store, &import, cli.json)?;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "report": import.report, "written": summary }))?
        );
    } else {
        println!("{}", describe(&import, &summary));
    }
    Ok(())
}
