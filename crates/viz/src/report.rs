//! A self-contained HTML report: headings, paragraphs, tables and SVG charts inlined, so the
//! one file can be mailed or opened offline.

use std::path::{Path, PathBuf};

use crate::gallery::escape_html;
use crate::{Error, Result};

/// One block of a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A section heading.
    Heading(String),
    /// A paragraph of text (escaped).
    Paragraph(String),
    /// A table: header cells, then rows of cells (escaped).
    Table(Vec<String>, Vec<Vec<String>>),
    /// An SVG file, inlined.
    Svg(PathBuf),
}

/// An HTML report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HtmlReport {
    /// Page title.
    pub title: String,
    /// Blocks in order.
    pub blocks: Vec<Block>,
}

impl HtmlReport {
    /// The page.
    pub fn to_html(&self) -> Result<String> {
        let mut out = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>\
             body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}\
             td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f3f3f3}}\
             td:first-child,th:first-child{{text-align:left}}svg{{max-width:100%;height:auto}}</style></head>\
             <body><h1>{t}</h1>",
            t = escape_html(&self.title)
        );
        for b in &self.blocks {
            match b {
                Block::Heading(h) => out.push_str(&format!("<h2>{}</h2>", escape_html(h))),
                Block::Paragraph(p) => out.push_str(&format!("<p>{}</p>", escape_html(p))),
                Block::Table(head, rows) => {
                    out.push_str("<table><tr>");
                    for h in head {
                        out.push_str(&format!("<th>{}</th>", escape_html(h)));
                    }
                    out.push_str("</tr>");
                    for r in rows {
                        out.push_str("<tr>");
                        for c in r {
                            out.push_str(&format!("<td>{}</td>", escape_html(c)));
                        }
                        out.push_str("</tr>");
                    }
                    out.push_str("</table>");
                }
                Block::Svg(path) => {
                    let svg = std::fs::read_to_string(path)
                        .map_err(|e| Error::Draw { path: path.clone(), message: e.to_string() })?;
                    // drop an XML prolog; the <svg> element embeds as is
                    let start = svg.find("<svg").unwrap_or(0);
                    out.push_str("<div>");
                    out.push_str(&svg[start..]);
                    out.push_str("</div>");
                }
            }
        }
        out.push_str("</body></html>\n");
        Ok(out)
    }

    /// Writes the page to `path`.
    pub fn write(&self, path: &Path) -> Result<PathBuf> {
        let html = self.to_html()?;
        std::fs::write(path, html).map_err(|e| Error::Draw { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_inlines_svg() {
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("a.svg");
        std::fs::write(&svg, "<?xml version=\"1.0\"?>\n<svg width=\"1\"></svg>").unwrap();
        let r = HtmlReport {
            title: "A<B".into(),
            blocks: vec![Block::Table(vec!["x".into()], vec![vec!["<script>".into()]]), Block::Svg(svg)],
        };
        let html = r.to_html().unwrap();
        assert!(html.contains("A&lt;B") && html.contains("&lt;script&gt;") && !html.contains("<?xml"));
        assert!(html.contains("<svg width=\"1\"></svg>"));
    }
}
