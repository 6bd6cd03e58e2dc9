//! Typed requests and responses of the service (JSON through serde; OpenAPI schemas through
//! utoipa). Unknown fields are rejected, so a misspelt option is an error, not a silent
//! default.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a shopper did with a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Looked at it.
    #[default]
    View,
    /// Put it on a wish list.
    Wishlist,
    /// Put it in the cart.
    Cart,
    /// Bought it.
    Purchase,
    /// Rated it (`rating` holds the stars, 0–5).
    Rating,
    /// Reviewed it.
    Review,
}

impl From<warmstart_core::InteractionKind> for Kind {
    fn from(k: warmstart_core::InteractionKind) -> Kind {
        use warmstart_core::InteractionKind as K;
        match k {
            K::View => Kind::View,
            K::Wishlist => Kind::Wishlist,
            K::Cart => Kind::Cart,
            K::Purchase => Kind::Purchase,
            K::Rating => Kind::Rating,
            K::Review => Kind::Review,
        }
    }
}

impl Kind {
    /// The core interaction kind.
    pub fn core(self) -> warmstart_core::InteractionKind {
        use warmstart_core::InteractionKind as K;
        match self {
            Kind::View => K::View,
            Kind::Wishlist => K::Wishlist,
            Kind::Cart => K::Cart,
            Kind::Purchase => K::Purchase,
            Kind::Rating => K::Rating,
            Kind::Review => K::Review,
        }
    }
    /// The verb of an explanation ("because you bought …").
    pub fn verb(self) -> &'static str {
        match self {
            Kind::View => "viewed",
            Kind::Wishlist => "wished for",
            Kind::Cart => "put in your cart",
            Kind::Purchase => "bought",
            Kind::Rating => "rated",
            Kind::Review => "reviewed",
        }
    }
}

/// A product's metadata, for products the service does not know (embedded on the fly with the
/// catalog's encoder) and for catalog upserts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// The shop's id (required for upserts; optional in a history).
    #[serde(default)]
    pub id: Option<String>,
    /// Title.
    pub title: String,
    /// Brand.
    #[serde(default)]
    pub brand: Option<String>,
    /// Category path, root first (`["Apparel", "Topwear"]`).
    #[serde(default)]
    pub category: Vec<String>,
    /// Price as a number in `currency`, or as text with a symbol (`"1.299,00 €"`).
    #[serde(default)]
    pub price: Option<serde_json::Value>,
    /// ISO 4217 code of a numeric price (default USD).
    #[serde(default)]
    pub currency: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Image URL.
    #[serde(default)]
    pub image_url: Option<String>,
}

/// One interaction of the shopper's history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// Site key of a known product.
    #[serde(default)]
    pub site: Option<String>,
    /// The product's id on that site.
    #[serde(default)]
    pub id: Option<String>,
    /// Metadata of a product the service may not know.
    #[serde(default)]
    pub product: Option<ProductInput>,
    /// What the shopper did (default `view`).
    #[serde(default)]
    pub kind: Kind,
    /// Stars (0–5) of a rating or review.
    #[serde(default)]
    pub rating: Option<f32>,
    /// Unix seconds.
    #[serde(default)]
    pub time: Option<i64>,
}

/// Which items may be recommended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Lowest price (USD).
    #[serde(default)]
    pub min_price: Option<f64>,
    /// Highest price (USD).
    #[serde(default)]
    pub max_price: Option<f64>,
    /// A level of the category path (case-insensitive).
    #[serde(default)]
    pub category: Option<String>,
}

/// `POST /v1/recommend`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendRequest {
    /// The site whose catalog is ranked.
    pub site: String,
    /// The shopper's history on any shops (known products and/or metadata).
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// A profile vector in the catalog's content space, computed on the shopper's device
    /// (instead of a history; nothing else about the shopper is sent).
    #[serde(default)]
    pub profile: Option<Vec<f32>>,
    /// How many items (1–`max_k`, default 10).
    #[serde(default)]
    pub k: Option<usize>,
    /// Model name (an artifact's model); default: the site's default model.
    #[serde(default)]
    pub model: Option<String>,
    /// Price band and category.
    #[serde(default)]
    pub filters: Filters,
    /// 0 (none) to 1: maximal marginal relevance trades score for variety.
    #[serde(default)]
    pub diversity: Option<f32>,
    /// Product ids of the target site never to recommend.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Score every item exactly instead of retrieving candidates from the ANN index.
    #[serde(default)]
    pub exact: bool,
    /// Anonymous session id, random on the client (8–128 of letters, digits, `-_.:`): ties
    /// later feedback events to this list and assigns experiment variants. Stored only as a
    /// keyed hash.
    #[serde(default)]
    pub session: Option<String>,
    /// An experiment (declared in the service's experiments file) that chooses the model and
    /// its parameters for this session; needs `session`, excludes `model`.
    #[serde(default)]
    pub experiment: Option<String>,
}

/// A product reference in a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProductRef {
    /// Site key.
    pub site: String,
    /// The shop's id.
    pub id: String,
    /// Title.
    pub title: String,
}

/// Why an item was recommended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    /// "because you bought X on shop A".
    pub text: String,
    /// The history product (when it is a known product).
    pub because_of: Option<ProductRef>,
}

/// One recommended product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecommendedItem {
    /// The shop's id.
    pub id: String,
    /// Title.
    pub title: String,
    /// The model's score.
    pub score: f32,
    /// Price in USD, when known.
    pub price_usd: Option<f64>,
    /// Category path.
    pub category: Vec<String>,
    /// Image reference.
    pub image: Option<String>,
    /// Why.
    pub explanation: Option<Explanation>,
}

/// How the history was read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryReport {
    /// Entries received.
    pub received: usize,
    /// Known products found in the catalog.
    pub known: usize,
    /// Products embedded from their metadata.
    pub embedded: usize,
    /// Entries that could not be used (unknown ids without metadata; counted, not fatal).
    pub unknown: usize,
    /// Known products the chosen model was not trained on (it cannot use them).
    pub not_in_model: usize,
}

/// `POST /v1/recommend`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecommendResponse {
    /// Attributes later clicks to this list.
    pub recommendation_id: String,
    /// Site ranked.
    pub site: String,
    /// Model used (artifact model name).
    pub model: String,
    /// Artifact version of the model.
    pub model_version: u32,
    /// `ann` (candidates from the index, re-ranked exactly) or `exact`.
    pub retrieval: String,
    /// The items, best first.
    pub items: Vec<RecommendedItem>,
    /// How the history was read.
    pub history: HistoryReport,
    /// The experiment that chose the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// Its variant for this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// `GET /v1/sites/{site}/products/{id}/similar`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SimilarResponse {
    /// The product asked about.
    pub product: ProductRef,
    /// Site whose catalog was searched.
    pub site: String,
    /// Vector space used (`content:<vectors>` or a model name).
    pub space: String,
    /// The most similar products, best first.
    pub items: Vec<RecommendedItem>,
}

/// `POST /v1/embed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    /// Dataset group whose content space is used (default: the only one, or the group of `site`).
    #[serde(default)]
    pub site: Option<String>,
    /// Products to embed.
    pub products: Vec<ProductInput>,
}

/// `POST /v1/embed`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EmbedResponse {
    /// Content space (`minilm`, …).
    pub space: String,
    /// Dimension.
    pub dim: usize,
    /// One unit vector per product.
    pub vectors: Vec<Vec<f32>>,
}

/// `PUT /v1/sites/{site}/products`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertRequest {
    /// Products (each with an `id`).
    pub products: Vec<ProductInput>,
}

/// `DELETE /v1/sites/{site}/products`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    /// Product ids.
    pub ids: Vec<String>,
}

/// Answer of a catalog change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CatalogChange {
    /// New products.
    pub inserted: usize,
    /// Changed products.
    pub updated: usize,
    /// Products removed from the served catalog.
    pub removed: usize,
    /// Ids not found (delete).
    pub not_found: usize,
    /// Products embedded.
    pub embedded: usize,
}

/// One served model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelInfo {
    /// Model name.
    pub model: String,
    /// Artifact version.
    pub version: u32,
    /// Whether it is the dataset's default.
    pub default: bool,
    /// Mean NDCG@10 of its own hold-out evaluation.
    pub ndcg_at_10: Option<f64>,
    /// Whether candidates come from an ANN index.
    pub ann: bool,
}

/// One served site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SiteInfo {
    /// Site key.
    pub site: String,
    /// Dataset group.
    pub dataset: String,
    /// Live catalog size.
    pub products: usize,
    /// Models that rank it.
    pub models: Vec<ModelInfo>,
}
