//! Colour and texture features on synthetic images with known patterns.

use image::{DynamicImage, GrayImage, Rgb, RgbImage};
use warmstart_embed::texture::{COLOUR_BINS, LBP_BINS};
use warmstart_embed::{ImageEncoder, TextureEncoder, TextureFeatures};

fn pattern(f: impl Fn(u32, u32) -> bool, on: [u8; 3], off: [u8; 3]) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(60, 80, |x, y| Rgb(if f(x, y) { on } else { off })))
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    d / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
}

const RED: [u8; 3] = [200, 20, 20];
const DARK_RED: [u8; 3] = [90, 10, 10];
const BLUE: [u8; 3] = [20, 30, 200];
const DARK_BLUE: [u8; 3] = [10, 10, 90];

#[test]
fn texture_separates_patterns_and_ignores_colour() {
    let stripes = |on, off| pattern(|x, _| (x / 2) % 2 == 0, on, off);
    let checks = |on, off| pattern(|x, y| ((x / 2) + (y / 2)) % 2 == 0, on, off);
    let flat = |c| pattern(|_, _| true, c, c);
    let red_stripes = TextureFeatures::of(&stripes(RED, DARK_RED));
    let blue_stripes = TextureFeatures::of(&stripes(BLUE, DARK_BLUE));
    let red_checks = TextureFeatures::of(&checks(RED, DARK_RED));
    let red_flat = TextureFeatures::of(&flat(RED));
    // the same pattern in another colour: same texture, different colour
    assert!(cos(&red_stripes.lbp1, &blue_stripes.lbp1) > 0.999);
    assert!(cos(&red_stripes.colour, &blue_stripes.colour) < 0.01);
    // another pattern in the same colours: same colour, different texture
    assert!(cos(&red_stripes.colour, &red_checks.colour) > 0.999);
    assert!(cos(&red_stripes.lbp1, &red_checks.lbp1) < 0.6, "{}", cos(&red_stripes.lbp1, &red_checks.lbp1));
    // a flat area is one uniform pattern (every neighbour ≥ centre)
    let top = red_flat.lbp1.iter().cloned().fold(0.0, f32::max);
    assert!(top > 0.99, "{top}");
    // stripes: the dark half reads as flat (all neighbours ≥ centre), the bright half as an edge
    let stripe_top = red_stripes.lbp1.iter().cloned().fold(0.0, f32::max);
    assert!((0.4..0.6).contains(&stripe_top), "{stripe_top}");
    for f in [&red_stripes, &red_checks, &red_flat] {
        assert_eq!((f.colour.len(), f.lbp1.len(), f.lbp2.len()), (COLOUR_BINS, LBP_BINS, LBP_BINS));
        assert!((f.lbp2.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
}

#[test]
fn white_background_is_left_out_and_odd_inputs_work() {
    // a red square on white: the colour histogram sees only red
    let img = pattern(|x, y| (20..40).contains(&x) && (30..50).contains(&y), RED, [255, 255, 255]);
    let f = TextureFeatures::of(&img);
    assert!((f.foreground - 400.0 / 4800.0).abs() < 1e-3);
    assert!(f.colour.iter().cloned().fold(0.0, f32::max) > 0.99, "{:?}", f.colour);
    // grayscale and odd sizes are resized and read as RGB
    let gray = DynamicImage::ImageLuma8(GrayImage::from_fn(33, 17, |x, _| image::Luma([(x * 7) as u8])));
    let enc = TextureEncoder::default();
    let v = enc.encode_images(&[gray, img]).unwrap();
    assert_eq!(v.len(), 2 * enc.dim());
    for row in v.chunks(enc.dim()) {
        assert!((row.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
    }
}
