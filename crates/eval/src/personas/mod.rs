//! Named personas and the simulated shoppers drawn from them.
//!
//! A persona states preferences over catalog facets (gender, category, colour, usage,
//! season, pattern) with weights in `[0, 1]`; an item's utility for the persona is the
//! importance-weighted mean over the persona's facets of the weight of the item's value.
//! Each simulated shopper jitters the persona's weights, picks a target shop, and gets a
//! history on the other shops sampled by utility (softmax with a sharpness) plus uniform
//! noise. The benchmark hides nothing but the target shop: models rank its catalog from the
//! other-shop history, and items whose utility for the persona reaches `relevant_at` are
//! the relevant ones. Five-fold cross-validation over shoppers (the shoppers outside the
//! fold are the training users, and pick among variants of a vector set, e.g. fusion
//! weights) gives a mean and spread per persona.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use warmstart_core::Rng;

use crate::{Error, Result};

mod benchmark;
mod shoppers;
pub use benchmark::{persona_benchmark, FoldStat, PersonaBenchOptions, PersonaReport, PersonaRow, VectorSet};
pub use shoppers::{generate_shoppers, shoppers_json, Shopper, ShopperOptions};

/// The facets a persona may state preferences on.
pub const FACETS: &[&str] = &["gender", "category", "colour", "usage", "season", "pattern"];

/// Title words that mark a pattern (a facet value the catalog has no column for).
pub const PATTERNS: &[(&str, &[&str])] = &[
    ("striped", &["stripe", "stripes", "striped"]),
    ("checked", &["check", "checks", "checked", "checkered", "plaid"]),
    ("printed", &["print", "printed", "graphic"]),
    ("floral", &["floral", "flower", "flowers"]),
    ("solid", &["solid", "plain"]),
];

/// The personas file shipped with warmstart (`data/personas.toml`).
pub const BUILTIN_PERSONAS: &str = include_str!("../../../../data/personas.toml");

/// One persona: stated preferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persona {
    /// Short name.
    pub name: String,
    /// Who this is.
    #[serde(default)]
    pub description: String,
    /// Whether the preferences are mostly visual (colour, pattern).
    #[serde(default)]
    pub visual: bool,
    /// Importance of each facet (default 1).
    #[serde(default)]
    pub importance: BTreeMap<String, f32>,
    /// Facet → value → weight in `[0, 1]`.
    pub facets: BTreeMap<String, BTreeMap<String, f32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonaFile {
    persona: Vec<Persona>,
}

/// Parses and checks a personas file (`source` names it in errors).
pub fn parse_personas(text: &str, source: &str) -> Result<Vec<Persona>> {
    let bad = |m: String| Error::Config(format!("{source}: {m}"));
    let file: PersonaFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    if file.persona.is_empty() {
        return Err(bad("no [[persona]] entries".into()));
    }
    let mut names = std::collections::BTreeSet::new();
    for p in &file.persona {
        if !names.insert(p.name.clone()) {
            return Err(bad(format!("persona `{}` appears twice", p.name)));
        }
        if p.facets.is_empty() {
            return Err(bad(format!("persona `{}` states no preferences", p.name)));
        }
        for (facet, values) in &p.facets {
            if !FACETS.contains(&facet.as_str()) {
                return Err(bad(format!(
                    "persona `{}`: unknown facet `{facet}` (known: {})",
                    p.name,
                    FACETS.join(", ")
                )));
            }
            for (v, w) in values {
                if !(0.0..=1.0).contains(w) {
                    return Err(bad(format!("persona `{}`: {facet}.{v} = {w} is outside [0, 1]", p.name)));
                }
            }
        }
        for (facet, w) in &p.importance {
            if !(p.facets.contains_key(facet) && *w > 0.0 && w.is_finite()) {
                return Err(bad(format!(
                    "persona `{}`: importance of `{facet}` must be positive and name a stated facet",
                    p.name
                )));
            }
        }
    }
    Ok(file.persona)
}

/// Reads a personas file.
pub fn load_personas(path: &Path) -> Result<Vec<Persona>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io { path: path.into(), source: e })?;
    parse_personas(&text, &path.display().to_string())
}

/// The facet values of one product.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemFacets {
    /// Values per facet (category holds the full path and its first level).
    pub values: BTreeMap<&'static str, Vec<String>>,
}

impl ItemFacets {
    /// Facets of a product from its category path, title and attributes (`gender`,
    /// `baseColour`/`colour`, `usage`, `season`); patterns come from title words.
    pub fn of(category: &[String], title: &str, attributes: &[(String, String)]) -> ItemFacets {
        let mut values: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        if !category.is_empty() {
            values.insert("category", vec![category.join(" > "), category[0].clone()]);
        }
        for (k, v) in attributes {
            let facet = match k.as_str() {
                "gender" => "gender",
                "baseColour" | "colour" | "color" => "colour",
                "usage" => "usage",
                "season" => "season",
                _ => continue,
            };
            if !v.trim().is_empty() {
                values.entry(facet).or_default().push(v.trim().to_string());
            }
        }
        let words: Vec<String> = title.split(|c: char| !c.is_alphanumeric()).map(str::to_lowercase).collect();
        let patterns: Vec<String> = PATTERNS
            .iter()
            .filter(|(_, marks)| words.iter().any(|w| marks.contains(&w.as_str())))
            .map(|(p, _)| p.to_string())
            .collect();
        if !patterns.is_empty() {
            values.insert("pattern", patterns);
        }
        ItemFacets { values }
    }
}

impl Persona {
    /// Utility of an item in `[0, 1]` under `facets` (the persona's own, or a jittered copy).
    fn utility_with(&self, facets: &BTreeMap<String, BTreeMap<String, f32>>, item: &ItemFacets) -> f32 {
        let (mut sum, mut total) = (0f32, 0f32);
        for (facet, prefs) in facets {
            let imp = self.importance.get(facet).copied().unwrap_or(1.0);
            total += imp;
            let w = item
                .values
                .get(facet.as_str())
                .map(|vs| vs.iter().filter_map(|v| prefs.get(v)).copied().fold(0f32, f32::max))
                .unwrap_or(0.0);
            sum += imp * w;
        }
        if total > 0.0 {
            sum / total
        } else {
            0.0
        }
    }

    /// Utility of an item for this persona.
    pub fn utility(&self, item: &ItemFacets) -> f32 {
        self.utility_with(&self.facets, item)
    }

    fn jittered(&self, rng: &mut Rng, jitter: f32) -> BTreeMap<String, BTreeMap<String, f32>> {
        self.facets
            .iter()
            .map(|(f, vs)| {
                let vs =
                    vs.iter().map(|(v, w)| (v.clone(), (w * (jitter * rng.normal_f32()).exp()).min(1.0))).collect();
                (f.clone(), vs)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warmstart_core::{Dataset, DatasetBuilder, ItemVectors, ProductMeta};
    use warmstart_models::Fit;

    const COLOURS: [&str; 3] = ["Red", "Black", "Blue"];
    const CATS: [&str; 2] = ["Topwear", "Shoes"];

    /// Three shops of 24 items: every colour × category × gender, four times over.
    fn catalog() -> (Dataset, Vec<ItemFacets>) {
        let mut b = DatasetBuilder::default();
        let mut facets = Vec::new();
        for shop in 0..3 {
            let s = b.push_site(&format!("shop-{shop}"), "shop", "test");
            for i in 0..24 {
                let (colour, cat, gender) = (COLOURS[i % 3], CATS[(i / 3) % 2], ["Men", "Women"][(i / 6) % 2]);
                let title = format!("{gender} {colour} {} {cat}", if i % 4 == 0 { "Striped" } else { "Plain" });
                b.push_product(ProductMeta {
                    site: s,
                    external_id: format!("{shop}-{i}"),
                    title: title.clone(),
                    brand: None,
                    category: vec!["Apparel".into(), cat.into()],
                    price_usd: None,
                    image: None,
                });
                let attrs =
                    vec![("gender".to_string(), gender.to_string()), ("baseColour".to_string(), colour.to_string())];
                facets.push(ItemFacets::of(&["Apparel".into(), cat.into()], &title, &attrs));
            }
        }
        (b.finish().unwrap(), facets)
    }

    fn personas() -> Vec<Persona> {
        parse_personas(
            r#"
[[persona]]
name = "red"
visual = true
importance = { colour = 2.0 }
facets.colour = { Red = 1.0 }
facets.gender = { Women = 1.0 }

[[persona]]
name = "shoes"
facets.category = { "Apparel > Shoes" = 1.0 }
"#,
            "test.toml",
        )
        .unwrap()
    }

    #[test]
    fn builtin_personas_parse_and_bad_files_name_the_problem() {
        let builtin = parse_personas(BUILTIN_PERSONAS, "personas.toml").unwrap();
        assert!(builtin.len() >= 8);
        assert!(builtin.iter().filter(|p| p.visual).count() >= 4);
        let err = |text: &str| parse_personas(text, "p.toml").unwrap_err().to_string();
        assert!(err("[[persona]]\nname = \"x\"\nfacets.mood = { happy = 1.0 }").contains("unknown facet `mood`"));
        assert!(err("[[persona]]\nname = \"x\"\nfacets.colour = { Red = 2.0 }").contains("colour.Red = 2"));
        assert!(err("[[persona]]\nname = \"x\"\nfacets.colour = { Red = 1.0 }\n[[persona]]\nname = \"x\"\nfacets.colour = { Red = 1.0 }")
            .contains("twice"));
        assert!(err("[[persona]]\nname = \"x\"\nimportance = { season = 1.0 }\nfacets.colour = { Red = 1.0 }")
            .contains("importance"));
        assert!(err("persona = 3").starts_with("p.toml"));
    }

    #[test]
    fn facets_and_utility_by_hand() {
        let f = ItemFacets::of(
            &["Apparel".into(), "Topwear".into()],
            "Turtle Check Men Navy Blue Shirt",
            &[("gender".into(), "Men".into()), ("baseColour".into(), "Navy Blue".into())],
        );
        assert_eq!(f.values["pattern"], vec!["checked"]);
        assert_eq!(f.values["category"], vec!["Apparel > Topwear", "Apparel"]);
        let p = &personas()[0];
        // colour (importance 2) misses, gender misses: 0; a red women's item: 1; red men's: 2/3
        assert_eq!(p.utility(&f), 0.0);
        let red_w = ItemFacets::of(&[], "x", &[("gender".into(), "Women".into()), ("baseColour".into(), "Red".into())]);
        let red_m = ItemFacets::of(&[], "x", &[("gender".into(), "Men".into()), ("baseColour".into(), "Red".into())]);
        assert_eq!(p.utility(&red_w), 1.0);
        assert!((p.utility(&red_m) - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn shoppers_are_deterministic_and_follow_their_persona() {
        let (d, facets) = catalog();
        let ps = personas();
        let opts = ShopperOptions { per_persona: 12, noise: 0.1, ..Default::default() };
        let a = generate_shoppers(&ps, &d, &facets, &opts).unwrap();
        assert_eq!(a, generate_shoppers(&ps, &d, &facets, &opts).unwrap());
        let other = generate_shoppers(&ps, &d, &facets, &ShopperOptions { seed: 7, ..opts.clone() }).unwrap();
        assert_ne!(a, other);
        let mut mean_utility = 0.0;
        let mut n = 0.0;
        for s in &a {
            assert!(opts.history.contains(&s.history.len()), "{}", s.history.len());
            assert!(s.history.iter().all(|r| d.site_of(r.item) != s.target), "history stays off the target shop");
            assert!(s.target_history.iter().all(|r| d.site_of(r.item) == s.target));
            for r in &s.history {
                mean_utility += ps[s.persona].utility(&facets[r.item as usize]);
                n += 1.0;
            }
        }
        // a uniform pick has mean utility ≈ 0.35 for both personas here
        assert!(mean_utility / n > 0.7, "{}", mean_utility / n);
    }

    #[test]
    fn benchmark_separates_informative_from_random_vectors() {
        let (d, facets) = catalog();
        let ps = personas();
        let shoppers =
            generate_shoppers(&ps, &d, &facets, &ShopperOptions { per_persona: 15, ..Default::default() }).unwrap();
        // informative: one-hot colour, category and gender; random: seeded noise
        let names = ["Red", "Black", "Blue", "Apparel > Topwear", "Apparel > Shoes", "Men", "Women"];
        let mut informative = ItemVectors { dim: names.len(), ..Default::default() };
        let mut rng = Rng::new(5);
        let mut random = ItemVectors { dim: 8, ..Default::default() };
        for f in &facets {
            let vals: Vec<&String> = f.values.values().flatten().collect();
            informative.data.extend(names.iter().map(|n| if vals.iter().any(|v| v == n) { 1.0 } else { 0.0 }));
            informative.present.push(true);
            random.data.extend((0..8).map(|_| rng.normal_f32()));
            random.present.push(true);
        }
        let sets = vec![
            VectorSet { name: "informative".into(), variants: vec![("x".into(), informative.clone())] },
            VectorSet { name: "random".into(), variants: vec![("a".into(), random), ("b".into(), informative)] },
        ];
        let make = || -> Result<Box<dyn Fit>> { Ok(warmstart_models::by_name("content", 1, 1)?) };
        let report =
            persona_benchmark(&d, &ps, &facets, &shoppers, &sets, &make, &PersonaBenchOptions::default()).unwrap();
        let get = |set: &str| {
            report.rows.iter().find(|r| r.persona == "all" && r.vectors == set).unwrap().metrics["ndcg@10"].mean
        };
        assert!(get("informative") > 0.8, "{}", get("informative"));
        // the variant set picks its informative member on the training shoppers in every fold
        assert_eq!(report.picked["random"], vec!["b"; 5]);
        assert!(report.markdown(&["ndcg@10".into()]).contains("| red | yes |"));
    }
}
