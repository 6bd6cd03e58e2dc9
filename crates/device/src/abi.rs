//! The WebAssembly interface: JSON (and the raw `WSVEC001` bytes) in linear memory.
//!
//! JavaScript allocates input with `ws_alloc(len)`, writes bytes there, calls an entry point
//! (which frees nothing it was given: JavaScript calls `ws_free(ptr, len)`), and reads the
//! result as UTF-8 JSON at `ws_out_ptr()` / `ws_out_len()`, valid until the next call.
//! Entry points return 0 on success and 1 on error, the JSON then being
//! `{"error": "..."}`.

use std::cell::RefCell;

use serde::Deserialize;

use crate::rank::RowMeta;
use crate::{capture, Device, RankRequest};

thread_local! {
    static DEVICE: RefCell<Device> = RefCell::new(Device::new());
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn finish(result: crate::Result<serde_json::Value>) -> i32 {
    let (code, value) = match result {
        Ok(v) => (0, v),
        Err(e) => (1, serde_json::json!({ "error": e.to_string() })),
    };
    OUT.with(|o| *o.borrow_mut() = serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec()));
    code
}

/// # Safety
/// `ptr..ptr + len` must be readable (or `len` 0).
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 || ptr.is_null() {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, len)
    }
}

/// Allocates `len` bytes for input.
#[no_mangle]
pub extern "C" fn ws_alloc(len: usize) -> *mut u8 {
    let mut v = Vec::<u8>::with_capacity(len.max(1));
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

/// Frees what [`ws_alloc`] gave.
///
/// # Safety
/// `ptr` and `len` must be exactly a `ws_alloc` result and its length.
#[no_mangle]
pub unsafe extern "C" fn ws_free(ptr: *mut u8, len: usize) {
    if !ptr.is_null() {
        drop(Vec::from_raw_parts(ptr, 0, len.max(1)));
    }
}

/// Start of the last result.
#[no_mangle]
pub extern "C" fn ws_out_ptr() -> *const u8 {
    OUT.with(|o| o.borrow().as_ptr())
}

/// Length of the last result.
#[no_mangle]
pub extern "C" fn ws_out_len() -> usize {
    OUT.with(|o| o.borrow().len())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureRequest {
    html: String,
    url: String,
    site: String,
}

/// `{html, url, site}` → [`CapturedPage`](crate::CapturedPage).
///
/// # Safety
/// The input range must be readable.
#[no_mangle]
pub unsafe extern "C" fn ws_capture(ptr: *const u8, len: usize) -> i32 {
    finish((|| {
        let r: CaptureRequest = serde_json::from_slice(bytes(ptr, len))?;
        Ok(serde_json::to_value(capture(&r.html, &r.url, &r.site))?)
    })())
}

/// Loads a shop: its key (UTF-8), its `WSVEC001` bytes and optionally its public catalog
/// (`GET /v1/sites/{site}/catalog` JSON; length 0 for none) → `{"products": n}`.
///
/// # Safety
/// The input ranges must be readable.
#[no_mangle]
pub unsafe extern "C" fn ws_load_shop(
    site_ptr: *const u8,
    site_len: usize,
    vec_ptr: *const u8,
    vec_len: usize,
    cat_ptr: *const u8,
    cat_len: usize,
) -> i32 {
    #[derive(Deserialize)]
    struct Catalog {
        products: Vec<RowMeta>,
    }
    finish((|| {
        let site = std::str::from_utf8(bytes(site_ptr, site_len)).map_err(|_| crate::bad("site", "not UTF-8"))?;
        let catalog =
            if cat_len > 0 { Some(serde_json::from_slice::<Catalog>(bytes(cat_ptr, cat_len))?.products) } else { None };
        let n = DEVICE.with(|d| d.borrow_mut().load_shop(site, bytes(vec_ptr, vec_len), catalog))?;
        Ok(serde_json::json!({ "products": n }))
    })())
}

/// Loads a neighbour-list model's `WSNBR001` lists into a shop: its key, then the bytes →
/// `{"sources": n}`.
///
/// # Safety
/// The input ranges must be readable.
#[no_mangle]
pub unsafe extern "C" fn ws_load_neighbours(site_ptr: *const u8, site_len: usize, ptr: *const u8, len: usize) -> i32 {
    finish((|| {
        let site = std::str::from_utf8(bytes(site_ptr, site_len)).map_err(|_| crate::bad("site", "not UTF-8"))?;
        let n = DEVICE.with(|d| d.borrow_mut().load_neighbours(site, bytes(ptr, len)))?;
        Ok(serde_json::json!({ "sources": n }))
    })())
}

/// Forgets a shop → `{"unloaded": bool}`.
///
/// # Safety
/// The input range must be readable.
#[no_mangle]
pub unsafe extern "C" fn ws_unload_shop(ptr: *const u8, len: usize) -> i32 {
    let site = String::from_utf8_lossy(bytes(ptr, len)).into_owned();
    finish(Ok(serde_json::json!({ "unloaded": DEVICE.with(|d| d.borrow_mut().unload_shop(&site)) })))
}

/// [`RankRequest`] JSON → [`RankResponse`](crate::RankResponse) JSON.
///
/// # Safety
/// The input range must be readable.
#[no_mangle]
pub unsafe extern "C" fn ws_rank(ptr: *const u8, len: usize) -> i32 {
    finish((|| {
        let req: RankRequest = serde_json::from_slice(bytes(ptr, len))?;
        Ok(serde_json::to_value(DEVICE.with(|d| d.borrow().rank(&req))?)?)
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(f: unsafe extern "C" fn(*const u8, usize) -> i32, input: &[u8]) -> (i32, serde_json::Value) {
        let p = ws_alloc(input.len());
        unsafe {
            std::ptr::copy_nonoverlapping(input.as_ptr(), p, input.len());
            let code = f(p, input.len());
            ws_free(p, input.len());
            let out = std::slice::from_raw_parts(ws_out_ptr(), ws_out_len());
            (code, serde_json::from_slice(out).unwrap())
        }
    }

    #[test]
    fn json_in_json_out_and_errors_as_json() {
        let page = serde_json::json!({"html": "<script type=\"application/ld+json\">{\"@type\":\"Product\",\"sku\":\"1\",\"name\":\"Tee\"}</script>", "url": "http://s/p/1", "site": "s"});
        let (code, out) = call(ws_capture, page.to_string().as_bytes());
        assert_eq!(code, 0);
        assert_eq!(out["kind"], "product");
        assert_eq!(out["products"][0]["id"], "1");
        let (code, out) = call(ws_capture, b"{not json");
        assert_eq!(code, 1);
        assert!(out["error"].as_str().unwrap().contains("json"), "{out}");
        let (code, out) = call(ws_rank, br#"{"target":"nowhere","history":[]}"#);
        assert_eq!(code, 1);
        assert!(out["error"].as_str().unwrap().contains("nowhere"), "{out}");
    }
}
