//! Self-contained HTML galleries: per user, what they did elsewhere and what was
//! recommended, with product photos embedded as data URIs (one file to open or mail).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::{Error, Result};

/// One product card.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GalleryItem {
    /// Product title.
    pub title: String,
    /// A short line under the title (shop, category, price).
    pub detail: String,
    /// Photo bytes (JPEG, PNG, GIF or WebP), if there is one.
    pub image: Option<Vec<u8>>,
    /// Marks a recommendation the user really took (a hit in the held-out data).
    pub hit: bool,
}

/// One user's row: history on other shops, then recommendations.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GalleryRow {
    /// Who (user id or persona).
    pub user: String,
    /// A line about the case (target shop, metric).
    pub note: String,
    /// Items of the user's history.
    pub history: Vec<GalleryItem>,
    /// Recommended items, best first.
    pub recommendations: Vec<GalleryItem>,
}

/// A gallery page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Gallery {
    /// Page title.
    pub title: String,
    /// Paragraph under the title (model, data, how rows were chosen).
    pub intro: String,
    /// The rows.
    pub rows: Vec<GalleryRow>,
}

/// Escapes text for HTML content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn mime(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xFF, 0xD8, ..] => Some("image/jpeg"),
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [b'G', b'I', b'F', ..] => Some("image/gif"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ => None,
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:22px}\
.row{border-top:1px solid #ccc;padding:12px 0}.user{font-weight:bold}.note{color:#555;font-size:13px}\
.strip{display:flex;gap:8px;align-items:flex-start;overflow-x:auto;margin:6px 0}\
.label{min-width:110px;font-size:13px;color:#555;padding-top:8px}\
.card{width:132px;font-size:12px;border:1px solid #ddd;border-radius:6px;padding:4px;background:#fff}\
.card img{width:124px;height:150px;object-fit:contain;background:#f6f6f6}\
.noimg{width:124px;height:40px;background:#f6f6f6}.hit{border:2px solid #2a2;background:#efe}\
.detail{color:#666}";

impl Gallery {
    /// The page as one HTML document (images inline, no external files).
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head>\
             <body><h1>{t}</h1><p>{i}</p>",
            t = escape_html(&self.title),
            i = escape_html(&self.intro)
        );
        // placeholders keep cards aligned only when some card has a photo
        let any_photo = self
            .rows
            .iter()
            .flat_map(|r| r.history.iter().chain(&r.recommendations))
            .any(|i| i.image.as_deref().and_then(mime).is_some());
        for row in &self.rows {
            let _ = write!(
                h,
                "<div class=\"row\"><div class=\"user\">{}</div><div class=\"note\">{}</div>",
                escape_html(&row.user),
                escape_html(&row.note)
            );
            for (label, items) in [("history elsewhere", &row.history), ("recommended", &row.recommendations)] {
                let _ = write!(h, "<div class=\"strip\"><div class=\"label\">{label}</div>");
                for item in items {
                    let class = if item.hit { "card hit" } else { "card" };
                    let _ = write!(h, "<div class=\"{class}\">");
                    match item.image.as_deref().and_then(|b| mime(b).map(|m| (m, b))) {
                        Some((m, bytes)) => {
                            let data = base64::engine::general_purpose::STANDARD.encode(bytes);
                            let _ =
                                write!(h, "<img alt=\"{}\" src=\"data:{m};base64,{data}\">", escape_html(&item.title));
                        }
                        None if any_photo => h.push_str("<div class=\"noimg\"></div>"),
                        None => {}
                    }
                    let _ = write!(
                        h,
                        "<div>{}</div><div class=\"detail\">{}</div></div>",
                        escape_html(&item.title),
                        escape_html(&item.detail)
                    );
                }
                h.push_str("</div>");
            }
            h.push_str("</div>");
        }
        h.push_str("</body></html>\n");
        h
    }

    /// Writes the page to `path`.
    pub fn write(&self, path: &Path) -> Result<PathBuf> {
        std::fs::write(path, self.to_html())
            .map_err(|e| Error::Draw { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_images_escapes_text_and_marks_hits() {
        let png = [0x89, b'P', b'N', b'G', 1, 2, 3];
        let g = Gallery {
            title: "two-tower <gallery>".into(),
            intro: "cold start".into(),
            rows: vec![GalleryRow {
                user: "persona:red-lover:1".into(),
                note: "target shop 3".into(),
                history: vec![GalleryItem {
                    title: "Red \"kurta\"".into(),
                    image: Some(png.to_vec()),
                    ..Default::default()
                }],
                recommendations: vec![
                    GalleryItem { title: "Scarf & hat".into(), hit: true, ..Default::default() },
                    GalleryItem { title: "junk".into(), image: Some(b"not an image".to_vec()), ..Default::default() },
                ],
            }],
        };
        let html = g.to_html();
        assert!(html.contains("two-tower &lt;gallery&gt;") && html.contains("Red &quot;kurta&quot;"));
        assert!(html.contains("data:image/png;base64,iVBORwECAw=="), "{html}");
        assert_eq!(html.matches("card hit").count(), 1);
        assert_eq!(html.matches("<img").count(), 1, "bytes that are no image are not embedded");
        assert!(html.contains("Scarf &amp; hat"));
    }
}
