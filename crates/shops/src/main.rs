//! `warmstart-shops`: serves a store's dataset group as fixture web shops on localhost.

use std::path::PathBuf;

use clap::Parser;

/// Fixture web shops from a store (one per site, at http://{site}.localhost:PORT/).
#[derive(Parser)]
#[command(name = "warmstart-shops", version)]
struct Args {
    /// Store (a SQLite path or postgres:// URL; default as `warmstart`).
    #[arg(long, env = "WARMSTART_STORE")]
    store: Option<String>,
    /// Dataset group whose sites become shops.
    #[arg(long, default_value = "fashion-products")]
    dataset: String,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8480")]
    addr: String,
    /// Write the bound address here once listening.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Log every request as one JSON line here.
    #[arg(long)]
    log: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let location = a.store.map(PathBuf::from).unwrap_or_else(warmstart_store::default_store_path);
    let store = warmstart_store::Store::open(&location)?;
    let shops = warmstart_shops::load(&store, &a.dataset)?;
    drop(store);
    let log = a.log.map(std::fs::File::create).transpose()?;
    let listener = tokio::net::TcpListener::bind(&a.addr).await?;
    let addr = listener.local_addr()?;
    for s in &shops {
        eprintln!(
            "{} ({} products, {:?}): http://{}.localhost:{}/",
            s.name,
            s.items.len(),
            s.markup,
            s.key,
            addr.port()
        );
    }
    if let Some(f) = &a.ready_file {
        std::fs::write(f, addr.to_string())?;
    }
    let app = warmstart_shops::router(warmstart_shops::ShopState::new(shops, log));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
