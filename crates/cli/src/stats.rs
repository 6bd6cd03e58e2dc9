//! `warmstart stats`.

use warmstart_store::{Store, StoreStats};

use crate::Cli;

/// Renders stats as a text report.
pub(crate) fn render(st: &StoreStats) -> String {
    let mut out = format!("store {}\n", st.store);
    let t = |k: &str| st.totals.get(k).copied().unwrap_or(0);
    out.push_str(&format!(
        "{} sites, {} products ({} with image), {} users, {} interactions, {} imports\n",
        t("sites"),
        t("products"),
        t("products_with_image"),
        t("users"),
        t("interactions"),
        t("imports")
    ));
    for d in &st.datasets {
        out.push_str(&format!(
            "\n{}: {} products, {} users, {} interactions\n",
            d.name, d.products, d.users, d.interactions
        ));
        out.push_str(&format!(
            "  {:<18} {:>9} {:>9} {:>8} {:>12} {:>10}  missing (title/descr/brand/cat/price/image %)\n",
            "site", "products", "w/ image", "users", "interactions", "cold test"
        ));
        for s in st.sites.iter().filter(|s| s.dataset == d.name) {
            let m = |k: &str| s.missing.get(k).copied().unwrap_or(0.0) * 100.0;
            out.push_str(&format!(
                "  {:<18} {:>9} {:>9} {:>8} {:>12} {:>10}  {:.0}/{:.0}/{:.0}/{:.0}/{:.0}/{:.0}\n",
                s.key,
                s.products,
                s.products_with_image,
                s.users,
                s.interactions,
                s.cold_start_test_users,
                m("title"),
                m("description"),
                m("brand"),
                m("category"),
                m("price"),
                m("image")
            ));
        }
        for o in st.overlap.iter().filter(|o| d.sites.contains(&o.a)) {
            out.push_str(&format!("  overlap {} ~ {}: {} users\n", o.a, o.b, o.users));
        }
    }
    out
}

/// `warmstart stats`.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    let store = Store::open(&cli.store_path())?;
    let st = store.stats()?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        print!("{}", render(&st));
    }
    Ok(())
}
